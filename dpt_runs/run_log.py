"""A run's console log (Dassl's `setup_logger`), the same under either engine: stdout is teed to
`<output>/log.txt`, and a later run into the folder gets `log.txt-<time>` beside it. Unlike Dassl's, two
runs within one second keep one file each (Dassl reopens the same stamped name and truncates it)."""
import os
import os.path as osp
import sys
import time


class Logger:
    """Writes everything printed to the console and to a log file."""

    def __init__(self, fpath):
        self.console = sys.stdout
        os.makedirs(osp.dirname(fpath) or ".", exist_ok=True)
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
