"""`dpt-sweep`: the paper's grids (few-shot, base-to-new, cross-dataset, domain generalisation) as one
command, run on a SLURM cluster (submitit, one job per run) or on this machine, N runs at a time.

    dpt-sweep launch --protocol few-shot --trainers DPT CoOp --datasets all --shots 1 2 4 8 16 \\
        --seeds 1 2 3 --root $DATA --output output --executor slurm --partition gpu --gpus 1
    dpt-sweep launch --spec few-shot --trainers DPT --root $DATA --executor slurm   # a shipped grid
    dpt-sweep launch --protocol few-shot --trainers CoOp --datasets toy_fog --shots 2 --seeds 1 2 \\
        --root data --executor local --jobs 2 OPTIM.MAX_EPOCH 2
    dpt-sweep status output

Every run is the run `bash scripts/<method>/<script>.sh` makes: the same train.py arguments and the
same run folder, so dpt-results / dpt-plot read a sweep unchanged and a sweep and the scripts share an
output folder. A method's settings (variant options such as N_CTX / CSC / class-token position, its
ImageNet options) are read from its scripts/<method>/settings.sh, the one place they are written.

Launching again is safe: a finished run is skipped (its recorded config must equal the requested one,
compared as `train.py --compare-recorded-config` does), an interrupted run is resumed from its last
epoch, a run queued or running is left alone. The sweep's state (which job runs which folder, one log
per run) is `<output>/.sweep/`, written atomically.
"""
import argparse
import concurrent.futures
import contextlib
import dataclasses
import difflib
import fcntl
import functools
import io
import json
import os
import os.path as osp
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools.config_files import resolve_config, shipped_config_root
from dpt_tools.results_common import (
    CROSS_DATASET_TARGETS,
    DOMAIN_GENERALIZATION_TARGETS,
    FEW_SHOT_BENCHMARKS,
    config_stem,
    run_accuracy,
)

PROTOCOLS = ("few-shot", "base2new", "xd", "dg")
PROTOCOL_DATASETS = {
    "few-shot": FEW_SHOT_BENCHMARKS,
    "base2new": FEW_SHOT_BENCHMARKS,
    "xd": CROSS_DATASET_TARGETS,
    "dg": DOMAIN_GENERALIZATION_TARGETS,
}
# The scripts a method needs for each protocol (scripts/<method>/<name>.sh).
PROTOCOL_SCRIPTS = {
    "few-shot": ("main",),
    "base2new": ("base2new_train", "base2new_test"),
    "xd": ("xd_train", "xd_test"),
    "dg": ("xd_train", "eval"),
}
TRANSFER_SOURCE = "imagenet"  # the source dataset of the cross-dataset and DG protocols, as in the scripts
PACKAGE_DIR = Path(__file__).resolve().parent
# the methods' settings.sh: an installed wheel's copy of scripts/ (package data, as configs/), else the clone's
SCRIPTS_DIR = PACKAGE_DIR / "scripts" if (PACKAGE_DIR / "scripts").is_dir() else PACKAGE_DIR.parent / "scripts"
SPEC_DIR = PACKAGE_DIR / "sweeps"
STATE_DIR = ".sweep"
STATE_FILE = "state.json"
VARIANT_SETTINGS = (("NCTX", "nctx", "N_CTX"), ("CSC", "csc", "CSC"), ("CTP", "ctp", "CLASS_TOKEN_POSITION"))
SPEC_FIELDS = {
    "protocol", "trainers", "configs", "datasets", "shots", "seeds", "root", "output", "opts", "executor",
    "jobs", "threads", "partition", "time", "cpus", "gpus", "mem", "account", "qos", "array_parallelism",
    "sbatch", "wait",
}
SLURM_RETRY_PAUSE = 5  # seconds between tries of a SLURM command that failed
# SLURM's reasons for a pending job that stay until the job or the cluster is changed: such a job is "stuck".
NEVER_STARTS = ("PartitionConfig", "BadConstraints", "PartitionNodeLimit", "PartitionTimeLimit", "InvalidAccount",
                "InvalidQOS", "DependencyNeverSatisfied")


# ---------------------------------------------------------------------------------------------- trainers
def registered_trainers():
    """The names of the registered trainers (this project's and any imported plugin's), sorted."""
    import trainers  # noqa: F401  (registers the trainers)
    from dassl_compat import TRAINER_REGISTRY

    return sorted(TRAINER_REGISTRY.registered_names())


def is_zero_shot(trainer):
    """Zero-shot CLIP trainers learn nothing: one evaluation per dataset (scripts/zsclip/zeroshot.sh)."""
    return trainer.lower().startswith("zeroshot")


@dataclasses.dataclass(frozen=True)
class MethodScripts:
    """What scripts/<method>/settings.sh sets for a trainer, and which entry points the method has."""

    folder: Path
    cfg_node: str
    default_cfg: str
    variant: tuple  # ((setting, tag prefix, value), ...) of the variant options that are set
    imagenet_opts: tuple
    entry_points: frozenset


