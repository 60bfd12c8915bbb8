"""Checkpoint I/O in Dassl's file layout, holding plain data only and written atomically.

Layout: `<dir>/<registered model name>/model.pth.tar-<epoch>` (+ `model-best.pth.tar`) and a text
file `checkpoint` naming the latest. Each file is a dict with state_dict, epoch, optimizer,
scheduler and val_result; `torch.load(weights_only=True)` reads it. Files are written to a
temporary name and renamed, so an interrupted save never leaves a truncated checkpoint.
"""
import os
import os.path as osp
import shutil
from collections import OrderedDict

import torch

from .utils import mkdir_if_missing

LATEST_FILE = "checkpoint"
BEST_FILE = "model-best.pth.tar"


def _atomic_torch_save(obj, fpath):
    tmp = f"{fpath}.tmp.{os.getpid()}"
    torch.save(obj, tmp)
    os.replace(tmp, fpath)


def _atomic_write_text(text, fpath):
    tmp = f"{fpath}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, fpath)


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save `state` as `save_dir/model.pth.tar-<epoch>` (or `model_name`) and update `checkpoint`."""
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state["state_dict"] = OrderedDict(
            (k[7:] if k.startswith("module.") else k, v) for k, v in state["state_dict"].items()
        )
    if not model_name:
        model_name = f"model.pth.tar-{state['epoch']}"
    fpath = osp.join(save_dir, model_name)
    _atomic_torch_save(state, fpath)
    print(f"Checkpoint saved to {fpath}")
    _atomic_write_text(f"{osp.basename(fpath)}\n", osp.join(save_dir, LATEST_FILE))
    if is_best:
        best = osp.join(save_dir, BEST_FILE)
        shutil.copy(fpath, best + ".tmp")
        os.replace(best + ".tmp", best)
        print(f'Best checkpoint saved to "{best}"')


def load_checkpoint(fpath):
    """Read a checkpoint with `weights_only=True` onto the CPU."""
    if fpath is None or not osp.exists(fpath):
        raise FileNotFoundError(f'Checkpoint not found at "{fpath}"')
    return torch.load(fpath, map_location="cpu", weights_only=True)


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None):
    """Load the checkpoint that `fdir/checkpoint` names into model / optimizer / scheduler.

    Returns the epoch to start from (the number of finished epochs).
    """
    with open(osp.join(fdir, LATEST_FILE)) as f:
        fpath = osp.join(fdir, f.readline().strip())
    print(f'Loading checkpoint from "{fpath}"')
    checkpoint = load_checkpoint(fpath)
    model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


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


class CheckpointMixin:
    """save_model / resume_model_if_exist / load_model for a trainer with registered models.

    Trainers list the state-dict keys that depend on the class set in `class_dependent_keys`
    (matched against the last components of a key, e.g. "token_prefix" or "cavpt.classifiers");
    load_model drops them, so a context learned on one class set loads for another.
    """

    class_dependent_keys = ()

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name=""):
        for name in self.get_model_names():
            optim, sched = self._optims[name], self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self._models[name].state_dict(),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
            )

    def resume_model_if_exist(self, directory):
        names = self.get_model_names()
        if not all(osp.exists(osp.join(directory, name, LATEST_FILE)) for name in names):
            print("No checkpoint found, train from scratch")
            return 0
        print(f'Found checkpoint at {directory} (will resume training)')
        start_epoch = 0
        for name in names:
            start_epoch = resume_from_checkpoint(
                osp.join(directory, name), self._models[name], self._optims[name], self._scheds[name]
            )
        return start_epoch

    def is_class_dependent(self, key):
        return any(f".{pat}." in f".{key}." for pat in self.class_dependent_keys)

    def load_model(self, directory, epoch=None):
        """Load `model.pth.tar-<epoch>` (or `model-best.pth.tar`) of every registered model."""
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        model_file = BEST_FILE if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(
                    f'Model not found at "{model_path}". Check --model-dir and --load-epoch '
                    f"(the epoch a checkpoint was saved at, e.g. MAX_EPOCH)."
                )
            checkpoint = load_checkpoint(model_path)
            state_dict = {k: v for k, v in checkpoint["state_dict"].items() if not self.is_class_dependent(k)}
            self._check_shapes(name, model_path, state_dict)
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            missing, unexpected = self._models[name].load_state_dict(state_dict, strict=False)
            missing = [k for k in missing if not self.is_class_dependent(k)]
            if missing or unexpected:
                raise RuntimeError(
                    f'"{model_path}" does not match model "{name}": missing keys {missing}, '
                    f"unexpected keys {unexpected}. Was it trained with another trainer or config?"
                )

    def _check_shapes(self, name, model_path, state_dict):
        own = self._models[name].state_dict()
        for key, value in state_dict.items():
            if key in own and own[key].shape != value.shape:
                raise ValueError(
                    f'Cannot load "{key}" from "{model_path}": its shape is {tuple(value.shape)} but model '
                    f'"{name}" expects {tuple(own[key].shape)}. This usually means a class-count mismatch '
                    "(e.g. class-specific context, CSC=True, trained on another class set) or a different "
                    "N_CTX / backbone than the checkpoint was trained with."
                )
