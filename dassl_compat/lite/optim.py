"""Optimisers and epoch-based learning-rate schedules with Dassl's config keys and semantics.

Schedules are closed-form functions of the epoch (no chained recursion, no nested scheduler
objects), so their state_dict is plain data. Dassl's warmup: the warmup learning rate is used for
epochs 0..WARMUP_EPOCH-1; with WARMUP_RECOUNT (Dassl's default) the main schedule then starts
from its own epoch 0 while keeping T_max = MAX_EPOCH, exactly as Dassl's warmup wrapper does.
"""
import math
from bisect import bisect_right

import torch
import torch.nn as nn

from ..errors import UserError

AVAILABLE_OPTIMIZERS = ("sgd", "adam", "adamw", "amsgrad", "rmsprop")
AVAILABLE_SCHEDULERS = ("single_step", "multi_step", "cosine")
AVAILABLE_WARMUPS = ("constant", "linear")


def build_optimizer(model, optim_cfg, param_groups=None):
    """An optimiser over `model` (a module, an iterable of parameters) or explicit `param_groups`.

    Only parameters that require gradients are optimised. Keys: OPTIM.{NAME, LR, WEIGHT_DECAY,
    MOMENTUM, SGD_DAMPNING, SGD_NESTEROV, RMSPROP_ALPHA, ADAM_BETA1, ADAM_BETA2}.
    """
    name = optim_cfg.NAME
    if name not in AVAILABLE_OPTIMIZERS:
        raise UserError(f"OPTIM.NAME must be one of {AVAILABLE_OPTIMIZERS}, got {name!r}")
    if param_groups is None:
        params = model.parameters() if isinstance(model, nn.Module) else model
        param_groups = [p for p in params if p.requires_grad]
    lr, wd = optim_cfg.LR, optim_cfg.WEIGHT_DECAY
    betas = (optim_cfg.ADAM_BETA1, optim_cfg.ADAM_BETA2)
    if name == "sgd":
        return torch.optim.SGD(
            param_groups,
            lr=lr,
            momentum=optim_cfg.MOMENTUM,
            weight_decay=wd,
            dampening=optim_cfg.SGD_DAMPNING,
            nesterov=optim_cfg.SGD_NESTEROV,
        )
    if name in ("adam", "amsgrad"):
        return torch.optim.Adam(param_groups, lr=lr, weight_decay=wd, betas=betas, amsgrad=name == "amsgrad")
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=lr, weight_decay=wd, betas=betas)
    return torch.optim.RMSprop(
        param_groups, lr=lr, momentum=optim_cfg.MOMENTUM, weight_decay=wd, alpha=optim_cfg.RMSPROP_ALPHA
    )


class EpochScheduler(torch.optim.lr_scheduler.LRScheduler):
    """Learning rate per epoch from a closed form; step() once per epoch, like Dassl's schedulers."""

    def __init__(
        self,
        optimizer,
        policy,
        max_epoch,
        stepsize=(-1,),
        gamma=0.1,
        warmup_epoch=0,
        warmup_type="constant",
        warmup_cons_lr=1e-5,
        warmup_min_lr=1e-5,
        warmup_recount=True,
        last_epoch=-1,
    ):
        self.policy = policy
        self.max_epoch = int(max_epoch)
        self.stepsize = [int(s) for s in stepsize]
        self.gamma = float(gamma)
        self.warmup_epoch = max(int(warmup_epoch), 0)
        self.warmup_type = warmup_type
        self.warmup_cons_lr = float(warmup_cons_lr)
        self.warmup_min_lr = float(warmup_min_lr)
        self.warmup_recount = bool(warmup_recount)
        super().__init__(optimizer, last_epoch)

    def main_schedule_lr(self, base_lr, epoch):
        if self.policy == "cosine":
            return 0.5 * base_lr * (1 + math.cos(math.pi * epoch / self.max_epoch))
        if self.policy == "single_step":
            return base_lr * self.gamma ** (epoch // self.stepsize[0])
        return base_lr * self.gamma ** bisect_right(self.stepsize, epoch)

    def lr_at(self, base_lr, epoch):
        if epoch < self.warmup_epoch:
            if self.warmup_type == "constant":
                return self.warmup_cons_lr
            return self.warmup_min_lr if epoch == 0 else base_lr * epoch / self.warmup_epoch
        main_epoch = epoch - self.warmup_epoch if self.warmup_recount else epoch
        return self.main_schedule_lr(base_lr, main_epoch)

    def get_lr(self):
        return [self.lr_at(base_lr, self.last_epoch) for base_lr in self.base_lrs]


def build_lr_scheduler(optimizer, optim_cfg):
    """The schedule of OPTIM.{LR_SCHEDULER, STEPSIZE, GAMMA, MAX_EPOCH, WARMUP_*}."""
    policy = optim_cfg.LR_SCHEDULER
    if policy not in AVAILABLE_SCHEDULERS:
        raise UserError(f"OPTIM.LR_SCHEDULER must be one of {AVAILABLE_SCHEDULERS}, got {policy!r}")
    stepsize = optim_cfg.STEPSIZE
    stepsize = list(stepsize) if isinstance(stepsize, (list, tuple)) else [stepsize]
    if policy == "single_step" and stepsize[0] <= 0:
        stepsize = [optim_cfg.MAX_EPOCH]
    if policy == "multi_step" and any(s <= 0 for s in stepsize):
        raise UserError(f"OPTIM.STEPSIZE must list positive epochs for multi_step, got {stepsize}")
    warmup_epoch = optim_cfg.WARMUP_EPOCH if optim_cfg.WARMUP_EPOCH > 0 else 0
    if warmup_epoch and optim_cfg.WARMUP_TYPE not in AVAILABLE_WARMUPS:
        raise UserError(f"OPTIM.WARMUP_TYPE must be one of {AVAILABLE_WARMUPS}, got {optim_cfg.WARMUP_TYPE!r}")
    return EpochScheduler(
        optimizer,
        policy,
        optim_cfg.MAX_EPOCH,
        stepsize=stepsize,
        gamma=optim_cfg.GAMMA,
        warmup_epoch=warmup_epoch,
        warmup_type=optim_cfg.WARMUP_TYPE,
        warmup_cons_lr=optim_cfg.WARMUP_CONS_LR,
        warmup_min_lr=optim_cfg.WARMUP_MIN_LR,
        warmup_recount=optim_cfg.WARMUP_RECOUNT,
    )
