"""Checkpoint I/O in Dassl's file layout, holding plain data only, committed atomically per epoch.

Layout of a run folder:
- `<name>/model.pth.tar-<epoch>` for every registered model `<name>` (Dassl's file: state_dict,
  epoch, optimizer, scheduler, val_result, plus `meta`: trainer and class names), `<name>/checkpoint`
  naming the latest one, and `<name>/model-best.pth.tar` with TEST.FINAL_MODEL best_val;
- `train_state.pth.tar-<epoch>`: what the next epoch consumes besides the models (the random states of
  python, numpy, torch and CUDA, which also drive the data loader's shuffling and augmentation, and
  the trainer's extra state). It is written after every model's file of that epoch, so its atomic
  rename is the commit: a run killed at any instant resumes from the last epoch whose train state
  exists, with every module at that epoch.
Only the last two committed epochs are kept (the previous one is the fallback when the last one is
unreadable); the best model file is kept. `torch.load(weights_only=True)` reads every file.
"""
import os
import os.path as osp
import random
import re
import shutil
from collections import OrderedDict

import numpy as np
import torch

from dpt_models.errors import UserError

LATEST_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"
MODEL_PREFIX = "model.pth.tar-"
TRAIN_STATE_PREFIX = "train_state.pth.tar-"
KEPT_EPOCHS = 2  # the last committed epoch and the one before it (the fallback)
TEMPORARY = re.compile(r"\.tmp\.\d+$")  # the names temporary_path() gives


def temporary_path(fpath):
    """Where `fpath` is written before its atomic rename (`remove_leftovers` knows this pattern)."""
    return f"{fpath}.tmp.{os.getpid()}"


def _atomic_torch_save(obj, fpath):
    tmp = temporary_path(fpath)
    try:
        torch.save(obj, tmp)
    except BaseException:  # a full disk, Ctrl-C: no half-written file stays behind (the error is reported as is)
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    os.replace(tmp, fpath)


def _atomic_write_text(text, fpath):
    tmp = temporary_path(fpath)
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, fpath)


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name="", update_latest=True):
    """Save `state` as `save_dir/model.pth.tar-<epoch>` (or `model_name`) and update `checkpoint`."""
    os.makedirs(save_dir, exist_ok=True)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (k[7:] if k.startswith("module.") else k, v) for k, v in state["state_dict"].items()
        )
    if not model_name:
        model_name = f"{MODEL_PREFIX}{state['epoch']}"
    fpath = osp.join(save_dir, model_name)
    _atomic_torch_save(state, fpath)
    print(f"Checkpoint saved to {fpath}")
    if update_latest:
        _atomic_write_text(f"{osp.basename(fpath)}\n", osp.join(save_dir, LATEST_FILE))
    if is_best:
        best = osp.join(save_dir, BEST_FILE)
        shutil.copy(fpath, temporary_path(best))
        os.replace(temporary_path(best), best)
        print(f'Best checkpoint saved to "{best}"')


