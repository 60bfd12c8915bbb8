"""DPT, VLP and VPT in a Dassl harness you already run (CoOp, CoCoOp, MaPLe, PromptSRC, KgCoOp, ...).

Two lines in the host's CoOp-style `train.py` (README, "DPT in your CoOp-style harness"):

    import dpt_plugin              # beside the host's `import trainers.coop` lines
    dpt_plugin.setup(cfg)          # in setup_cfg, right after extend_cfg(cfg)

`setup(cfg)` registers DPT, VLP and VPT in Dassl's TRAINER_REGISTRY (the host's) and adds the config
keys they read. It registers nothing whose name the host already has: our CoOp, CoCoOp, ZeroshotCLIP
and datasets are never imported, and a host trainer called VPT, VLP or DPT is kept (ours still serves as
the base of the others). The host's own `trainers` and `clip` packages shadow ours on its sys.path, so
our trainer modules are loaded from this distribution's files under the private package name
`dpt_plugin_trainers`, and CLIP comes from the clip-anytorch distribution (trainers.clip_backbone).
"""
import importlib
import importlib.util
import os.path as osp
import sys

TRAINERS = ("VPT", "VLP", "DPT")
PRIVATE_PACKAGE = "dpt_plugin_trainers"
TRAINERS_DIR = osp.join(osp.dirname(osp.abspath(__file__)), "trainers")
DASSL_URL = "https://github.com/KaiyangZhou/Dassl.pytorch"


def _require_dassl():
    """The host's `dassl.engine`, or an ImportError naming what is missing."""
    try:
        import dassl.engine
    except ImportError as err:
        raise ImportError(
            f"dpt_plugin adds DPT to a Dassl harness, but Dassl cannot be imported ({err}). Install Dassl "
            f"into this environment ({DASSL_URL}: `pip install -r requirements.txt && python setup.py develop`), "
            "or run DPT without Dassl through this project's own `dpt-train`."
        ) from err
    missing = [name for name in ("TRAINER_REGISTRY", "TrainerX", "build_trainer") if not hasattr(dassl.engine, name)]
    if missing:
        version = getattr(sys.modules.get("dassl"), "__version__", "unknown version")
        raise ImportError(
            f"dpt_plugin needs dassl.engine.{', dassl.engine.'.join(missing)}, which the Dassl at "
            f"{osp.dirname(dassl.engine.__file__)} ({version}) lacks. Install Dassl 0.6.3 or newer from {DASSL_URL}."
        )
    return dassl.engine


def _load_trainer_modules():
    """Our `trainers.dpt` (with vlp, vpt and the CLIP pieces they import) and `trainers.config`, loaded
    from this distribution under PRIVATE_PACKAGE without running `trainers/__init__.py` (which would
    register CoOp, CoCoOp and ZeroshotCLIP). They register into a private registry; returns
    (that registry, our extend_cfg)."""
    import dassl_compat
    from dassl_compat import Registry

    if dassl_compat.BACKEND != "dassl":
        raise ImportError(
            "dpt_plugin must register into Dassl's TRAINER_REGISTRY, but dassl_compat uses its bundled engine "
            "(DASSL_BACKEND=lite is set). Unset DASSL_BACKEND in the host harness."
        )
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
            importlib.import_module(f"{PRIVATE_PACKAGE}.dpt")
        except BaseException:
            del sys.modules[PRIVATE_PACKAGE]
            raise
        finally:
            dassl_compat.TRAINER_REGISTRY = host_registry
    package = sys.modules[PRIVATE_PACKAGE]
    return package.registry, importlib.import_module(f"{PRIVATE_PACKAGE}.config").extend_cfg


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
    engine = _require_dassl()
    ours, extend_cfg = _load_trainer_modules()
    registered = []
    for name in TRAINERS:
        if name not in engine.TRAINER_REGISTRY.registered_names():
            engine.TRAINER_REGISTRY.register(ours.get(name))
            registered.append(name)
    add_missing_keys(cfg, extend_cfg(cfg.clone()))
    return registered


_require_dassl()