@functools.cache
def method_scripts(trainer):
    """The scripts/<method> folder whose main.sh runs `trainer`, read from its settings.sh (None: no such
    folder, e.g. for a plugin's trainer)."""
    for main in sorted(SCRIPTS_DIR.glob("*/main.sh")):
        if not re.search(rf'common/main\.sh" {re.escape(trainer)} ', main.read_text()):
            continue
        names = ["CFG_NODE", "DEFAULT_CFG", *(setting for setting, _, _ in VARIANT_SETTINGS), "IMAGENET_OPTS"]
        clean = {key: value for key, value in os.environ.items() if key not in names}
        printed = subprocess.run(
            ["bash", "-c", 'source "$0" && printf "%s\\0" ' + " ".join(f'"${{{name}:-}}"' for name in names),
             str(main.parent / "settings.sh")],
            env=clean, capture_output=True, text=True, check=True,
        ).stdout.split("\0")[:-1]
        values = dict(zip(names, printed))
        variant = tuple((setting, tag, values[setting]) for setting, tag, _ in VARIANT_SETTINGS if values[setting])
        return MethodScripts(
            folder=main.parent, cfg_node=values["CFG_NODE"], default_cfg=values["DEFAULT_CFG"], variant=variant,
            imagenet_opts=tuple(values["IMAGENET_OPTS"].split()),
            entry_points=frozenset(path.stem for path in main.parent.glob("*.sh")),
        )
    return None


def default_config(trainer):
    """The config a run of `trainer` uses when none is given, as `<Trainer folder>/<name>` (e.g. "DPT/vit_b32"):
    its scripts' DEFAULT_CFG (scripts/<method>/settings.sh: what `bash scripts/<method>/main.sh` runs), else
    the trainer class's `default_config` attribute (a trainer without scripts)."""
    import trainers  # noqa: F401  (registers the trainers)
    from dassl_compat import TRAINER_REGISTRY

    scripts = method_scripts(trainer)
    if scripts is not None:
        return f"{trainer}/{scripts.default_cfg}"
    declared = getattr(TRAINER_REGISTRY.get(trainer), "default_config", None)
    if declared:
        return declared
    if is_zero_shot(trainer):
        return "CoOp/vit_b16"  # scripts/zsclip/zeroshot.sh: CoOp's configs, the paper's backbone
    raise UserError(
        f"Trainer {trainer} names no default config (no scripts/<method>/ folder, no `default_config` "
        f"attribute): give one with --configs {trainer}/<name>."
    )


def has_default_config(trainer):
    """Whether `default_config(trainer)` has an answer (scripts, or the class's attribute)."""
    from dassl_compat import TRAINER_REGISTRY

    return method_scripts(trainer) is not None or bool(getattr(TRAINER_REGISTRY.get(trainer), "default_config", ""))


def supports(trainer, protocol):
    """Whether the trainer's scripts cover the protocol (a trainer without scripts: every protocol)."""
    if is_zero_shot(trainer):
        return protocol != "base2new"
    scripts = method_scripts(trainer)
    return scripts is None or set(PROTOCOL_SCRIPTS[protocol]) <= scripts.entry_points


# ---------------------------------------------------------------------------------------------- the runs
@dataclasses.dataclass(frozen=True)
class Run:
    """One train.py run of a sweep: its folder (relative to the output root: `name`), its arguments, and
    the training run it evaluates (`after`, the name of that run; None for a training run)."""

    name: str
    args: tuple
    after: str = None

    def folder(self, output):
        return osp.join(output, self.name)


@dataclasses.dataclass(frozen=True)
class Grid:
    """A sweep's parameters (the command line or a spec file)."""

    protocol: str
    trainers: tuple
    configs: tuple
    datasets: tuple
    shots: tuple
    seeds: tuple
    root: str
    output: str
    opts: tuple


def trainer_configs(trainer, configs):
    """[(config folder, config name)] of `trainer` among `configs` ("vit_b16" or "DPT/vit_b16"; none: its default)."""
    if not configs:
        folder, name = default_config(trainer).split("/")
        return [(folder, name)]
    folder = default_config(trainer).split("/")[0] if is_zero_shot(trainer) else trainer
    chosen = []
    for config in configs:
        owner, _, name = config.rpartition("/")
        if owner in ("", folder, trainer):
            chosen.append((folder, name))
    if not chosen:
        raise UserError(f"--configs {' '.join(configs)}: none is a config of {trainer}. Add {trainer}/<name>.")
    for folder, name in chosen:
        resolve_config(f"{folder}/{name}", "trainers")  # a UserError listing the shipped names if absent
    return chosen


def variant_options(trainer):
    """(folder level, options) of the method's variant (scripts/common/lib.sh variant_options)."""
    scripts = method_scripts(trainer)
    if scripts is None or not scripts.variant:
        return "", ()
    tag = "_".join(f"{prefix}{value}" for _, prefix, value in scripts.variant)
    key = {setting: key for setting, _, key in VARIANT_SETTINGS}
    node = f"TRAINER.{scripts.cfg_node}"
    return tag, tuple(word for setting, _, value in scripts.variant for word in (f"{node}.{key[setting]}", value))


def load_epoch(config_file, opts):
    """The epoch whose checkpoint an evaluation loads: OPTIM.MAX_EPOCH of the options, else of the config."""
    pairs = dict(zip(opts[::2], opts[1::2]))
    if "OPTIM.MAX_EPOCH" in pairs:
        return str(pairs["OPTIM.MAX_EPOCH"])
    with open(resolve_config(config_file, "trainers")) as file:
        return str(yaml.safe_load(file)["OPTIM"]["MAX_EPOCH"])


