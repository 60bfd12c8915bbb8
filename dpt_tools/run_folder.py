"""Reading a finished train.py run folder back: its config, its checkpoints, its trainer.

A run folder holds `config.yaml` (the config train.py records, `dpt_runs/output_folder.py`),
`log.txt` (where train.py also prints the full config, as Dassl does: the only record in folders
written before `config.yaml` existed, or by CoOp's train.py) and one folder per registered model with
`model.pth.tar-<epoch>` checkpoints, which record the trainer and the class names the model was built
for. The tools that inspect a trained run (`dpt-interpret`, `dpt-visualize`) rebuild what they need from
these, so they work on any run folder that train.py (or CoOp's train.py with our trainers) wrote; the
model needs no dataset (only checkpoints written before class names were recorded read them from it).
"""
import ast
import contextlib
import io
import os
import os.path as osp
import re
from dataclasses import dataclass

import torch
import yaml

from dassl_compat import TRAINER_REGISTRY, build_dataset, build_transform, get_cfg_default, set_random_seed
from dpt_models import open_clip_backbone
from dpt_models.errors import UserError
from dpt_runs.checkpoint import load_checkpoint
from dpt_runs.output_folder import CONFIG_FILE, read_recorded_config
from trainers.base import check_input_size, load_backbone, with_input_settings
from trainers.config import extend_cfg

LOG_FILE = "log.txt"
CONFIG_START = "** Config **\n************\n"
CONFIG_END = "Collecting env info"
CHECKPOINT_PATTERN = re.compile(r"^model\.pth\.tar-(\d+)$")


def read_logged_config(run_dir):
    """The run's config as a nested dict: its recorded config.yaml, else the config printed in log.txt."""
    recorded = read_recorded_config(run_dir)
    if recorded is not None:
        return recorded
    log_path = osp.join(run_dir, LOG_FILE)
    if not osp.isfile(log_path):
        raise UserError(
            f"{run_dir} is not a train.py run folder: it has no {CONFIG_FILE} or {LOG_FILE}. Pass the folder given to "
            "train.py as --output-dir (e.g. output/toy_fog/DPT/toy_16shots/nctx16_cscFalse_ctpend/seed1)."
        )
    with open(log_path, encoding="utf-8") as file:
        text = file.read()
    start = text.find(CONFIG_START)
    end = text.find(CONFIG_END, start)
    if start < 0 or end < 0:
        raise UserError(
            f"{log_path} holds no config block (between '** Config **' and '{CONFIG_END}'): it was not "
            "written by train.py. Pass the --output-dir of a train.py run."
        )
    return yaml.safe_load(text[start + len(CONFIG_START) : end])


