"""Console + file logging (Dassl's `setup_logger`) and a short environment report."""
import os.path as osp
import platform
import sys
import time

from .utils import mkdir_if_missing


class Logger:
    """Writes everything printed to the console and to a log file."""

    def __init__(self, fpath):
        self.console = sys.stdout
        mkdir_if_missing(osp.dirname(fpath) or ".")
        self.file = open(fpath, "w", buffering=1)  # line-buffered: a killed run keeps its log

    def write(self, msg):
        self.console.write(msg)
        self.file.write(msg)

    def flush(self):
        self.console.flush()
        self.file.flush()

    def isatty(self):
        return False

    def close(self):
        self.file.close()


def setup_logger(output=None):
    """Tee stdout to `output/log.txt` (or `output` if it ends in .txt/.log); a re-run gets a
    timestamped file next to the first, as in Dassl."""
    if output is None:
        return
    fpath = output if output.endswith((".txt", ".log")) else osp.join(output, "log.txt")
    if osp.exists(fpath):
        stamped = fpath = fpath + time.strftime("-%Y-%m-%d-%H-%M-%S")
        repeat = 0
        while osp.exists(fpath):  # several runs within a second each keep their own log
            repeat += 1
            fpath = f"{stamped}-{repeat}"
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
        sys.stdout = sys.stdout.console
    sys.stdout = Logger(fpath)


def collect_env_info():
    import PIL
    import torch
    import torchvision

    lines = [
        f"Python: {platform.python_version()} ({platform.platform()})",
        f"PyTorch: {torch.__version__}",
        f"torchvision: {torchvision.__version__}",
        f"Pillow: {PIL.__version__}",
        f"CUDA available: {torch.cuda.is_available()}",
    ]
    if torch.cuda.is_available():
        lines.append(f"GPU: {torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}")
    lines.append(f"CPU threads: {torch.get_num_threads()}")
    return "\n".join(lines)
