"""Reading a finished train.py run folder back: its config, its checkpoints, its trainer.

A run folder holds `config.yaml` (the config train.py records, `dpt_runs/output_folder.py`),
`log.txt` (where train.py also prints the full config, as Dassl does: the only record in folders
written before `config.yaml` existed, or by CoOp's train.py) and one folder per registered model with
`model.pth.tar-<epoch>` checkpoints. The tools that inspect a trained run
(`dpt-interpret`, `dpt-visualize`) rebuild what they need from these two, so they work on any run
folder that train.py (or CoOp's train.py with our trainers) wrote.
"""
import ast
import contextlib
import io
import os
import os.path as osp
import re

import yaml

from dassl_compat import build_trainer, get_cfg_default, set_random_seed
from dpt_models.errors import UserError
from dpt_runs.output_folder import CONFIG_FILE, read_recorded_config
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


def last_epoch(run_dir):
    """The epoch of the run's last checkpoint (what `--load-epoch` takes)."""
    return max(int(CHECKPOINT_PATTERN.match(osp.basename(p)).group(1)) for p in checkpoint_files(run_dir).values())


def build_run_trainer(run_dir, root=None, quiet=True, trained=True):
    """The run's trainer, built from its logged config, with its last checkpoint loaded (eval mode);
    `trained=False` leaves the learned parameters at their initialisation (the run's seed).

    Building reads the dataset (its class names and splits) from DATASET.ROOT, or from `root`.
    """
    import clip_datasets  # noqa: F401  (registers the datasets)
    import trainers  # noqa: F401  (registers the trainers)

    epoch = last_epoch(run_dir)
    cfg = load_run_config(run_dir, root=root)
    if cfg.SEED >= 0:  # the run's seed: the same few-shot sample and initialisation as the run
        set_random_seed(cfg.SEED)
    with contextlib.ExitStack() as stack:
        if quiet:
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        trainer = build_trainer(cfg)
        if trained:
            trainer.load_model(run_dir, epoch=epoch)
    trainer.set_model_mode("eval")
    return trainer
