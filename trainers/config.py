"""The project's config: Dassl's defaults plus every key a trainer, dataset or tool here reads.

It only collects: each method module defines its own TRAINER.<NAME> node beside its trainer
(`extend_cfg(cfg)`, the contract `train.py --plugin` modules follow), `base.py` the keys all trainers
share and `clip_datasets/config.py` the dataset keys. Declaring every key lets yacs reject a misspelt
key in a yaml file or on the command line.
"""
from clip_datasets import config as dataset_config

from . import base, cocoop, coop, dpt, ivlp, linear_probe, maple, promptsrc, vlp, vpt, zsclip

CONFIG_MODULES = (base, dataset_config, zsclip, coop, cocoop, vpt, vlp, dpt, linear_probe, maple, ivlp, promptsrc)


def extend_cfg(cfg):
    """Add the project's keys to a Dassl default config, in place; returns it."""
    for module in CONFIG_MODULES:
        module.extend_cfg(cfg)
    return cfg
