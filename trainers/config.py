"""The project's config: Dassl's defaults plus every key a trainer, dataset or tool here reads.

It only collects: each registered method's module defines its own TRAINER.<NAME> node beside its trainer
(`extend_cfg(cfg)`, the contract `train.py --plugin` modules follow), `base.py` the keys all trainers
share and `clip_datasets/config.py` the dataset keys. Declaring every key lets yacs reject a misspelt
key in a yaml file or on the command line. Beside its `extend_cfg` each module declares the rule of
each key it reads (`OPTIONS`, see dpt_runs.options; a plugin may too), and `check_cfg_options`
checks them all before a run starts.
"""
import sys

from dpt_runs.options import check_options, merged_schemas

from . import base


def config_modules():
    """base, the dataset keys' module and the module of every registered method that defines extend_cfg
    (a variant subclassed elsewhere reads its parent's node), each once, in order."""
    from clip_datasets import config as dataset_config  # here, so that importing trainers registers no dataset

    method_modules = [sys.modules[cls.__module__] for cls in base.registered_methods().values()]
    return list(dict.fromkeys([base, dataset_config, *(m for m in method_modules if hasattr(m, "extend_cfg"))]))


def extend_cfg(cfg):
    """Add the project's keys to a Dassl default config, in place; returns it."""
    for module in config_modules():
        module.extend_cfg(cfg)
    return cfg


def check_cfg_options(cfg, plugins=()):
    """Raise a UserError for the first value that breaks a rule declared in the OPTIONS of our config
    modules or of the plugin modules."""
    check_options(cfg, merged_schemas(*(getattr(module, "OPTIONS", {}) for module in (*config_modules(), *plugins))))