def plan(grid):
    """The runs of a grid, training runs before the evaluations that need them, each once."""
    runs = {}
    for trainer in grid.trainers:
        tag, variant_opts = variant_options(trainer)
        scripts = method_scripts(trainer)
        imagenet_opts = scripts.imagenet_opts if scripts else ()
        for folder_name, config in trainer_configs(trainer, grid.configs):
            for run in trainer_runs(grid, trainer, folder_name, config, tag, variant_opts, imagenet_opts):
                runs.setdefault(run.name, run)
    return list(runs.values())


def options_for(trainer, opts):
    """The trailing KEY VALUE options that concern `trainer`: every key, except a `TRAINER.<NODE>.*` key of
    another trainer's node (train.py refuses another trainer's section), so that one sweep can set CoOp's and
    DPT's options side by side."""
    from dassl_compat import TRAINER_REGISTRY

    method = TRAINER_REGISTRY.get(trainer)
    owners = [method, *(TRAINER_REGISTRY.get(name) for name in getattr(method, "shares_config_files_with", ()))]
    nodes = {getattr(owner, "config_node", "") for owner in owners}
    pairs = list(zip(opts[::2], opts[1::2]))
    return tuple(word for key, value in pairs
                 if not (key.startswith("TRAINER.") and key.count(".") >= 2 and key.split(".")[1] not in nodes)
                 for word in (key, value))


def trainer_runs(grid, trainer, folder_name, config, tag, variant_opts, imagenet_opts):
    """The runs of one trainer and config, as scripts/common/*.sh writes them."""
    variant = f"{tag}/" if tag else ""
    common = variant_opts + options_for(trainer, grid.opts)
    has_toy_config = (shipped_config_root() / "trainers" / folder_name / "toy.yaml").is_file()

    def config_for(dataset):
        """scripts/common/lib.sh default_cfg: on a toy dataset the trainer's toy recipe, unless --configs."""
        return "toy" if dataset.startswith("toy_") and has_toy_config and not grid.configs else config

    def run(name, dataset, seed, cfg, *options, after=None):
        seed_args = ("--seed", str(seed)) if seed is not None else ()
        return Run(name, ("--root", grid.root, *seed_args, "--trainer", trainer,
                          "--dataset-config-file", f"configs/datasets/{dataset}.yaml",
                          "--config-file", f"configs/trainers/{folder_name}/{cfg}.yaml",
                          "--output-dir", osp.join(grid.output, name), *options), after)

    def training(name, dataset, shots, seed, *subsample):
        dataset_opts = imagenet_opts if dataset == TRANSFER_SOURCE else ()
        return run(name, dataset, seed, config_for(dataset), "DATASET.NUM_SHOTS", str(shots), *subsample, *common,
                   *dataset_opts)

    def evaluation(name, dataset, seed, cfg, trained, *options):
        return run(name, dataset, seed, cfg, "--model-dir", osp.join(grid.output, trained.name), "--load-epoch",
                   load_epoch(f"{folder_name}/{cfg}", grid.opts), "--eval-only", *options, after=trained.name)

    if is_zero_shot(trainer):
        datasets = grid.datasets if grid.protocol == "few-shot" else (TRANSFER_SOURCE, *grid.datasets)
        for dataset in datasets:
            cfg = config_for(dataset)
            yield run(f"{trainer}/{cfg}/{dataset}", dataset, None, cfg, "--eval-only", *common)
        return
    for seed in grid.seeds:
        for shots in grid.shots:
            if grid.protocol == "few-shot":
                for dataset in grid.datasets:
                    cfg = config_for(dataset)
                    yield training(f"{dataset}/{trainer}/{cfg}_{shots}shots/{variant}seed{seed}", dataset, shots, seed)
            elif grid.protocol == "base2new":  # no variant level in these folders, as in CoOp's scripts
                for dataset in grid.datasets:
                    cfg = config_for(dataset)
                    where = f"{dataset}/shots_{shots}/{trainer}/{cfg}/seed{seed}"
                    trained = training(f"base2new/train_base/{where}", dataset, shots, seed,
                                       "DATASET.SUBSAMPLE_CLASSES", "base")
                    yield trained
                    yield evaluation(f"base2new/test_new/{where}", dataset, seed, cfg, trained,
                                     "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", "new", *common)
            else:  # xd, dg: the ImageNet prompts (the few-shot run) evaluated on each target dataset
                trained = training(f"{TRANSFER_SOURCE}/{trainer}/{config}_{shots}shots/{variant}seed{seed}",
                                   TRANSFER_SOURCE, shots, seed)
                yield trained
                for dataset in grid.datasets:
                    name = f"evaluation/{trainer}/{config}_{shots}shots/{variant}{dataset}/seed{seed}"
                    yield evaluation(name, dataset, seed, config, trained, *common)


def train_command(args):
    """The command line of one run: this Python running dpt_tools.train (what train.py runs) with `args`."""
    return [sys.executable, "-m", "dpt_tools.train", *args]


def config_dir():
    """Where runs start: the folder holding configs/ (the clone, or the installed dpt_tools package)."""
    return str(shipped_config_root().parent)


