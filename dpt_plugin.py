"""DPT, VLP and VPT in a Dassl harness you already run (CoOp, CoCoOp, MaPLe, PromptSRC, KgCoOp, ...).

Two lines in the host's CoOp-style `train.py` (docs/plugin.md):

    import dpt_plugin              # beside the host's `import trainers.coop` lines
    dpt_plugin.setup(cfg)          # in setup_cfg, right after extend_cfg(cfg)

`setup(cfg)` registers our methods marked `in_plugin` (DPT, VLP and VPT: `ClipPromptTrainer`'s
docstring lists what a method sets) in Dassl's TRAINER_REGISTRY (the host's) and adds the config keys
they read. It replaces nothing the host has: our datasets are never imported, our other trainers (CoOp,
CoCoOp, ZeroshotCLIP, ...) register only in a private registry, and where the host has a trainer of the
same name (MaPLe's VPT), the host's keeps the name and ours is registered as DPT_<name>
(`registry_names`; setup() prints a line saying so). The host's own `trainers` and `clip` packages
shadow ours on its sys.path, so our trainers package is loaded from this distribution's files under the
private package name `dpt_plugin_trainers`; the models come from `dpt_models` and CLIP from the
clip-anytorch distribution (dpt_models.clip_backbone).
"""
import importlib
import importlib.util
import os.path as osp
import sys

ALTERNATIVE_NAME = "DPT_{}"  # our trainer's name in a host registry that has its own trainer of that name
PRIVATE_PACKAGE = "dpt_plugin_trainers"
TRAINERS_DIR = osp.join(osp.dirname(osp.abspath(__file__)), "trainers")


def _dassl_compat():
    """`dassl_compat` on the host's Dassl, or an ImportError naming what is missing."""
    try:
        import dassl_compat
    except ImportError as err:
        if not hasattr(err, "missing"):  # not dassl_compat.IncompatibleDasslError
            raise
        raise ImportError(
            f"dpt_plugin needs dassl.engine.{', dassl.engine.'.join(err.missing)}, which the Dassl at "
            f"{err.location} ({err.version}) lacks. Install Dassl 0.6.3 or newer from {err.url}."
        ) from err
    if dassl_compat.BACKEND != "dassl":
        reason = (f"Dassl cannot be imported ({dassl_compat.DASSL_IMPORT_ERROR})" if dassl_compat.DASSL_IMPORT_ERROR
                  else "DASSL_BACKEND=lite is set; unset it in the host harness")
        raise ImportError(
            f"dpt_plugin adds DPT to a Dassl harness, but {reason}. Install Dassl into this environment "
            f"({dassl_compat.DASSL_URL}: `pip install -r requirements.txt && python setup.py develop`), "
            "or run DPT without Dassl through this project's own `dpt-train`."
        )
    return dassl_compat


def _load_trainer_modules():
    """Our trainers package, loaded from this distribution under PRIVATE_PACKAGE (every method module in
    it, as `trainers/__init__.py` does). Whatever they register goes into a private registry; returns
    {name: trainer class} of the methods offered to the host (`in_plugin`) and their extend_cfg functions
    (the keys all our trainers share first)."""
    dassl_compat = _dassl_compat()
    from dassl_compat import Registry

    if PRIVATE_PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PRIVATE_PACKAGE, osp.join(TRAINERS_DIR, "__init__.py"), submodule_search_locations=[TRAINERS_DIR]
        )
        package = importlib.util.module_from_spec(spec)
        package.registry = Registry("DPT_PLUGIN_TRAINER")
        sys.modules[PRIVATE_PACKAGE] = package
        host_registry = dassl_compat.TRAINER_REGISTRY
        dassl_compat.TRAINER_REGISTRY = package.registry  # what our modules' @TRAINER_REGISTRY.register() binds
        try:
            spec.loader.exec_module(package)
        except BaseException:
            del sys.modules[PRIVATE_PACKAGE]
            raise
        finally:
            dassl_compat.TRAINER_REGISTRY = host_registry
    package = sys.modules[PRIVATE_PACKAGE]
    offered = {name: cls for name, cls in package.base.registered_methods(package.registry).items() if cls.in_plugin}
    modules = dict.fromkeys([package.base, *(sys.modules[cls.__module__] for cls in offered.values())])
    return offered, [module.extend_cfg for module in modules if hasattr(module, "extend_cfg")]


def add_missing_keys(cfg, source):
    """Copy into `cfg` every key of `source` that `cfg` lacks (recursively); existing keys keep their values."""
    for key, value in source.items():
        if key not in cfg:
            cfg[key] = value
        elif hasattr(value, "items") and hasattr(cfg[key], "items"):
            add_missing_keys(cfg[key], value)


def registry_names(trainers, host_names):
    """{name in the host registry: our trainer's name} for each of `trainers`: its own name, or
    ALTERNATIVE_NAME (DPT_VPT) where `host_names` (the host's own trainers) has it."""
    return {(ALTERNATIVE_NAME.format(name) if name in host_names else name): name for name in trainers}


def setup(cfg):
    """Register our `in_plugin` methods (DPT, VLP, VPT) in the host's TRAINER_REGISTRY (under
    `registry_names`: the host's own trainers keep their names) and add their config keys to `cfg` (keys
    the host defines keep the host's defaults). Safe to call again. Returns the names registered by this call."""
    host_registry = _dassl_compat().TRAINER_REGISTRY
    offered, extenders = _load_trainer_modules()
    present = host_registry.registered_names()
    host_names = [name for name in present if not host_registry.get(name).__module__.startswith(PRIVATE_PACKAGE)]
    registered = []
    for registry_name, name in registry_names(offered, host_names).items():
        if registry_name in present:  # registered by an earlier call
            continue
        trainer = offered[name]
        if registry_name != name:  # the registry keys a class by its name: a subclass carries the other one
            trainer = type(registry_name, (trainer,), {"__module__": trainer.__module__, "__doc__": trainer.__doc__})
        host_registry.register(trainer)
        registered.append(registry_name)
    renamed = [name for name in registered if name not in offered]
    if renamed:
        print(f"dpt_plugin: this harness has its own {', '.join(name for name in offered if name in host_names)}; "
              f"this project's are registered as {', '.join(renamed)} (--trainer {renamed[0]})")
    ours_cfg = cfg.clone()
    for extend_cfg in extenders:
        extend_cfg(ours_cfg)
    add_missing_keys(cfg, ours_cfg)
    return registered


_dassl_compat()
