"""The trainers, one module per method: importing this package imports every module in it, which
registers each method's trainer in the active Dassl TRAINER_REGISTRY (no list to edit: a new module is
found). `base.registered_methods()` then lists them."""
import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