# ---------------------------------------------------------------------------------------------- checks
def check_datasets(grid, runs):
    """Before anything is submitted: every dataset of the runs is under --root (a missing toy dataset is
    generated here once, not by several runs at the same time)."""
    import clip_datasets  # noqa: F401  (registers the datasets)
    from clip_datasets.toy import TOY_DATA_SEED, ToyDataset
    from dassl_compat import DATASET_REGISTRY
    from dpt_toyworld.benchmarks import write_toy_dataset

    if not osp.isdir(grid.root):
        raise UserError(f"--root {grid.root}: no such folder. Give the folder that holds the datasets ($DATA, "
                        "see DATASETS.md).")
    datasets = sorted({run.args[run.args.index("--dataset-config-file") + 1] for run in runs})
    missing = []
    for dataset_file in datasets:
        with open(resolve_config(dataset_file, "datasets")) as file:
            reader = DATASET_REGISTRY.get(yaml.safe_load(file)["DATASET"]["NAME"])
        folder = osp.join(grid.root, reader.folder)
        if issubclass(reader, ToyDataset):
            if not osp.isdir(folder):
                write_toy_dataset(reader.spec, grid.root, seed=TOY_DATA_SEED)
        elif not osp.isdir(folder):
            missing.append(f"{Path(dataset_file).stem} ({folder})")
    if missing:
        raise UserError(
            f"Datasets missing under --root {grid.root}: {', '.join(missing)}. Nothing was submitted. Prepare them "
            "as DATASETS.md says (`dpt-check-data --root ROOT` checks them), fix --root, or leave them out with "
            "--datasets."
        )


def recorded_config_differs(run, output):
    """The error train.py gives for this run's options against the config recorded in its folder, or None
    (train.py --compare-recorded-config, in this process)."""
    from dpt_tools import train

    args = train.build_parser().parse_args(["--compare-recorded-config", *run.args])
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            train.run(args)
    except UserError as error:
        return str(error)
    return None


