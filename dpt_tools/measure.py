"""Measuring a trainer's time and memory: the helpers that `dpt-benchmark` and `versus_reference` share.

Imports nothing of this project beyond torch, so that a process measuring the authors' code
(`versus_reference_side`) holds none of our modules (`trainers`, `clip`, `dassl_compat`).
"""
import contextlib
import ctypes
import gc
import math

import torch


def rss_kib(field):
    """VmRSS (now) or VmHWM (peak since the last reset) of this process in KiB; None off Linux."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class PeakRSS:
    """The peak RSS above the level at `start()`, in MiB (None where /proc cannot reset the peak)."""

    def start(self):
        gc.collect()
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed memory back, so the start level is real
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # resets VmHWM to the current RSS
        except OSError:
            self.baseline = None
            return
        self.baseline = rss_kib("VmRSS")

    def mib(self):
        peak = rss_kib("VmHWM")
        if self.baseline is None or peak is None:
            return None
        return max(peak - self.baseline, 0) / 1024


def evaluate(trainer, images, n_images):
    """A whole evaluation as test() runs it: eval mode (text features cached afresh), ceil(N / B) batches."""
    trainer.set_model_mode("eval")
    with torch.no_grad():
        for _ in range(math.ceil(n_images / images.shape[0])):
            trainer.model_inference(images)
