"""The trainers: importing this package registers them in the active Dassl TRAINER_REGISTRY."""
from . import coop, zsclip  # noqa: F401
