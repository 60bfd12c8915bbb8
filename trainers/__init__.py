"""The trainers: importing this package registers them in the active Dassl TRAINER_REGISTRY."""
from . import cocoop, coop, dpt, linear_probe, vlp, vpt, zsclip  # noqa: F401
