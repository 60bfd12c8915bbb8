"""The trainers: importing this package registers them in the active Dassl TRAINER_REGISTRY."""
from . import cocoop, coop, dpt, ivlp, linear_probe, maple, promptsrc, vlp, vpt, zsclip  # noqa: F401
