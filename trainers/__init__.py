"""The trainers: importing this package registers them in the active Dassl TRAINER_REGISTRY."""
from . import cocoop, coop, dpt, kgcoop, linear_probe, prograd, vlp, vpt, zsclip  # noqa: F401