def load_checkpoint(fpath):
    """Read a checkpoint with `weights_only=True` onto the CPU; an unreadable file is a UserError naming it."""
    if fpath is None or not osp.exists(fpath):
        raise FileNotFoundError(f'Checkpoint not found at "{fpath}"')
    try:
        return torch.load(fpath, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, corrupt or not a checkpoint: torch raises several types
        raise UserError(
            f'Cannot read the checkpoint "{fpath}" ({type(error).__name__}: {error}). The file is truncated '
            "or corrupt (e.g. a full disk or an interrupted copy): copy it again, or delete it so that "
            "training resumes from the previous epoch or starts again."
        ) from error


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Load the checkpoint that `fdir/checkpoint` names into model / optimizer / scheduler.

    Returns the epoch to start from (the number of finished epochs).
    """
    with open(osp.join(fdir, LATEST_FILE)) as f:
        fpath = osp.join(fdir, f.readline().strip())
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    _load_training_state(checkpoint, model, optimizer, scheduler)
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def _load_training_state(checkpoint, model, optimizer, scheduler):
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")


def load_pretrained_weights(model, weight_path):
    """Load matching keys (name and shape) of a checkpoint into `model`; report the rest."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint.get("state_dict", checkpoint)
    model_dict = model.state_dict()
    matched = OrderedDict()
    for k, v in state_dict.items():
        k = k[7:] if k.startswith("module.") else k
        if k in model_dict and model_dict[k].size() == v.size():
            matched[k] = v
    model_dict.update(matched)
    model.load_state_dict(model_dict)
    if not matched:
        print(f'Cannot load "{weight_path}" (check the key names manually)')
    else:
        print(f'Loaded pretrained weights from "{weight_path}" ({len(matched)}/{len(state_dict)} keys)')


def capture_rng_state():
    """The random states of python, numpy, torch and every CUDA device, as plain data."""
    version, mt_state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {
        "python": (version, mt_state, gauss),
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state):
    version, mt_state, gauss = state["python"]
    random.setstate((version, tuple(mt_state), gauss))
    kind, keys, pos, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        if len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
        else:
            print(f"Note: the CUDA random states of {len(state['cuda'])} devices were not restored "
                  f"on {torch.cuda.device_count()}; the resumed run is not bit-identical")


def _epoch_files(folder, prefix):
    """{epoch: path} of the files `<prefix><epoch>` in `folder`."""
    if not osp.isdir(folder):
        return {}
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = {}
    for entry in os.listdir(folder):
        match = pattern.match(entry)
        if match:
            found[int(match.group(1))] = osp.join(folder, entry)
    return found


def committed_epochs(directory):
    """The epochs with a committed resumable state in run folder `directory`, newest first."""
    return sorted(_epoch_files(directory, TRAIN_STATE_PREFIX), reverse=True)


def has_checkpoints(directory):
    """True when `directory` holds a resumable state (or a model checkpoint of an older layout)."""
    if committed_epochs(directory):
        return True
    return osp.isdir(directory) and any(
        osp.isfile(osp.join(directory, entry, LATEST_FILE)) for entry in os.listdir(directory)
    )


def remove_leftovers(directory):
    """Remove what an interrupted run left in `directory`: temporary files of unfinished writes and
    module files of an epoch whose save was never committed. Returns the removed paths."""
    if not osp.isdir(directory):
        return []
    committed = committed_epochs(directory)
    subfolders = [osp.join(directory, e) for e in os.listdir(directory) if osp.isdir(osp.join(directory, e))]
    removed = []
    for folder in [directory] + subfolders:
        removed.extend(osp.join(folder, e) for e in os.listdir(folder) if TEMPORARY.search(e))
    module_folders = [folder for folder in subfolders if osp.isfile(osp.join(folder, LATEST_FILE))]
    for folder in module_folders if committed else []:
        removed.extend(path for epoch, path in _epoch_files(folder, MODEL_PREFIX).items() if epoch > committed[0])
    for path in removed:
        os.remove(path)
        print(f"Removed {path}, left over by an interrupted run")
    return removed


def load_module_weights(module, name, model_path, checkpoint, is_class_dependent):
    """Load a checkpoint's state_dict into registered module `name` (`model_path`: its file, for the
    errors), leaving out the keys that `is_class_dependent(key)` (the module keeps its own for its
    classes). A key of another shape, a missing or an unexpected key is a UserError."""
    state_dict = {k: v for k, v in checkpoint["state_dict"].items() if not is_class_dependent(k)}
    own = module.state_dict()
    for key, value in state_dict.items():
        if key in own and own[key].shape != value.shape:
            raise UserError(
                f'Cannot load "{key}" from "{model_path}": its shape is {tuple(value.shape)} but model '
                f'"{name}" expects {tuple(own[key].shape)}. This usually means a class-count mismatch '
                "(e.g. class-specific context, CSC=True, trained on another class set) or a different "
                "N_CTX / backbone than the checkpoint was trained with: use the checkpoint's config."
            )
    missing, unexpected = module.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not is_class_dependent(k)]
    if missing or unexpected:
        raise UserError(
            f'"{model_path}" does not match model "{name}": missing keys {missing}, '
            f"unexpected keys {unexpected}. Was it trained with another trainer or config?"
        )