def _as_default_type(value, default):
    """A logged value in the type of its default: yacs prints '' as nothing, tuples as '(...)', and YAML
    reads floats such as 1e-05 as strings."""
    if isinstance(default, str):
        return "" if value is None else str(value)
    if isinstance(value, str) and not isinstance(default, str):
        value = ast.literal_eval(value)
    if isinstance(default, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    return value


def _merge_logged(node, logged):
    """Set every key of `logged` that `node` knows, recursively (unknown keys: a plugin's, skipped)."""
    for key, value in logged.items():
        if key not in node:
            continue
        if isinstance(value, dict):
            _merge_logged(node[key], value)
        else:
            node[key] = _as_default_type(value, node[key])


def load_run_config(run_dir, root=None, output_dir=None):
    """The frozen config of the run in `run_dir`; `root` replaces DATASET.ROOT (data moved elsewhere),
    `output_dir` replaces OUTPUT_DIR."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    _merge_logged(cfg, read_logged_config(run_dir))
    if root:
        cfg.DATASET.ROOT = root
    cfg.OUTPUT_DIR = output_dir or run_dir
    cfg.freeze()
    return cfg


def checkpoint_files(run_dir):
    """{model name: path of its last checkpoint `model.pth.tar-<epoch>`} of the run in `run_dir`."""
    found = {}
    for name in sorted(os.listdir(run_dir)) if osp.isdir(run_dir) else []:
        folder = osp.join(run_dir, name)
        if not osp.isdir(folder):
            continue
        epochs = [int(m.group(1)) for f in os.listdir(folder) if (m := CHECKPOINT_PATTERN.match(f))]
        if epochs:
            found[name] = osp.join(folder, f"model.pth.tar-{max(epochs)}")
    if not found:
        raise UserError(
            f"{run_dir} holds no checkpoint (no <model>/model.pth.tar-<epoch> file): the run did not finish "
            "its first checkpoint, or it is a zero-shot run, which learns nothing. Pass the folder of a "
            "finished training run (the --output-dir of train.py without --eval-only)."
        )
    return found


@dataclass
class RunModel:
    """A trained run's model rebuilt from its folder: `model` (eval mode, on `device`) maps images
    [B, 3, H, W] to a dict with `logits` [B, C] over `classnames`; `input_cfg` is `cfg` with the input
    settings of the backbone's own preprocessing (open_clip), for `test_transform`."""

    cfg: object
    input_cfg: object
    classnames: list
    model: torch.nn.Module
    device: torch.device

    def test_transform(self):
        """The run's test-time transform: PIL image -> tensor [3, H, W]."""
        return build_transform(self.input_cfg, is_train=False)


def run_dataset(cfg):
    """The run's dataset (its images; reads DATASET.ROOT), with the run's few-shot sample (its seed)."""
    import clip_datasets  # noqa: F401  (registers the datasets)

    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    with contextlib.redirect_stdout(io.StringIO()):  # its progress lines are not the tools' output
        return build_dataset(cfg)


def recorded_classnames(checkpoints, cfg):
    """The class names the run's model was built for, as its checkpoints record them; from the dataset for
    checkpoints that record none (written by CoOp, Dassl or before they were recorded), with a notice."""
    metas = [load_checkpoint(path).get("meta") or {} for path in checkpoints.values()]
    recorded = [meta["classnames"] for meta in metas if meta.get("classnames")]
    if recorded:
        return list(recorded[0])
    print(f"Note: the checkpoints record no class names (an older run): reading them from the dataset "
          f"{cfg.DATASET.NAME} under {cfg.DATASET.ROOT}")
    return list(run_dataset(cfg).classnames)


def build_run_model(run_dir, root=None, quiet=True, trained=True):
    """The model of the run in `run_dir` (a RunModel), rebuilt from its recorded config and the class names
    its checkpoints record, with its last checkpoint loaded; `trained=False` leaves the learned parameters
    at their initialisation (the run's seed). `root` replaces DATASET.ROOT, read only for checkpoints that
    record no class names.
    """
    import trainers  # noqa: F401  (registers the trainers)

    checkpoints = checkpoint_files(run_dir)
    cfg = load_run_config(run_dir, root=root)
    with contextlib.ExitStack() as stack:
        if quiet:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        classnames = recorded_classnames(checkpoints, cfg)
        trainer_class = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
        if cfg.SEED >= 0:  # the run's seed: the same initialisation as the run
            set_random_seed(cfg.SEED)
        clip_model = load_backbone(cfg)
        input_cfg = cfg
        if open_clip_backbone.is_open_clip(cfg.MODEL.BACKBONE.NAME):
            input_cfg = with_input_settings(cfg, open_clip_backbone.preprocess_settings(clip_model))
        else:
            check_input_size(cfg, clip_model)
        model = trainer_class.build_model_from_cfg(cfg, clip_model, classnames, checkpoints if trained else None)
    device = torch.device("cuda") if torch.cuda.is_available() and cfg.USE_CUDA else torch.device("cpu")
    model.to(device).eval()
    return RunModel(cfg, input_cfg, classnames, model, device)
