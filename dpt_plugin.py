"""DPT, VLP and VPT in a Dassl harness you already run (CoOp, CoCoOp, MaPLe, PromptSRC, KgCoOp, ...).

Two lines in the host's CoOp-style `train.py` (README, "DPT in your CoOp-style harness"):

    import dpt_plugin              # beside the host's `import trainers.coop` lines
    dpt_plugin.setup(cfg)          # in setup_cfg, right after extend_cfg(cfg)

`setup(cfg)` registers DPT, VLP and VPT in Dassl's TRAINER_REGISTRY (the host's) and adds the config
keys they read. It registers nothing whose name the host already has: our datasets, CoCoOp and
ZeroshotCLIP are never imported, our CoOp (VLP's model builds on it) registers only in a private
registry, and a host trainer called VPT, VLP or DPT is kept. The host's own `trainers` and `clip`
packages shadow ours on its sys.path, so our trainer modules are loaded from this distribution's files
under the private package name `dpt_plugin_trainers`, and CLIP comes from the clip-anytorch
distribution (dpt_models.clip_backbone).
"""
import importlib
import importlib.util
import os.path as osp
import sys

TRAINERS = ("VPT", "VLP", "DPT")
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


CONFIG_MODULES = ("base", "vpt", "vlp", "dpt")  # the modules whose extend_cfg declares the keys these trainers read


def _load_trainer_modules():
    """Our `trainers.vpt` and `trainers.dpt` (with vlp, the CoOp model VLP builds on and the CLIP pieces),
    loaded from this distribution under PRIVATE_PACKAGE without running `trainers/__init__.py` or
    `trainers/config.py` (which import every trainer and our datasets). Whatever they register goes
    into a private registry (our CoOp too); returns (that registry, their extend_cfg functions)."""
    dassl_compat = _dassl_compat()
    from dassl_compat import Registry

    if PRIVATE_PACKAGE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PRIVATE_PACKAGE, osp.join(TRAINERS_DIR, "__init__.py"), submodule_search_locations=[TRAINERS_DIR]
        )
        package = importlib.util.module_from_spec(spec)  # not executed: its __init__ imports every trainer
        package.registry = Registry("DPT_PLUGIN_TRAINER")
        sys.modules[PRIVATE_PACKAGE] = package
        host_registry = dassl_compat.TRAINER_REGISTRY
        dassl_compat.TRAINER_REGISTRY = package.registry  # what our modules' @TRAINER_REGISTRY.register() binds
        try:
            for name in CONFIG_MODULES:
                importlib.import_module(f"{PRIVATE_PACKAGE}.{name}")
        except BaseException:
            del sys.modules[PRIVATE_PACKAGE]
            raise
        finally:
            dassl_compat.TRAINER_REGISTRY = host_registry
    modules = [sys.modules[f"{PRIVATE_PACKAGE}.{name}"] for name in CONFIG_MODULES]
    return sys.modules[PRIVATE_PACKAGE].registry, [module.extend_cfg for module in modules]


def add_missing_keys(cfg, source):
    """Copy into `cfg` every key of `source` that `cfg` lacks (recursively); existing keys keep their values."""
    for key, value in source.items():
        if key not in cfg:
            cfg[key] = value
        elif hasattr(value, "items") and hasattr(cfg[key], "items"):
            add_missing_keys(cfg[key], value)


def setup(cfg):
    """Register DPT, VLP and VPT in the host's TRAINER_REGISTRY (names it already has are left to it) and
    add their config keys to `cfg` (keys the host defines keep the host's defaults). Safe to call again.
    Returns the names registered by this call."""
    host_registry = _dassl_compat().TRAINER_REGISTRY
    ours, extenders = _load_trainer_modules()
    registered = []
    for name in TRAINERS:
        if name not in host_registry.registered_names():
            host_registry.register(ours.get(name))
            registered.append(name)
    ours_cfg = cfg.clone()
    for extend_cfg in extenders:
        extend_cfg(ours_cfg)
    add_missing_keys(cfg, ours_cfg)
    return registered


_dassl_compat()
