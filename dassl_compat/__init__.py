"""The project's one contract with Dassl: every Dassl name the project uses comes from here.

With Dassl installed (and DASSL_BACKEND unset or "dassl"), these are Dassl's own objects, so our
trainers are real Dassl trainers in Dassl's registries and CoOp's train.py can build them.
Without Dassl, or with DASSL_BACKEND=lite, the bundled engine in `dassl_compat.lite` provides the
same names with the same behaviour, log lines, checkpoint files and folder layout.

Whichever backend is active, optimisers and learning-rate schedulers are the bundled ones and
checkpoint I/O and the run log are the project's (`dpt_runs.checkpoint`, `dpt_runs.run_log`): Dassl
0.6.3's warmup scheduler passes `verbose` to LRScheduler.__init__ (a TypeError on torch >= 2.7), its
checkpoints pickle objects that `torch.load(weights_only=True)` refuses, and its logger truncates the
log of an earlier run into the folder within the same second.
"""
import os
import os.path as osp
import sys

_REQUESTED = os.environ.get("DASSL_BACKEND", "auto").lower()
if _REQUESTED not in ("auto", "dassl", "lite"):
    raise ValueError(f"DASSL_BACKEND must be 'auto', 'dassl' or 'lite', got {_REQUESTED!r}")
DASSL_URL = "https://github.com/KaiyangZhou/Dassl.pytorch"
DASSL_ENGINE_NAMES = ("TRAINER_REGISTRY", "TrainerX", "build_trainer")  # what a usable Dassl engine has
DASSL_IMPORT_ERROR = None  # why `import dassl` failed when the bundled engine was chosen automatically


class IncompatibleDasslError(ImportError):
    """The installed Dassl lacks engine names this project needs (`missing`, found at `location`)."""

    def __init__(self, missing, location, version):
        self.missing, self.location, self.version, self.url = missing, location, version, DASSL_URL
        super().__init__(
            f"The Dassl at {location} ({version}) lacks dassl.engine.{', dassl.engine.'.join(missing)}. Install "
            f"Dassl 0.6.3 or newer from {DASSL_URL}, or set DASSL_BACKEND=lite to use the bundled engine."
        )


def _dassl_available():
    global DASSL_IMPORT_ERROR
    if _REQUESTED == "lite":
        return False
    try:
        import dassl  # noqa: F401
    except ImportError as err:
        if _REQUESTED == "dassl":
            raise ImportError(
                f"DASSL_BACKEND=dassl but Dassl cannot be imported ({err}). Install it from {DASSL_URL}, "
                "or unset DASSL_BACKEND to use the bundled engine."
            ) from None
        DASSL_IMPORT_ERROR = err
        return False
    import dassl.engine  # an installed Dassl whose engine does not import is an error, not a fallback
    missing = [name for name in DASSL_ENGINE_NAMES if not hasattr(dassl.engine, name)]
    if missing:
        version = getattr(sys.modules["dassl"], "__version__", "unknown version")
        raise IncompatibleDasslError(missing, osp.dirname(dassl.engine.__file__), version)
    return True


# Always the bundled optimisers and the project's checkpoint I/O and run log (see the module docstring for why).
from dpt_runs.checkpoint import load_checkpoint, load_pretrained_weights, resume_from_checkpoint, save_checkpoint  # noqa: E402
from dpt_runs.run_log import setup_logger  # noqa: E402

from .lite.optim import build_lr_scheduler, build_optimizer  # noqa: E402

if _dassl_available():
    BACKEND = "dassl"
    from dassl.config import get_cfg_default
    from dassl.data import DataManager
    from dassl.data.data_manager import DatasetWrapper, build_data_loader
    from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum, build_dataset
    from dassl.data.transforms import build_transform
    from dassl.engine import TRAINER_REGISTRY, build_trainer
    from dassl.engine.trainer import SimpleTrainer as _DasslSimpleTrainer
    from dassl.engine.trainer import TrainerX as _DasslTrainerX
    from dassl.evaluation import EVALUATOR_REGISTRY, build_evaluator
    from dassl.metrics import compute_accuracy
    from dassl.utils import (
        AverageMeter,
        MetricMeter,
        Registry,
        collect_env_info,
        count_num_param,
        listdir_nohidden,
        mkdir_if_missing,
        read_json,
        set_random_seed,
        write_json,
    )

    from dpt_runs.checkpoint import CheckpointMixin

    if issubclass(_DasslTrainerX, CheckpointMixin):  # a `dassl` that re-exports the bundled engine
        SimpleTrainer, TrainerX = _DasslSimpleTrainer, _DasslTrainerX
    else:

        class SimpleTrainer(CheckpointMixin, _DasslSimpleTrainer):
            """Dassl's SimpleTrainer with the bundled (plain-data, atomic) checkpoint I/O."""

        class TrainerX(CheckpointMixin, _DasslTrainerX):
            """Dassl's TrainerX with the bundled (plain-data, atomic) checkpoint I/O."""

else:
    BACKEND = "lite"
    from .lite.config import get_cfg_default
    from .lite.data import (
        DATASET_REGISTRY,
        DataManager,
        DatasetBase,
        DatasetWrapper,
        Datum,
        build_data_loader,
        build_dataset,
    )
    from .lite.evaluation import EVALUATOR_REGISTRY, build_evaluator, compute_accuracy
    from .lite.logging import collect_env_info
    from .lite.registry import Registry
    from .lite.trainer import TRAINER_REGISTRY, SimpleTrainer, TrainerX, build_trainer
    from .lite.transforms import build_transform
    from .lite.utils import (
        AverageMeter,
        MetricMeter,
        count_num_param,
        listdir_nohidden,
        mkdir_if_missing,
        read_json,
        set_random_seed,
        write_json,
    )

__all__ = [
    "BACKEND",
    "AverageMeter",
    "DATASET_REGISTRY",
    "DataManager",
    "DatasetBase",
    "DatasetWrapper",
    "Datum",
    "EVALUATOR_REGISTRY",
    "MetricMeter",
    "Registry",
    "SimpleTrainer",
    "TRAINER_REGISTRY",
    "TrainerX",
    "build_data_loader",
    "build_dataset",
    "build_evaluator",
    "build_lr_scheduler",
    "build_optimizer",
    "build_trainer",
    "build_transform",
    "collect_env_info",
    "compute_accuracy",
    "count_num_param",
    "get_cfg_default",
    "listdir_nohidden",
    "load_checkpoint",
    "load_pretrained_weights",
    "mkdir_if_missing",
    "read_json",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_random_seed",
    "setup_logger",
    "write_json",
]
