"""The guarded output folder of a run: one process at a time, no leftovers, a recorded config.

- `run.lock`: held (an advisory `flock`) by the process that writes into the folder, with its pid
  and host as content. A second run into the folder stops with a UserError; the lock of a process
  that died (even by SIGKILL) is free again, and the next run takes it over with a note.
- Leftovers of an interrupted run (temporary files, module files of an uncommitted epoch) are
  removed when the next run starts (`checkpoint.remove_leftovers`).
- `config.yaml`: the resolved config of the run whose checkpoints and results the folder holds.
  Resuming with options that change the result is refused, naming the differing keys; the scripts
  compare it before they skip a finished run (`train.py --compare-recorded-config`).
"""
import errno
import fcntl
import os
import os.path as osp
import socket

import yaml

from dpt_models.errors import DISK_FULL_ERRNOS, UserError

from .checkpoint import has_checkpoints, remove_leftovers, temporary_path

LOCK_FILE = "run.lock"
CONFIG_FILE = "config.yaml"
# Options that do not change what a run computes: where files are, what is printed, how often
# checkpoints are written, how many loader processes read the images, the device.
BOOKKEEPING_KEYS = frozenset(
    {
        "OUTPUT_DIR",
        "RESUME",
        "VERBOSE",
        "USE_CUDA",
        "DATASET.ROOT",
        "MODEL.BACKBONE.PATH",
        "DATALOADER.NUM_WORKERS",
        "TRAIN.PRINT_FREQ",
        "TRAIN.CHECKPOINT_FREQ",
        "TEST.PER_CLASS_RESULT",
        "TEST.COMPUTE_CMAT",
    }
)


class OutputFolderLock:
    """The lock file of an output folder, held by this process between acquire() and release()."""

    def __init__(self, directory):
        self.directory = directory
        self.path = osp.join(directory, LOCK_FILE)
        self.fd = None
        self.note = ""  # what acquire() found, printed once the run's log is open

    def acquire(self):
        while True:
            fd = self.open_lock_file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 200).decode(errors="replace").strip() or "a process"
                os.close(fd)
                raise UserError(
                    f'Another run is writing into the output folder "{self.directory}" ({holder}, see {self.path}). '
                    "Two runs in one folder would overwrite each other's checkpoints: wait for it to finish, or "
                    "give this run another --output-dir. If no such run exists (e.g. on a machine that shares "
                    f"the folder and crashed), delete {self.path}."
                ) from None
            try:
                same_file = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same_file = False
            if same_file:
                break
            os.close(fd)  # the holder released and removed the file between our open and flock: retry
        previous = os.read(fd, 200).decode(errors="replace").strip()
        if previous:
            self.note = f"Note: took over the lock {self.path} of a run that is no longer running ({previous})"
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def open_lock_file(self):
        """The lock file's descriptor, the folder made first; a folder that cannot be written is a UserError."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            if err.errno in DISK_FULL_ERRNOS:
                raise  # reported as a full disk (dassl_compat.errors)
            raise UserError(f'The output folder "{self.directory}" cannot be written: {unwritable_reason(err)}. '
                            "Give --output-dir a folder you can write to (a missing one is created).") from err

    def release(self):
        if self.fd is None:
            return
        os.remove(self.path)
        os.close(self.fd)
        self.fd = None


def unwritable_reason(err):
    """Why a folder could not be made or written, from the OSError of os.makedirs / os.open."""
    if err.errno == errno.EEXIST:
        return f"{err.filename} is a file, not a folder"
    if err.errno == errno.ENOTDIR:
        return f"a part of {err.filename} is a file, not a folder"
    if err.errno == errno.EROFS:
        return f"{err.filename} is on a read-only disk"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"no permission to write {err.filename}"
    return f"{err.strerror} ({err.filename})"


def flatten(tree, prefix=""):
    """{"A.B.C": value} of a nested dict (a config as YAML reads it)."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def flat_config(cfg):
    """The flat yacs config, values as YAML reads them back (tuples become lists)."""
    return flatten(yaml.safe_load(cfg.dump()))


def read_recorded_config(directory):
    """The config recorded in `directory` as a nested dict, or None when there is none."""
    path = osp.join(directory, CONFIG_FILE)
    if not osp.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def recorded_config(directory):
    """The flat config recorded in `directory`, or None when there is none."""
    recorded = read_recorded_config(directory)
    return None if recorded is None else flatten(recorded)


def differing_options(recorded, cfg):
    """[(key, recorded value, requested value)] of the result-changing options that differ."""
    requested = flat_config(cfg)
    return [
        (key, recorded[key], value)
        for key, value in sorted(requested.items())
        if key in recorded and key not in BOOKKEEPING_KEYS and recorded[key] != value
    ]


def check_recorded_config(cfg, directory):
    """Raise a UserError naming the keys whose values differ from the config recorded in `directory`."""
    recorded = recorded_config(directory)
    if recorded is None:
        return
    differ = differing_options(recorded, cfg)
    if differ:
        changes = "; ".join(f"{key}: {old!r} there, {new!r} now" for key, old, new in differ)
        raise UserError(
            f'The run in "{directory}" was made with other options than this one ({changes}; recorded in '
            f"{osp.join(directory, CONFIG_FILE)}). Resuming it, or reporting its result for these options, would "
            "mix two configurations. Give this run another output folder (--output-dir, or OUTPUT= for the "
            "scripts), delete the old folder to start again, or use the recorded options."
        )


def record_config(cfg, directory):
    path = osp.join(directory, CONFIG_FILE)
    tmp = temporary_path(path)
    with open(tmp, "w") as f:
        f.write(cfg.dump())
    os.replace(tmp, path)


def lock_output_folder(cfg):
    """Lock OUTPUT_DIR before anything is written there; release the returned lock when the run ends."""
    return OutputFolderLock(cfg.OUTPUT_DIR).acquire()


def tidy_output_folder(cfg, lock):
    """Once the log is open: report a taken-over lock and remove what an interrupted run left."""
    if lock.note:
        print(lock.note)
    remove_leftovers(cfg.OUTPUT_DIR)


def record_run(cfg, training):
    """Refuse to resume a run made with other options, then record this run's config.

    Called once the trainer is built (its own checks of the options come first) and before it
    trains. A training run records its config; an evaluation records it only in a folder without
    checkpoints (its own, not a training run's).
    """
    resume_dir = cfg.RESUME or cfg.OUTPUT_DIR
    if training and has_checkpoints(resume_dir):
        check_recorded_config(cfg, resume_dir)
    if training or not has_checkpoints(cfg.OUTPUT_DIR):
        record_config(cfg, cfg.OUTPUT_DIR)
