"""The project's config: Dassl's defaults plus every key a trainer, dataset or tool here reads.

It only collects: each method module defines its own TRAINER.<NAME> node beside its trainer
(`extend_cfg(cfg)`, the contract `train.py --plugin` modules follow), `base.py` the keys all trainers
share and `clip_datasets/config.py` the dataset keys. Declaring every key lets yacs reject a misspelt
key in a yaml file or on the command line. Beside its `extend_cfg` each module declares the rule of
each key it reads (`OPTIONS`, see dassl_compat.options; a plugin may too), and `check_cfg_options`
checks them all before a run starts.
"""
from clip_datasets import config as dataset_config
from dassl_compat.options import check_options, merged_schemas

from . import base, cocoop, coop, dpt, linear_probe, vlp, vpt, zsclip

CONFIG_MODULES = (base, dataset_config, zsclip, coop, cocoop, vpt, vlp, dpt, linear_probe)


def extend_cfg(cfg):
    """Add the project's keys to a Dassl default config, in place; returns it."""
    for module in CONFIG_MODULES:
        module.extend_cfg(cfg)
    return cfg


def check_cfg_options(cfg, plugins=()):
    """Raise a UserError for the first value that breaks a rule declared in the OPTIONS of our config
    modules or of the plugin modules."""
    check_options(cfg, merged_schemas(*(getattr(module, "OPTIONS", {}) for module in (*CONFIG_MODULES, *plugins))))