class CheckpointMixin:
    """save_model / resume_model_if_exist / load_model for a trainer with registered models.

    Trainers list the state-dict keys that depend on the class set in `class_dependent_keys`
    (matched against the last components of a key, e.g. "token_prefix" or "aux_classifier");
    load_model drops them, so a context learned on one class set loads for another. A key that
    is class-specific but kept (a CSC context, `class_specific_keys`) loads only onto the class
    names it was trained on, unless the caller allows a mismatch.
    """

    class_dependent_keys = ()

    def run_classnames(self):
        return list(self.dm.dataset.classnames)

    def checkpoint_meta(self):
        """What a checkpoint records about the run that wrote it (checked by load_model)."""
        return {"trainer": self.cfg.TRAINER.NAME, "classnames": self.run_classnames()}

    def resume_state(self):
        """The trainer's state, besides the models, that the next epoch consumes."""
        return {"rng": capture_rng_state(), "best_result": float(self.best_result)}

    def restore_resume_state(self, state):
        restore_rng_state(state["rng"])
        self.best_result = state["best_result"]

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        """Save every registered model; without `model_name`, commit epoch `epoch + 1` as resumable."""
        names = self.get_model_names()
        for name in names:
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                    "meta": self.checkpoint_meta(),
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
                update_latest=False,
            )
        if model_name:
            return
        state = {"epoch": epoch + 1, "models": names, **self.resume_state()}
        _atomic_torch_save(state, osp.join(directory, f"{TRAIN_STATE_PREFIX}{epoch + 1}"))
        for name in names:
            _atomic_write_text(f"{MODEL_PREFIX}{epoch + 1}\n", osp.join(directory, name, LATEST_FILE))
        self._remove_old_epochs(directory, names)

    @staticmethod
    def _remove_old_epochs(directory, names):
        kept = set(committed_epochs(directory)[:KEPT_EPOCHS])
        files = [(directory, TRAIN_STATE_PREFIX)] + [(osp.join(directory, name), MODEL_PREFIX) for name in names]
        for folder, prefix in files:
            for epoch, path in _epoch_files(folder, prefix).items():
                if epoch not in kept:
                    os.remove(path)

    def resume_model_if_exist(self, directory):
        names = self.get_model_names()
        epochs = committed_epochs(directory)
        if not epochs:
            return self._resume_older_layout(directory, names)
        print(f"Found checkpoint at {directory} (will resume training)")
        for epoch in epochs:
            try:
                state = load_checkpoint(osp.join(directory, f"{TRAIN_STATE_PREFIX}{epoch}"))
                paths = {name: osp.join(directory, name, f"{MODEL_PREFIX}{epoch}") for name in names}
                checkpoints = {name: load_checkpoint(path) for name, path in paths.items()}
            except (UserError, FileNotFoundError) as error:
                print(f"Cannot resume from epoch {epoch}: {error}")
                continue
            if sorted(state["models"]) != sorted(names):
                raise UserError(
                    f'The checkpoints in "{directory}" hold the models {state["models"]}, this trainer '
                    f"registers {names}: the folder belongs to another trainer. Use another --output-dir."
                )
            for name in names:
                print(f'Loading checkpoint from "{paths[name]}"')
                _load_training_state(checkpoints[name], self._models[name], self._optims[name], self._scheds[name])
            self.restore_resume_state(state)
            print(f"Previous epoch: {epoch}")
            return epoch
        raise UserError(
            f'No readable checkpoint in "{directory}" (see the messages above). Delete its '
            f"{TRAIN_STATE_PREFIX}* files to train from scratch, or use another --output-dir."
        )

    def _resume_older_layout(self, directory, names):
        """Resume from per-module `checkpoint` files (written before train states existed)."""
        latest = {}
        for name in names:
            fpath = osp.join(directory, name, LATEST_FILE)
            if osp.exists(fpath):
                with open(fpath) as f:
                    latest[name] = f.readline().strip()
        if not latest:
            print("No checkpoint found, train from scratch")
            return 0
        if len(latest) < len(names) or len(set(latest.values())) > 1:
            raise UserError(
                f'The checkpoints in "{directory}" are from different epochs ({latest}): the run was interrupted '
                "while saving. Delete the newer files so that every module has the same latest epoch, or use "
                "another --output-dir."
            )
        print(f"Found checkpoint at {directory} (will resume training; no random state saved, so the "
              "resumed run is not bit-identical to an uninterrupted one)")
        start_epoch = 0
        for name in names:
            start_epoch = resume_from_checkpoint(
                osp.join(directory, name), self._models[name], self._optims[name], self._scheds[name]
            )
        return start_epoch

    @classmethod
    def is_class_dependent(cls, key):
        return any(f".{pat}." in f".{key}." for pat in cls.class_dependent_keys)

    def class_specific_keys(self, name):
        """Kept keys of registered model `name` that hold one entry per class (none by default)."""
        return set()

    def load_model(self, directory, epoch=None, allow_mismatch=False):
        """Load `model.pth.tar-<epoch>` (or `model-best.pth.tar`) of every registered model.

        A checkpoint of another trainer, or a class-specific part trained on other class names, is
        a UserError unless `allow_mismatch`.
        """
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        model_file = BEST_FILE if epoch is None else f"{MODEL_PREFIX}{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                saved = sorted(_epoch_files(osp.join(directory, name), MODEL_PREFIX))
                raise UserError(
                    f'Model not found at "{model_path}". Check --model-dir and --load-epoch: the saved epochs '
                    f"there are {saved or 'none'} (a run keeps its last two epochs; evaluate MAX_EPOCH)."
                )
            checkpoint = load_checkpoint(model_path)
            if not allow_mismatch:
                self._check_meta(name, model_path, checkpoint.get("meta"))
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            load_module_weights(self._models[name], name, model_path, checkpoint, self.is_class_dependent)

    def _check_meta(self, name, model_path, meta):
        if not meta:  # written by CoOp, Dassl or an older version: nothing recorded to check
            return
        trainer = self.cfg.TRAINER.NAME
        if meta["trainer"] != trainer:
            raise UserError(
                f'"{model_path}" was trained by {meta["trainer"]}, this run is {trainer}: its weights are not '
                f"meant for this trainer. Point --model-dir at a {trainer} run, or pass --allow-mismatch to load "
                "the matching keys anyway."
            )
        classnames = self.run_classnames()
        specific = sorted(self.class_specific_keys(name))
        if specific and meta["classnames"] != classnames:
            def preview(names):
                return f"{len(names)}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"

            raise UserError(
                f'"{model_path}" holds class-specific weights ({", ".join(specific)}: one context per class, '
                f'CSC True) trained on other classes ({preview(meta["classnames"])}) than this run\'s '
                f"({preview(classnames)}): they cannot describe these classes. Evaluate on the class set it was "
                "trained on, train with CSC False to transfer across class sets, or pass --allow-mismatch if "
                "the classes are the same under other names."
            )
