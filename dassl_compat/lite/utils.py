"""Small utilities with Dassl's names: folders, JSON, seeding, meters, parameter counts."""
import errno
import json
import os
import os.path as osp
import random
from collections import defaultdict

import numpy as np
import torch


def mkdir_if_missing(dirname):
    if not osp.exists(dirname):
        try:
            os.makedirs(dirname)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise


def listdir_nohidden(path, sort=False):
    """Entries of `path` without hidden files; sorted when `sort` is set."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def read_json(fpath):
    with open(fpath) as f:
        return json.load(f)


def write_json(obj, fpath):
    """Write JSON atomically (temporary file, then rename)."""
    mkdir_if_missing(osp.dirname(fpath) or ".")
    tmp = f"{fpath}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=4, separators=(",", ": "))
    os.replace(tmp, fpath)


def set_random_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def count_num_param(model=None, params=None):
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in params)


class AverageMeter:
    """Running value and average of a scalar."""

    def __init__(self, ema=False):
        self.ema = ema
        self.reset()

    def reset(self):
        self.val = 0
        self.avg = 0
        self.sum = 0
        self.count = 0

    def update(self, val, n=1):
        if isinstance(val, torch.Tensor):
            val = val.item()
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.val if self.ema and self.count == n else self.sum / self.count


class MetricMeter:
    """A set of named AverageMeters, printed as `name val (avg)`."""

    def __init__(self, delimiter=" "):
        self.meters = defaultdict(AverageMeter)
        self.delimiter = delimiter

    def update(self, input_dict):
        if input_dict is None:
            return
        if not isinstance(input_dict, dict):
            raise TypeError("Input to MetricMeter.update() must be a dictionary")
        for k, v in input_dict.items():
            if isinstance(v, torch.Tensor):
                v = v.item()
            self.meters[k].update(v)

    def __str__(self):
        return self.delimiter.join(f"{name} {m.val:.4f} ({m.avg:.4f})" for name, m in self.meters.items())
