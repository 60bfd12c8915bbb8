"""What every CLIP prompt-tuning trainer here shares: loading CLIP, freezing it, precision modes,
parameter-count logging and loading prompts across class sets. A method subclasses
`ClipPromptTrainer` and writes `build_model` and `forward_backward`, as in Dassl.
"""
import contextlib

import torch

from dassl_compat import TrainerX, count_num_param

from .clip_backbone import load_clip_from_cfg

PRECISIONS = ("fp32", "fp16", "amp", "bf16")


class ClipPromptTrainer(TrainerX):
    """A Dassl TrainerX with precision handling for frozen-CLIP methods.

    Precision, from `cfg.TRAINER.<config_node>.PREC`: "fp32"; "fp16" / "amp" (fp16 autocast with a
    GradScaler, fp32 master parameters); "bf16" (bf16 autocast). Parameters always stay fp32, so
    small updates are never rounded away (the reference's pure-fp16 updates lose them).
    """

    config_node = ""

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
