"""What every CLIP prompt-tuning trainer here shares: loading CLIP, freezing it, precision modes,
parameter-count logging, loading prompts across class sets and multi-process (DDP) training. A
method subclasses `ClipPromptTrainer` and writes `build_model` and `forward_backward`, as in Dassl.
"""
import contextlib
import inspect

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from dassl_compat import TrainerX, count_num_param

from .clip_backbone import load_clip_from_cfg
from .text import TextEncoder

PRECISIONS = ("fp32", "fp16", "amp", "bf16")


class ClipPromptTrainer(TrainerX):
    """A Dassl TrainerX with precision handling for frozen-CLIP methods.

    Precision, from `cfg.TRAINER.<config_node>.PREC`: "fp32"; "fp16" / "amp" (fp16 autocast with a
    GradScaler, fp32 master parameters); "bf16" (bf16 autocast). Parameters always stay fp32, so
    small updates are never rounded away (the reference's pure-fp16 updates lose them).
    """

    config_node = ""

    def __init__(self, cfg):
        super().__init__(cfg)
        model = getattr(self, "model", None)  # zero-shot trainers have nothing to train or wrap
        if model is not None and cfg.MODEL.TEXT_GRAD_CHECKPOINT:
            for module in model.modules():
                if isinstance(module, TextEncoder):
                    module.gradient_checkpointing = True
        if is_distributed():
            self.distribute()

    def distribute(self):
        """Under torchrun: each process trains on its share of every batch through torch's DDP.

        The training batch of the config is the global batch (BATCH_SIZE / world size per process);
        DistributedSampler shuffles with the run's seed. The model is wrapped in
        DistributedDataParallel (gradients of the trainable parameters are averaged across processes);
        registered modules stay the unwrapped ones, so checkpoints are the same as in one process.
        Evaluation runs in every process on the whole test set; only rank 0 prints and saves.
        """
        world_size = dist.get_world_size()
        batch_size = self.cfg.DATALOADER.TRAIN_X.BATCH_SIZE
        if batch_size % world_size:
            raise ValueError(
                f"DATALOADER.TRAIN_X.BATCH_SIZE ({batch_size}) must be divisible by the number of processes "
                f"({world_size}): it is the global batch, split evenly across processes"
            )
        loader = self.train_loader_x
        self.train_loader_x = DataLoader(
            loader.dataset,
            batch_size=batch_size // world_size,
            sampler=DistributedSampler(loader.dataset, shuffle=True, seed=max(self.cfg.SEED, 0), drop_last=True),
            num_workers=loader.num_workers,
            drop_last=True,
            pin_memory=loader.pin_memory,
        )
        model = getattr(self, "model", None)
        if model is not None and any(p.requires_grad for p in model.parameters()):
            device_ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
                if self.device.type == "cuda" else None
            self.model = DistributedDataParallel(self.model, device_ids=device_ids, **ddp_options())

    def before_epoch(self):
        super().before_epoch()
        if isinstance(getattr(self.train_loader_x, "sampler", None), DistributedSampler):
            self.train_loader_x.sampler.set_epoch(self.epoch)

    def save_model(self, *args, **kwargs):
        if is_main_process():
            super().save_model(*args, **kwargs)

    def init_writer(self, log_dir):
        if is_main_process():
            super().init_writer(log_dir)

    @property
    def method_cfg(self):
        return self.cfg.TRAINER[self.config_node]

    @property
    def precision(self):
        return self.method_cfg.PREC

    def check_cfg(self, cfg):
        prec = cfg.TRAINER[self.config_node].PREC
        if prec not in PRECISIONS:
            raise ValueError(f"TRAINER.{self.config_node}.PREC must be one of {PRECISIONS}, got {prec!r}")

    def load_clip(self):
        backbone = self.cfg.MODEL.BACKBONE
        print(f"Loading CLIP (backbone: {backbone.NAME}{', file: ' + backbone.PATH if backbone.PATH else ''})")
        return load_clip_from_cfg(self.cfg)

    def autocast(self):
        """The autocast context of the configured precision (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    @property
    def grad_scaler(self):
        if "_grad_scaler" not in self.__dict__:
            enabled = self.precision in ("fp16", "amp")
            self._grad_scaler = torch.amp.GradScaler(self.device.type, enabled=enabled)
        return self._grad_scaler

    @staticmethod
    def freeze_all_but(model, trainable_prefixes):
        """Turn off gradients of every parameter whose name starts with none of `trainable_prefixes`."""
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith(tuple(trainable_prefixes)))

    def log_trainable_parameters(self, model):
        """Print the trainable parameters per top-level module and in total; returns the total."""
        per_module = {}
        for name, param in model.named_parameters():
            if param.requires_grad:
                top = name.split(".")[0]
                per_module[top] = per_module.get(top, 0) + param.numel()
        total = count_num_param(params=[p for p in model.parameters() if p.requires_grad])
        for top, n in per_module.items():
            print(f"  {top}: {n:,}")
        print(f"Trainable parameters: {total:,}")
        return total

    def parse_batch_train(self, batch):
        return batch["img"].to(self.device), batch["label"].to(self.device)

    def model_backward_and_update(self, loss, names=None):
        """Backward through the GradScaler (identity unless fp16) and step every optimiser."""
        self.model_zero_grad(names)
        self.detect_anomaly(loss)
        scaler = self.grad_scaler
        scaler.scale(loss).backward()
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                scaler.step(self._optims[name])
        scaler.update()

    def model_inference(self, input):
        with self.autocast():
            return self.model(input).float()

    def step_lr_at_epoch_end(self):
        """Dassl trainers step their schedulers after the last batch of an epoch."""
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()


def is_distributed():
    """True in a multi-process run (torchrun) whose process group is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main_process():
    return not is_distributed() or dist.get_rank() == 0


def ddp_options():
    """DDP keyword arguments: no buffer sync at every forward; the buffers (class-name embeddings,
    template features) are identical in every process. (torch >= 2.14 names it forward_sync_buffers.)"""
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}