# ---------------------------------------------------------------------------------------------- state
class SweepState:
    """`<output>/.sweep/state.json`: {run name: {"args", "after", "log", "job"}} where job says how the run
    was last started ({"executor": "slurm", "id": "123_4"} or {"executor": "local", "host", "pid",
    "returncode"}). Read and written under a lock, replaced atomically."""

    def __init__(self, output):
        self.output = output
        self.folder = osp.join(output, STATE_DIR)
        self.path = osp.join(self.folder, STATE_FILE)
        self.lock = threading.Lock()
        self.launch_lock = None

    def log_path(self, name):
        return osp.join(self.folder, "logs", name.replace("/", "__") + ".log")

    @contextlib.contextmanager
    def editing(self):
        """The state as a dict, written back atomically when the block ends (one writer at a time)."""
        os.makedirs(self.folder, exist_ok=True)
        with self.lock, open(osp.join(self.folder, "state.lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            state = self.read()
            yield state
            tmp = f"{self.path}.tmp.{os.getpid()}"
            with open(tmp, "w") as file:
                json.dump(state, file, indent=1, sort_keys=True)
            os.replace(tmp, self.path)

    @contextlib.contextmanager
    def launching(self):
        """Held by one launch at a time, from reading the runs' status until its runs are submitted (or
        marked for this machine): two launches never submit the same run."""
        os.makedirs(self.folder, exist_ok=True)
        self.launch_lock = open(osp.join(self.folder, "launch.lock"), "w")
        fcntl.flock(self.launch_lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            self.launched()

    def launched(self):
        if self.launch_lock is not None:
            self.launch_lock.close()
            self.launch_lock = None

    def read(self):
        if not osp.isfile(self.path):
            return {"runs": {}}
        with open(self.path) as file:
            return json.load(file)


def slurm_answer(command, tries=3):
    """The output of a SLURM command (squeue, sinfo). When it fails (slurmctld busy or down) it is tried again,
    then a UserError: an empty answer must never be read as "no jobs queued" (the runs would be submitted twice)."""
    error = ""
    for attempt in range(tries):
        if attempt:
            time.sleep(SLURM_RETRY_PAUSE)
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            error = "no answer in 60 s"
            continue
        if done.returncode == 0:
            return done.stdout
        error = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
    raise UserError(f"{shlex.join(command)} failed ({error}), so the sweep cannot tell which of its jobs SLURM holds "
                    "and submits nothing on a guess. Check that the cluster answers (squeue), then run the command "
                    "again.")


def slurm_states(job_ids):
    """{job id: (SLURM state, reason)} of the jobs squeue still lists (pending, running, requeued...)."""
    if not job_ids or shutil.which("squeue") is None:
        return {}
    listed = slurm_answer(["squeue", "-h", "-r", "-o", "%i %T %r"])
    states = {job: (state, reason) for job, state, reason in
              (line.split(maxsplit=2) for line in listed.splitlines() if line.strip())}
    return {job: states[job] for job in job_ids if job in states}


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def last_error_line(log):
    """The last line of a run's log that says something (train.py's error paragraph ends a failed run)."""
    if not osp.isfile(log):
        return "no log"
    lines = [line.strip() for line in Path(log).read_text(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("=== ")]
    return lines[-1] if lines else "empty log"


def is_done(folder):
    """Whether a run folder holds a result (the accuracy dpt-results reads)."""
    return osp.isdir(folder) and run_accuracy(Path(folder)) is not None


def run_status(name, entry, output, queued):
    """(status, detail) of a run: done / queued / running / stuck (pending for a reason in NEVER_STARTS) /
    failed / not started."""
    if is_done(osp.join(output, name)):
        return "done", ""
    job = entry.get("job")
    if not job:
        return "not started", ""
    if job["executor"] == "slurm":
        state, reason = queued.get(job["id"], (None, ""))
        if state in ("RUNNING", "COMPLETING", "CONFIGURING"):
            return "running", f"job {job['id']}"
        if state == "PENDING" and reason in NEVER_STARTS:
            return "stuck", (f"job {job['id']} pending, and SLURM will not start it: {reason}. Launch again with "
                             "resources the partition has (the stuck job is cancelled), or scancel it.")
        if state is not None:
            return "queued", f"job {job['id']} {state.lower()}"
    elif job.get("returncode") is None and job["host"] == socket.gethostname() and process_alive(job["pid"]):
        return ("running" if job.get("started") else "queued"), f"local pid {job['pid']}"
    return "failed", last_error_line(entry["log"])


def statuses(output):
    """[(name, status, detail, log)] of every run of the sweeps launched into `output`."""
    runs = SweepState(output).read()["runs"]
    queued = slurm_states([e["job"]["id"] for e in runs.values() if e.get("job", {}).get("executor") == "slurm"])
    return [(name, *run_status(name, entry, output, queued), entry["log"]) for name, entry in runs.items()]


# ---------------------------------------------------------------------------------------------- running
def run_train_process(args, log, threads, cuda_devices=None, header=""):
    """Run train.py with `args`, its output appended to `log`; returns its exit status."""
    os.makedirs(osp.dirname(log), exist_ok=True)
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    if cuda_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_devices
    with open(log, "a") as file:
        file.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {header}on {socket.gethostname()}: "
                   f"{shlex.join(train_command(args))}\n")
        file.flush()
        return subprocess.run(train_command(args), stdout=file, stderr=subprocess.STDOUT, env=env,
                              cwd=config_dir()).returncode


class SlurmRun:
    """What a SLURM job of the sweep runs: train.py, resumed from its last epoch when SLURM preempts the job
    or its time runs out (submitit requeues it: checkpoint() hands the same call back)."""

    def __call__(self, args, log, threads):
        job = os.environ.get("SLURM_ARRAY_JOB_ID", "")
        job = f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}" if job else os.environ.get("SLURM_JOB_ID", "")
        restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
        status = run_train_process(args, log, threads, header=f"job {job} (restart {restarts}) ")
        if status != 0:
            raise RuntimeError(f"train.py exited with status {status}: {last_error_line(log)} (log: {log})")
        return status

    def checkpoint(self, *args):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args)


def local_cuda_devices():
    """The GPUs a local sweep spreads its runs over (one run per GPU), or [] on a machine without one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device for device in visible.split(",") if device.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def launch_local(runs, state, jobs, threads):
    """Run the runs on this machine, `jobs` at a time, evaluations after their training run; blocks."""
    devices = local_cuda_devices()
    jobs = min(jobs, len(devices)) if devices else jobs
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    free_devices = list(devices)
    print(f"Running {len(runs)} run(s) on this machine, {jobs} at a time, {threads} CPU thread(s) each"
          + (f", one GPU each ({', '.join(devices)})" if devices else ""), flush=True)
    device_lock = threading.Lock()

    def execute(run):
        with device_lock:
            device = free_devices.pop(0) if free_devices else None
        with state.editing() as data:
            data["runs"][run.name]["job"]["started"] = time.time()
        try:
            status = run_train_process(run.args, state.log_path(run.name), threads, device)
        finally:
            if device is not None:
                with device_lock:
                    free_devices.append(device)
        with state.editing() as data:
            data["runs"][run.name]["job"]["returncode"] = status
        print(f"{'done  ' if status == 0 else 'FAILED'} {run.name}", flush=True)
        return status

    names = {run.name for run in runs}
    first = [run for run in runs if run.after not in names]
    waiting = [run for run in runs if run.after in names]
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, run): run for run in first}
        while futures:
            finished, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in finished:
                run = futures.pop(future)
                for dependent in [r for r in waiting if r.after == run.name]:
                    waiting.remove(dependent)
                    if future.result() == 0:
                        futures[pool.submit(execute, dependent)] = dependent
                    else:
                        with state.editing() as data:
                            data["runs"][dependent.name]["job"]["returncode"] = -1
                        with open(state.log_path(dependent.name), "a") as log:
                            log.write(f"not run: its training run {run.name} failed\n")


def slurm_partitions():
    """({partition: the most CPUs one of its nodes has}, the cluster's default partition or "")."""
    most, default = {}, ""
    for line in slurm_answer(["sinfo", "-h", "-o", "%P %c"]).splitlines():
        name, cpus = line.split()
        if name.endswith("*"):  # sinfo marks the default partition
            name = default = name[:-1]
        most[name] = max(most.get(name, 0), int(cpus.rstrip("+")))
    return most, default


def check_slurm(options):
    """A UserError unless SLURM answers here and the partition exists."""
    if shutil.which("sbatch") is None:
        raise UserError(
            "--executor slurm: sbatch is not on PATH, so this machine cannot submit SLURM jobs. Run dpt-sweep on "
            "the cluster's login node, or use --executor local --jobs N on this machine."
        )
    partitions, default = slurm_partitions()
    if options.partition and options.partition not in partitions:
        raise UserError(
            f"--partition {options.partition}: SLURM has no such partition (sinfo lists: "
            f"{', '.join(sorted(partitions)) or 'none'}). Give one of these."
        )
    partition = options.partition or default
    cpus = partitions.get(partition, 0)
    if cpus and options.cpus > cpus:
        raise UserError(f"--cpus {options.cpus}: the nodes of partition {partition} have at most {cpus} CPUs, so "
                        f"SLURM would never start these jobs. Give --cpus {cpus} or fewer, or another --partition.")


def launch_slurm(runs, state, options, queued_training):
    """Submit the runs through submitit: training runs as one job array, each training run's evaluations
    as an array that starts after it succeeded (afterok), also when that training run is still queued or
    running from an earlier launch (`queued_training`: {its name: its job id})."""
    try:
        import submitit
    except ImportError:
        raise UserError("--executor slurm submits through submitit, which is not installed: "
                        "pip install 'dpt-prompt-tuning[slurm]' (or pip install submitit).") from None

    executor = submitit.SlurmExecutor(folder=osp.join(state.folder, "slurm", "%j"), max_num_timeout=10)
    extra = dict(pair.split("=", 1) for pair in as_words(options.sbatch))
    parameters = {
        "partition": options.partition or None, "time": options.time, "cpus_per_task": options.cpus,
        "gpus_per_node": options.gpus or None, "mem": options.mem or None, "account": options.account or None,
        "qos": options.qos or None, "array_parallelism": options.array_parallelism, "job_name": "dpt-sweep",
    }
    executor.update_parameters(**{key: value for key, value in parameters.items() if value is not None})
    submitted = dict(queued_training)
    groups = {None: [run for run in runs if run.after not in submitted and run.after not in {r.name for r in runs}]}
    for run in runs:
        if run not in groups[None]:
            groups.setdefault(run.after, []).append(run)
    for after, group in groups.items():
        if not group:
            continue
        dependency = {"dependency": f"afterok:{submitted[after]}", "kill_on_invalid_dep": "yes"} if after else {}
        executor.update_parameters(additional_parameters={**extra, **dependency})
        try:
            jobs = executor.map_array(SlurmRun(), [run.args for run in group],
                                      [state.log_path(r.name) for r in group], [options.cpus] * len(group))
        except submitit.core.utils.FailedJobError as refused:
            reason = (str(refused).strip().splitlines() or ["no reason given"])[-1]
            before = len(submitted) - len(queued_training)
            raise UserError(f"sbatch refused {len(group)} run(s) of the sweep ({reason}); {before} run(s) were "
                            "submitted before. Ask for resources the partition has (--cpus, --gpus, --mem, --time, "
                            "--sbatch) and launch again: the submitted runs are kept.") from None
        with state.editing() as data:
            for run, job in zip(group, jobs):
                submitted[run.name] = job.job_id
                data["runs"][run.name]["job"] = {"executor": "slurm", "id": job.job_id}
        print(f"Submitted {len(group)} run(s) as job array {jobs[0].job_id.split('_')[0]}"
              + (f" (after {after})" if after else ""))


# ---------------------------------------------------------------------------------------------- commands
def shipped_specs():
    return sorted(path.stem for path in SPEC_DIR.glob("*.yaml"))


def read_spec(value):
    """The fields of a spec file (a path, or the name of a shipped one), typos named with the close names."""
    path = value if osp.isfile(value) else SPEC_DIR / f"{value}.yaml"
    if not osp.isfile(path):
        raise UserError(f"--spec {value}: no such file, and no shipped spec of that name (shipped: "
                        f"{', '.join(shipped_specs())}). Give a YAML file with the fields of dpt-sweep launch.")
    with open(path) as file:
        try:
            fields = yaml.safe_load(file) or {}
        except yaml.YAMLError as error:
            raise UserError(f"--spec {path} is not valid YAML ({error}). Fix its syntax.") from None
    if not isinstance(fields, dict):
        raise UserError(f"--spec {path} must map field names to values (protocol: few-shot, trainers: [DPT], ...).")
    for key in fields:
        if key not in SPEC_FIELDS:
            close = difflib.get_close_matches(key, sorted(SPEC_FIELDS), n=3, cutoff=0.5)
            hint = f" Do you mean {', '.join(close)}?" if close else ""
            raise UserError(f"--spec {path}: unknown field {key!r}.{hint} Fields: {', '.join(sorted(SPEC_FIELDS))}.")
    return fields


def as_words(value):
    """A spec value as a list of strings (a YAML list, or one scalar)."""
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else str(value).split()


def choose(names, known, what, flag):
    """`names` (or every `known` one for "all"), each checked against `known` with the close names."""
    if names in (["all"], ["ALL"]):
        return list(known)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Do you mean {', '.join(close)}?" if close else ""
            raise UserError(f"{flag}: unknown {what} {name!r}.{hint} Known: {', '.join(known)} (or all).")
    return names


def build_grid(options):
    """The Grid and executor options from the command line over the spec file's fields."""
    spec = read_spec(options.spec) if options.spec else {}
    for key, value in spec.items():
        default = LAUNCH_DEFAULTS.get(key)
        if getattr(options, key) == default:
            setattr(options, key, as_words(value) if isinstance(default, list) else value)
    if not options.protocol:
        raise UserError("dpt-sweep launch needs --protocol (few-shot, base2new, xd, dg) or a --spec that names one.")
    if options.protocol not in PROTOCOLS:
        raise UserError(f"protocol {options.protocol!r} is not one of {', '.join(PROTOCOLS)}.")
    root = options.root or os.environ.get("DATA", "")
    if not root:
        raise UserError("dpt-sweep launch needs --root (the datasets' folder, $DATA; see DATASETS.md).")
    known = registered_trainers()
    trainers = choose(options.trainers or ["all"], known, "trainer", "--trainers")
    explicit = options.trainers not in ([], ["all"])
    if not explicit:  # all: the trainers with a default config (a plugin's trainer without one is named explicitly)
        trainers = [t for t in trainers if has_default_config(t)]
    unsupported = [t for t in trainers if not supports(t, options.protocol)]
    if explicit and unsupported:
        raise UserError(f"--trainers {' '.join(unsupported)}: their scripts have no {options.protocol} protocol "
                        f"(scripts/<method>/{'.sh, '.join(PROTOCOL_SCRIPTS[options.protocol])}.sh). Leave them out.")
    trainers = [t for t in trainers if t not in unsupported]
    stems = [config_stem(name) for name in PROTOCOL_DATASETS[options.protocol]]
    dataset_names = sorted(Path(p).stem for p in (shipped_config_root() / "datasets").glob("*.yaml"))
    datasets = stems if options.datasets in ([], ["all"]) else choose(options.datasets, dataset_names, "dataset",
                                                                      "--datasets")
    numbers = {}
    for flag in ("shots", "seeds"):
        words = getattr(options, flag) or (["16"] if flag == "shots" else ["1", "2", "3"])
        if not all(word.isdigit() for word in words):
            raise UserError(f"--{flag} {' '.join(words)}: give whole numbers (e.g. --{flag} 1 2 4).")
        numbers[flag] = tuple(int(word) for word in words)
    opts = tuple(as_words(options.opts))
    if any("=" not in pair for pair in as_words(options.sbatch)):
        raise UserError(f"sbatch: {' '.join(as_words(options.sbatch))}: give each sbatch option as NAME=VALUE "
                        "(e.g. constraint=a100 exclude=node3).")
    if len(opts) % 2:
        raise UserError(f"The options after the flags must be KEY VALUE pairs; got {len(opts)} words: "
                        f"{' '.join(opts)}. Give a value after each key.")
    return Grid(protocol=options.protocol, trainers=tuple(trainers), configs=tuple(options.configs),
                datasets=tuple(datasets), shots=numbers["shots"], seeds=numbers["seeds"], root=osp.abspath(root),
                output=osp.abspath(options.output), opts=opts)


def launch(options):
    grid = build_grid(options)
    runs = plan(grid)
    if options.dry_run:
        for run in runs:
            after = f"   # after {run.after}" if run.after else ""
            print(f"{run.name}\n    cd {shlex.quote(config_dir())} && {shlex.join(train_command(run.args))}{after}")
        print(f"{len(runs)} runs")
        return 0
    if options.executor == "slurm":
        check_slurm(options)
    check_datasets(grid, runs)
    state = SweepState(grid.output)
    with state.launching():
        launch_runs(grid, runs, state, options)
    if options.executor == "local" or options.wait:
        return wait_and_report(grid.output)
    return 0


def launch_runs(grid, runs, state, options):
    """Skip the finished and the queued or running runs, refuse changed ones, run or submit the others (a
    stuck job, and the queued evaluations waiting for it, are cancelled and submitted again)."""
    from dpt_runs.checkpoint import has_checkpoints  # torch: only when runs are launched

    current = statuses(grid.output)
    busy = {name for name, status, _, _ in current if status in ("queued", "running")}
    stuck = {name for name, status, _, _ in current if status == "stuck"}
    stuck |= {run.name for run in runs if run.after in stuck and run.name in busy}
    if stuck:
        cancel_jobs(state, stuck)
        busy -= stuck
    finished, refused, pending = [], [], []
    for run in runs:
        folder = run.folder(grid.output)
        if run.name in busy:
            continue
        done = is_done(folder)
        if done or has_checkpoints(folder):
            differs = recorded_config_differs(run, grid.output)
            if differs:
                refused.append(differs)
                continue
        (finished if done else pending).append(run)
    if refused:
        more = f" ({len(refused) - 1} more run(s) likewise)" if len(refused) > 1 else ""
        raise UserError(f"Nothing was submitted: {len(refused)} run(s) of this sweep exist with other options. "
                        f"{refused[0]}{more}")
    with state.editing() as data:
        for run in runs:
            entry = data["runs"].setdefault(run.name, {})
            entry.update({"args": list(run.args), "after": run.after, "log": state.log_path(run.name)})
    skipped = len(runs) - len(finished) - len(pending)
    print(f"{len(runs)} runs: {len(finished)} done, {skipped} queued or running, {len(pending)} to run")
    waiting = [run for run in pending if run.after in busy]
    if waiting and options.executor == "local":
        print(f"Not started: {len(waiting)} evaluation(s) whose training run is still queued or running; "
              "launch again once it is done.")
        pending = [run for run in pending if run not in waiting]
    if pending:
        if options.executor == "slurm":
            jobs = {name: entry["job"]["id"] for name, entry in state.read()["runs"].items()
                    if name in busy and entry["job"]["executor"] == "slurm"}
            launch_slurm(pending, state, options, jobs)
        else:
            with state.editing() as data:
                for run in pending:
                    data["runs"][run.name]["job"] = {"executor": "local", "host": socket.gethostname(),
                                                     "pid": os.getpid()}
            state.launched()  # the runs are marked: another launch now sees them as queued
            launch_local(pending, state, options.jobs, options.threads)


def cancel_jobs(state, names):
    """scancel the SLURM jobs of the runs `names`."""
    jobs = sorted(entry["job"]["id"] for name, entry in state.read()["runs"].items() if name in names)
    done = subprocess.run(["scancel", *jobs], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"scancel {' '.join(jobs)} failed ({done.stderr.strip()}): these jobs of the sweep can "
                        "never start and must be cancelled before their runs are submitted again. Cancel them, "
                        "then launch again.")
    print(f"Cancelled {len(jobs)} job(s) SLURM would never start: {' '.join(jobs)}")


def wait_and_report(output):
    while any(status in ("queued", "running") for _, status, _, _ in statuses(output)):
        time.sleep(2)
    return report(output)


def report(output):
    """Print the counts and one line per run; 0 when every run is done."""
    if not osp.isfile(osp.join(output, STATE_DIR, STATE_FILE)):
        raise UserError(f"{output} holds no sweep ({osp.join(output, STATE_DIR, STATE_FILE)} is missing): give the "
                        "--output of a dpt-sweep launch.")
    rows = statuses(output)
    counts = {}
    for _, status, _, _ in rows:
        counts[status] = counts.get(status, 0) + 1
    print(", ".join(f"{count} {status}" for status, count in sorted(counts.items())) + f" (of {len(rows)} runs)")
    for name, status, detail, log in sorted(rows):
        line = f"{status:12s} {name}"
        if status == "failed":
            line += f"\n             {detail}\n             log: {log}"
        elif detail:
            line += f"   ({detail})"
        print(line)
    return 0 if all(status == "done" for _, status, _, _ in rows) else 1


LAUNCH_DEFAULTS = {
    "protocol": None, "trainers": [], "configs": [], "datasets": [], "shots": [], "seeds": [], "root": "",
    "output": "output", "opts": [], "executor": "local", "jobs": 1, "threads": 0, "partition": "",
    "time": 240, "cpus": 4, "gpus": 0, "mem": "", "account": "", "qos": "", "array_parallelism": 64,
    "sbatch": [], "wait": False,
}


def build_parser():
    parser = argparse.ArgumentParser(prog="dpt-sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_debug_argument(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("launch", help="plan the grid's runs and run (or submit) the missing ones")
    run.add_argument("--spec", default="", help=f"a YAML file of these fields, or a shipped grid: {shipped_specs()}")
    run.add_argument("--protocol", choices=PROTOCOLS)
    run.add_argument("--trainers", nargs="+", help="trainer names, or all (default: all, or the spec's)")
    run.add_argument("--configs", nargs="+", help="config names (vit_b16, DPT/vit_b16); default: each trainer's")
    run.add_argument("--datasets", nargs="+", help="dataset config names (eurosat, toy_fog), or all")
    run.add_argument("--shots", nargs="+", help="shots per class (default 16)")
    run.add_argument("--seeds", nargs="+", help="seeds (default 1 2 3)")
    run.add_argument("--root", help="the datasets' folder (default: $DATA)")
    run.add_argument("--output", help="the output root, as OUTPUT of the scripts (default: output)")
    run.add_argument("--dry-run", action="store_true", help="print the runs and the command of each")
    run.add_argument("--executor", choices=("local", "slurm"))
    run.add_argument("--jobs", type=int, help="local: runs at a time (default 1; at most one per GPU)")
    run.add_argument("--threads", type=int, help="local: CPU threads per run (default: the CPUs / --jobs)")
    run.add_argument("--wait", action="store_true", help="slurm: wait until every run ended, then print the status")
    slurm = run.add_argument_group("SLURM (--executor slurm)")
    slurm.add_argument("--partition", help="partition (default: the cluster's default)")
    slurm.add_argument("--time", type=int, help="time limit per job in minutes (default 240); a job that reaches "
                       "it is requeued and resumes from its last epoch")
    slurm.add_argument("--cpus", type=int, help="CPUs per run (default 4)")
    slurm.add_argument("--gpus", type=int, help="GPUs per run (default 0)")
    slurm.add_argument("--mem", help="memory per run (e.g. 32G)")
    slurm.add_argument("--account")
    slurm.add_argument("--qos")
    slurm.add_argument("--array-parallelism", type=int, help="at most this many jobs of an array at once (64)")
    slurm.add_argument("--sbatch", nargs="+", help="more sbatch options as NAME=VALUE (constraint=a100)")
    run.add_argument("opts", nargs=argparse.REMAINDER, help="train.py config options (KEY VALUE ...), last")
    run.set_defaults(**{key: value for key, value in LAUNCH_DEFAULTS.items()})
    show = commands.add_parser("status", help="one line per run: done, queued, running, failed, not started")
    show.add_argument("output", help="the sweep's output root")
    return parser


CONFIG_KEY = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+")


def split_config_options(argv):
    """(dpt-sweep's own arguments, train.py's KEY VALUE options): the options start at the first config key, so
    that a list flag before them (--seeds 1 2, --sbatch constraint=a100) does not take them as its values."""
    start = next((index for index, word in enumerate(argv) if CONFIG_KEY.fullmatch(word)), len(argv))
    return argv[:start], argv[start:]


def main(argv=None):
    own, config_options = split_config_options(sys.argv[1:] if argv is None else list(argv))
    parser = build_parser()
    options = parser.parse_args(own)
    if options.command == "launch":
        options.opts = [*options.opts, *config_options]
    elif config_options:
        parser.error(f"unrecognized arguments: {' '.join(config_options)}")
    with exit_on_user_error(options.debug):
        if options.command == "status":
            return report(osp.abspath(options.output))
        return launch(options)


if __name__ == "__main__":
    sys.exit(main())
