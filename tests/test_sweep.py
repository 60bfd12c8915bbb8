"""dpt-sweep: the runs of the scripts, on SLURM (a real local cluster: scripts/slurm/local_cluster.sh) and
locally, resumable and idempotent, with a status view; docs/sweep.md's commands as written.

The tests marked `sweep` train the toy grid (docs/sweep.md, dpt_tools/sweeps/toy.yaml) several times:
about two minutes on two CPU cores; a plain run leaves them out (pyproject.toml), `-m sweep` runs them.
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT

from dassl_compat.errors import UserError
from dpt_tools import sweep
from dpt_tools.results_common import run_accuracy

TOY = yaml.safe_load(open(osp.join(ROOT, "dpt_tools", "sweeps", "toy.yaml")))
TOY_OPTS = [str(word) for word in TOY.get("opts", [])]
SCRIPT_VARIABLES = ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT", "NCTX", "CSC", "CTP", "DRY_RUN", "EXTRA_OPTS", "LOAD_EPOCH")


def slurm_answers():
    if shutil.which("sbatch") is None:
        return False
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


needs_slurm = pytest.mark.skipif(
    not slurm_answers(), reason="no SLURM cluster answers here (start one: bash scripts/slurm/local_cluster.sh start)"
)


def sweep_cli(*args, cwd=ROOT, check=True):
    """`dpt-sweep ARGS` as a user runs it (python -m dpt_tools.sweep, the console script's module)."""
    env = {key: value for key, value in os.environ.items() if key not in SCRIPT_VARIABLES}
    env.update(PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "dpt_tools.sweep", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1200)  # a sweep that never ends fails the test
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def run_script(script, *args, **variables):
    """A scripts/ entry point with only the given script variables."""
    env = {key: value for key, value in os.environ.items() if key not in SCRIPT_VARIABLES}
    env.update(variables, OMP_NUM_THREADS="1")
    return subprocess.Popen(["bash", osp.join(ROOT, "scripts", script), *args], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def planned_commands(capsys, *args):
    """{run folder: train.py arguments} of `dpt-sweep launch ARGS --dry-run`."""
    assert sweep.main(["launch", "--dry-run", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [shlex.split(line.split(" && ", 1)[1].split("   # after")[0]) for line in lines if " && " in line]
    plans = {command[command.index("--output-dir") + 1]: command[3:] for command in commands}
    assert lines[-1] == f"{len(plans)} runs"
    return plans


def script_commands(script, *args, **variables):
    """{run folder: train.py arguments} of a scripts/ entry point run with DRY_RUN=1."""
    process = run_script(script, *args, DRY_RUN="1", **variables)
    out, _ = process.communicate()
    assert process.returncode == 0, out
    commands = [line.split()[2:] for line in out.splitlines() if line.startswith("python train.py ")]
    return {command[command.index("--output-dir") + 1]: command for command in commands}


@pytest.mark.parametrize("protocol,trainer,script,args", [
    ("few-shot", "DPT", "dpt/main.sh", ["eurosat", "2"]),
    ("few-shot", "CoOp", "coop/main.sh", ["eurosat", "vit_b16_ep50", "end", "16", "2", "False"]),
    ("few-shot", "LinearProbe", "linear_probe/main.sh", ["eurosat", "2"]),
    ("base2new", "DPT", "dpt/base2new_train.sh", ["eurosat", "vit_b32", "2"]),
    ("base2new", "VPT", "vpt/base2new_test.sh", ["eurosat", "vit_b32", "2"]),
    ("xd", "VLP", "vlp/xd_train.sh", ["vit_b32", "2"]),
    ("xd", "VLP", "vlp/xd_test.sh", ["dtd", "vit_b32", "2"]),
    ("dg", "VPT", "vpt/eval.sh", ["imagenet_a", "vit_b32", "2"]),
])
def test_each_run_is_the_run_of_the_scripts(capsys, tmp_path, protocol, trainer, script, args):
    """The same train.py arguments and folder as the script, for every protocol (the trailing options are
    the scripts' EXTRA_OPTS)."""
    dataset = "imagenet" if script.endswith("xd_train.sh") else args[0]
    datasets = "dtd" if protocol == "xd" else ("imagenet_a" if protocol == "dg" else dataset)
    output = str(tmp_path / "output")
    plans = planned_commands(capsys, "--protocol", protocol, "--trainers", trainer, "--datasets", datasets,
                             "--shots", "2", "--seeds", "1", "2", "--root", str(tmp_path), "--output", output,
                             "OPTIM.LR", "0.01")
    scripted = script_commands(script, *args, DATA=str(tmp_path), OUTPUT=output, SEEDS="1 2",
                               EXTRA_OPTS="OPTIM.LR 0.01")
    assert len(scripted) == 2
    for folder, command in scripted.items():
        assert plans[folder] == command


def test_trainers_all_plans_every_registered_trainer_with_its_default_config(capsys, tmp_path):
    plans = planned_commands(capsys, "--protocol", "few-shot", "--trainers", "all", "--datasets", "eurosat",
                             "--shots", "4", "--seeds", "1", "--root", str(tmp_path), "--output", str(tmp_path))
    planned = {command[command.index("--trainer") + 1]: command for command in plans.values()}
    # every registered trainer with a default config (a plugin's trainer registered by another test has none)
    assert set(planned) == {t for t in sweep.registered_trainers() if sweep.has_default_config(t)}
    assert {"DPT", "CoOp", "MaPLe", "PromptSRC", "KgCoOp", "ProGrad", "IVLP"} <= set(planned)
    for trainer, command in planned.items():
        folder, name = sweep.default_config(trainer).split("/")
        assert command[command.index("--config-file") + 1] == f"configs/trainers/{folder}/{name}.yaml"
    assert "--eval-only" in planned["ZeroshotCLIP"] and "--eval-only" not in planned["DPT"]


def test_train_options_after_a_list_flag_are_not_taken_as_its_values(capsys, tmp_path):
    plans = planned_commands(capsys, "--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "eurosat",
                             "--shots", "4", "--root", str(tmp_path), "--output", str(tmp_path), "--seeds", "1", "2",
                             "OPTIM.MAX_EPOCH", "3", "TRAINER.COOP.N_CTX", "4")
    assert sorted(command[command.index("--seed") + 1] for command in plans.values()) == ["1", "2"]
    for command in plans.values():
        assert command[-4:] == ["OPTIM.MAX_EPOCH", "3", "TRAINER.COOP.N_CTX", "4"]
    with pytest.raises(SystemExit):
        sweep.main(["status", str(tmp_path), "OPTIM.MAX_EPOCH", "3"])
    assert "unrecognized arguments: OPTIM.MAX_EPOCH 3" in capsys.readouterr().err


@pytest.mark.parametrize("spec,trainer,runs", [
    ("few-shot", "DPT", 11 * 5 * 3),
    ("base2new", "DPT", 11 * 3 * 2),  # a training and a test run per dataset and seed
    ("xd", "CoOp", 3 + 10 * 3),  # ImageNet training, then the 10 targets, per seed
    ("dg", "CoOp", 3 + 4 * 3),
])
def test_the_shipped_grids_plan_the_papers_runs(capsys, tmp_path, spec, trainer, runs):
    plans = planned_commands(capsys, "--spec", spec, "--trainers", trainer, "--root", str(tmp_path),
                             "--output", str(tmp_path))
    assert len(plans) == runs
    assert all(command[command.index("--trainer") + 1] == trainer for command in plans.values())


def error_of(capsys, *args):
    with pytest.raises(UserError) as raised:
        sweep.main(list(args))
    assert raised.value.code == 2
    return str(raised.value)


def test_bad_input_is_one_paragraph_naming_the_fix(capsys, tmp_path, monkeypatch):
    spec = tmp_path / "grid.yaml"
    spec.write_text("protocol: few-shot\ntrainer: [DPT]\n")
    assert "unknown field 'trainer'. Do you mean trainers" in error_of(capsys, "launch", "--spec", str(spec))
    spec.write_text(f"protocol: few-shot\ntrainers: [CoOp]\nroot: {tmp_path}\nsbatch: [constraint]\n")
    assert "sbatch: constraint: give each sbatch option as NAME=VALUE" in error_of(capsys, "launch", "--spec",
                                                                                    str(spec))
    assert "--trainers: unknown trainer 'DTP'. Do you mean DPT" in error_of(
        capsys, "launch", "--protocol", "few-shot", "--trainers", "DTP", "--root", str(tmp_path))
    missing = error_of(capsys, "launch", "--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "eurosat",
                       "--root", str(tmp_path), "--output", str(tmp_path / "out"))
    assert f"Datasets missing under --root {tmp_path}: eurosat" in missing and "Nothing was submitted" in missing
    assert not (tmp_path / "out").exists()
    no_slurm_bin = tmp_path / "bin"  # a PATH with bash only
    no_slurm_bin.mkdir()
    (no_slurm_bin / "bash").symlink_to(shutil.which("bash"))
    monkeypatch.setenv("PATH", str(no_slurm_bin))
    no_slurm = error_of(capsys, "launch", "--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "eurosat",
                        "--root", str(tmp_path), "--executor", "slurm")
    assert "sbatch is not on PATH" in no_slurm and "--executor local" in no_slurm


@needs_slurm
def test_an_unknown_partition_lists_the_partitions(capsys, tmp_path):
    partitions = subprocess.run(["sinfo", "-h", "-o", "%R"], capture_output=True, text=True).stdout.split()
    error = error_of(capsys, "launch", "--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "toy_fog",
                     "--root", str(tmp_path), "--executor", "slurm", "--partition", "gpu-nowhere")
    assert "--partition gpu-nowhere: SLURM has no such partition" in error and partitions[0] in error


@needs_slurm
def test_more_cpus_than_a_node_has_is_refused_before_submitting(capsys, tmp_path):
    most = max(int(word.rstrip("+")) for word in
               subprocess.run(["sinfo", "-h", "-o", "%c"], capture_output=True, text=True).stdout.split())
    error = error_of(capsys, "launch", "--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "toy_fog",
                     "--root", str(tmp_path), "--output", str(tmp_path / "out"), "--executor", "slurm",
                     "--cpus", str(most + 1))
    assert f"--cpus {most + 1}: the nodes of partition" in error and f"at most {most} CPUs" in error
    assert f"Give --cpus {most} or fewer" in error and not (tmp_path / "out").exists()


def test_status_reads_a_sweep_without_torch(tmp_path):
    """`dpt-sweep status` is a quick look (also in a loop on a login node): it loads neither torch nor an engine,
    names each run's state and exits 1 while a run is not done."""
    output = tmp_path / "output"
    done, failed = "toy_fog/CoOp/toy_2shots/seed1", "toy_fog/DPT/toy_2shots/seed1"
    (output / done).mkdir(parents=True)
    (output / done / "log.txt").write_text("=> result\n* total: 32\n* correct: 24\n* accuracy: 75.0%\n")
    state = sweep.SweepState(str(output))
    with state.editing() as runs:
        for name in (done, failed):
            log = state.log_path(name)
            runs["runs"][name] = {"args": [], "after": [], "log": log,
                                  "job": {"executor": "local", "host": "elsewhere", "pid": 1, "returncode": 2}}
        os.makedirs(osp.dirname(log), exist_ok=True)
        Path(log).write_text("Error: TRAINER.DPT.N_CTX must be an integer >= 1, got 0.\n")
    script = ("import sys; from dpt_tools import sweep; code = sweep.main(['status', sys.argv[1]]); "
              "print(sorted(name for name in ('torch', 'dassl_compat') if name in sys.modules)); sys.exit(code)")
    status = subprocess.run([sys.executable, "-c", script, str(output)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 1, status.stderr
    assert status.stdout.splitlines()[-1] == "[]"
    assert status.stdout.startswith("1 done, 1 failed (of 2 runs)\n")
    assert f"done         {done}\n" in status.stdout
    assert f"failed       {failed}\n             Error: TRAINER.DPT.N_CTX must be" in status.stdout


def test_a_failing_squeue_is_an_error_not_an_empty_queue(capsys, tmp_path, monkeypatch):
    """When squeue fails (slurmctld busy or down), the sweep's queued jobs must not be taken for lost runs
    (a launch would submit them twice): status and launch stop with the error."""
    output = tmp_path / "out"
    state = sweep.SweepState(str(output))
    with state.editing() as data:
        data["runs"]["toy_fog/CoOp/toy_1shots/nctx16_cscFalse_ctpend/seed1"] = {
            "args": [], "after": None, "log": state.log_path("run"), "job": {"executor": "slurm", "id": "7_0"}}
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "squeue").write_text("#!/bin/sh\necho 'squeue: error: Socket timed out on send/recv' >&2\nexit 1\n")
    (fake_bin / "squeue").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(sweep, "SLURM_RETRY_PAUSE", 0)
    error = error_of(capsys, "status", str(output))
    assert "squeue -h -r -o '%i %T %r' failed (squeue: error: Socket timed out on send/recv)" in error
    assert "submits nothing on a guess" in error


# ------------------------------------------------------------------------------ real runs of the toy grid
def toy_grid_args(root, output):
    return ["--protocol", "few-shot", "--trainers", *TOY["trainers"], "--datasets", *TOY["datasets"],
            "--shots", *map(str, TOY["shots"]), "--seeds", *map(str, TOY["seeds"]), "--root", root,
            "--output", output]


def run_folders(output):
    return sorted(osp.relpath(path, output) for path in glob.glob(osp.join(output, "toy_fog", "*", "*", "*", "seed*")))


def results(output):
    """{run folder: (accuracy, {checkpoint file: its saved dict})} of every run under `output`."""
    found = {}
    for folder in run_folders(output):
        checkpoints = {
            osp.relpath(path, osp.join(output, folder)): torch.load(path, map_location="cpu", weights_only=True)
            for path in sorted(glob.glob(osp.join(output, folder, "*", "model.pth.tar-*")))
        }
        found[folder] = (run_accuracy(Path(output, folder)), checkpoints)  # a resumed run logs to log.txt-<time>
    return found


def assert_same_results(first, second):
    assert sorted(first) == sorted(second) and first
    for folder, (accuracy, checkpoints) in first.items():
        assert second[folder][0] == accuracy is not None, folder
        assert sorted(second[folder][1]) == sorted(checkpoints) and checkpoints, folder
        for name, saved in checkpoints.items():
            other = second[folder][1][name]["state_dict"]
            assert all(torch.equal(tensor, other[key]) for key, tensor in saved["state_dict"].items()), (folder, name)


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    """A data root with ToyFog (generated once)."""
    root = tmp_path_factory.mktemp("toy_data")
    from dpt_tools.make_toy_data import main as make_toy_data

    make_toy_data(["--root", str(root), "--datasets", "ToyFog"])
    return str(root)


@pytest.fixture(scope="module")
def scripts_output(toy_root, tmp_path_factory):
    """The toy grid made with the scripts (bash scripts/<method>/main.sh), both methods at once."""
    output = str(tmp_path_factory.mktemp("scripts") / "output")
    variables = {"DATA": toy_root, "OUTPUT": output, "SEEDS": " ".join(map(str, TOY["seeds"])),
                 "EXTRA_OPTS": " ".join(TOY_OPTS)}
    shots = str(TOY["shots"][0])
    processes = [run_script("coop/main.sh", "toy_fog", "toy", "end", "16", shots, "False", **variables),
                 run_script("dpt/main.sh", "toy_fog", shots, **variables)]
    for process in processes:
        out, _ = process.communicate()
        assert process.returncode == 0, out
    return output


@pytest.fixture(scope="module")
def slurm_output(toy_root, tmp_path_factory):
    output = str(tmp_path_factory.mktemp("slurm") / "output")
    launched = sweep_cli("launch", *toy_grid_args(toy_root, output), "--executor", "slurm", "--cpus", "1",
                         "--wait", *TOY_OPTS)
    assert "4 runs: 0 done, 0 queued or running, 4 to run" in launched.stdout
    return output


def state_jobs(output):
    runs = json.load(open(osp.join(output, ".sweep", "state.json")))["runs"]
    return {name: entry.get("job") for name, entry in runs.items()}


@pytest.mark.sweep
@needs_slurm
def test_a_slurm_sweep_equals_the_scripts_bit_for_bit(scripts_output, slurm_output):
    assert len(run_folders(slurm_output)) == 4
    assert_same_results(results(scripts_output), results(slurm_output))
    status = sweep_cli("status", slurm_output)
    assert status.stdout.startswith("4 done (of 4 runs)")


@pytest.mark.sweep
@needs_slurm
def test_launching_again_submits_nothing_then_only_what_is_missing(toy_root, slurm_output):
    before = results(slurm_output)
    jobs = state_jobs(slurm_output)
    again = sweep_cli("launch", *toy_grid_args(toy_root, slurm_output), "--executor", "slurm", "--cpus", "1",
                      *TOY_OPTS)
    assert "4 runs: 4 done, 0 queued or running, 0 to run" in again.stdout and "Submitted" not in again.stdout
    assert state_jobs(slurm_output) == jobs
    lost = sorted(before)[1]
    shutil.rmtree(osp.join(slurm_output, lost))
    resumed = sweep_cli("launch", *toy_grid_args(toy_root, slurm_output), "--executor", "slurm", "--cpus", "1",
                        "--wait", *TOY_OPTS)
    assert "4 runs: 3 done, 0 queued or running, 1 to run" in resumed.stdout
    assert "Submitted 1 run(s)" in resumed.stdout
    changed = {name for name, job in state_jobs(slurm_output).items() if job != jobs[name]}
    assert changed == {lost}
    assert_same_results(before, results(slurm_output))
    refused = sweep_cli("launch", *toy_grid_args(toy_root, slurm_output), "--executor", "slurm", "--cpus", "1",
                        "OPTIM.MAX_EPOCH", "4", check=False)
    assert refused.returncode == 2 and "Nothing was submitted" in refused.stderr
    assert re.search(r"OPTIM\.MAX_EPOCH: \d+ there, 4 now", refused.stderr)  # each trainer's toy recipe there


@pytest.mark.sweep
@needs_slurm
def test_a_run_with_a_bad_option_fails_alone_and_status_names_it(toy_root, tmp_path):
    output = str(tmp_path / "output")
    args = ["--protocol", "few-shot", "--trainers", "CoOp", "DPT", "--datasets", "toy_fog", "--shots", "1",
            "--seeds", "1", "--root", toy_root, "--output", output, "--executor", "slurm", "--cpus", "1",
            "--wait", "OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True",  # one epoch: the plumbing only
            "TRAINER.COOP.CLASS_TOKEN_POSITION", "sideways"]
    launched = sweep_cli("launch", *args, check=False)
    assert launched.returncode == 1
    status = sweep_cli("status", output, check=False)
    assert status.returncode == 1 and status.stdout.startswith("1 done, 1 failed (of 2 runs)")
    failed = re.search(r"^failed +(\S+)\n +(.*)\n +log: (\S+)", status.stdout, re.M)
    assert failed and failed.group(1).startswith("toy_fog/CoOp/")
    assert "CLASS_TOKEN_POSITION must be one of 'end', 'middle', 'front', got 'sideways'" in failed.group(2)
    assert osp.isfile(failed.group(3)) and "sideways" in open(failed.group(3)).read()
    assert re.search(r"^done +toy_fog/DPT/", status.stdout, re.M)


@pytest.mark.sweep
@needs_slurm
def test_a_job_slurm_never_starts_is_stuck_and_the_next_launch_replaces_it(toy_root, tmp_path, monkeypatch, capsys):
    output = str(tmp_path / "output")
    args = ["--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "toy_fog", "--shots", "1", "--seeds", "1",
            "--root", toy_root, "--output", output, "--executor", "slurm"]
    epochs = ["OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True"]  # the plumbing only
    too_many = os.cpu_count() * 64
    with monkeypatch.context() as patched:  # a cluster whose sinfo does not tell the CPUs per node
        partitions, default = sweep.slurm_partitions()
        patched.setattr(sweep, "slurm_partitions", lambda: (dict.fromkeys(partitions, 0), default))
        assert sweep.main(["launch", *args, "--cpus", str(too_many), "--wait", *epochs]) == 1  # not waiting forever
    refused = sweep_cli("launch", *args, "--cpus", str(too_many), "--wait", *epochs, check=False)
    assert refused.returncode == 2 and f"--cpus {too_many}: the nodes of partition" in refused.stderr
    status = sweep_cli("status", output, check=False)
    assert status.returncode == 1 and status.stdout.startswith("1 stuck (of 1 runs)"), status.stdout
    assert "SLURM will not start it: PartitionConfig" in status.stdout
    (stuck_job,) = [job["id"] for job in state_jobs(output).values()]
    replaced = sweep_cli("launch", *args, "--cpus", "1", "--wait", *epochs)
    assert f"Cancelled 1 job(s) SLURM would never start: {stuck_job}" in replaced.stdout
    assert "1 done (of 1 runs)" in replaced.stdout and job_state(stuck_job) == ""


def job_state(job_id):
    return subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True).stdout.strip()


@pytest.mark.sweep
@needs_slurm
def test_a_requeued_job_resumes_and_ends_with_the_prompts_of_an_uninterrupted_run(toy_root, tmp_path):
    grid = ["--protocol", "few-shot", "--trainers", "CoOp", "--datasets", "toy_fog", "--shots", "1", "--seeds", "1",
            "--root", toy_root]
    epochs = ["OPTIM.MAX_EPOCH", "30"]
    output = str(tmp_path / "slurm")
    sweep_cli("launch", *grid, "--output", output, "--executor", "slurm", "--cpus", "1", *epochs)
    (job,) = [entry["id"] for entry in state_jobs(output).values()]
    folder = osp.join(output, "toy_fog/CoOp/toy_1shots/nctx16_cscFalse_ctpend/seed1")
    deadline = time.monotonic() + 300
    while not glob.glob(osp.join(folder, "train_state.pth.tar-[3-9]")):
        assert time.monotonic() < deadline, "the job did not reach epoch 3"
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job], check=True)
    while job_state(job) != "PENDING":  # a requeued job waits (BeginTime) before it may start again: now
        assert time.monotonic() < deadline, f"job {job} was not requeued: {job_state(job)}"
        time.sleep(0.2)
    subprocess.run(["scontrol", "update", f"jobid={job}", "StartTime=now"], check=True)
    reference = str(tmp_path / "local")
    sweep_cli("launch", *grid, "--output", reference, "--threads", "1", *epochs)  # uninterrupted, meanwhile
    again = sweep_cli("launch", *grid, "--output", output, "--wait", "--executor", "slurm", "--cpus", "1", *epochs)
    assert "0 to run" in again.stdout and "Submitted" not in again.stdout  # the requeued job is the sweep's
    log = open(sweep.SweepState(output).log_path(osp.relpath(folder, output))).read()
    assert "(restart 1)" in log and "will resume training" in log.split("(restart 1)")[1]
    assert_same_results(results(reference), results(output))


@pytest.mark.sweep
@needs_slurm
def test_the_docs_toy_sweep_runs_locally_two_at_a_time_with_the_same_results(toy_root, tmp_path, slurm_output):
    """docs/sweep.md's one-minute toy sweep, run as written (--executor local --jobs 2)."""
    (command,) = [line for line in doc_commands() if "--spec toy" in line]
    os.symlink(toy_root, tmp_path / "data")
    words = shlex.split(command)
    assert words[:2] == ["dpt-sweep", "launch"]
    done = sweep_cli(*words[1:], cwd=tmp_path)
    output = str(tmp_path / words[words.index("--output") + 1])
    assert "2 at a time" in done.stdout
    assert_same_results(results(slurm_output), results(output))


def doc_commands():
    """The `dpt-sweep ...` commands of docs/sweep.md's bash blocks (continuation lines joined)."""
    text = open(osp.join(ROOT, "docs", "sweep.md")).read()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("dpt-sweep "):
                commands.append(line.split("  #")[0].strip())
    return commands


def test_the_readmes_sweep_commands_are_the_docs_and_plan_the_readmes_toy_tables(capsys, tmp_path, monkeypatch):
    """README's sweep commands are docs/sweep.md's (the toy sweep run as written by the sweep-marked test above,
    the grids planned by the test below); its base-to-new command, as written, plans the toy table's runs: every
    trainer with a default config, seeds 1 2 3, 16 shots, trained on the base classes, then evaluated on the new
    ones after its training run."""
    readme = open(osp.join(ROOT, "README.md")).read()
    lines = [line.split("  #")[0].strip() for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
             for line in block.splitlines() if line.startswith("dpt-sweep ")]
    assert len(lines) >= 5 and not set(lines) - set(doc_commands())  # docs/sweep.md's, tested above and below
    (command,) = re.findall(r"`(dpt-sweep launch --protocol base2new[^`]*)`", readme)
    words = shlex.split(command.replace("\n", " "))
    monkeypatch.chdir(tmp_path)
    plans = planned_commands(capsys, *[word for word in words[2:] if word != "--dry-run"])
    trainers = {t for t in sweep.registered_trainers() if sweep.has_default_config(t) and sweep.supports(t, "base2new")}
    assert {"CoOp", "DPT", "MaPLe", "IVLP", "PromptSRC", "KgCoOp", "ProGrad"} <= trainers
    trained = [c for c in plans.values() if "--eval-only" not in c]
    tested = [c for c in plans.values() if "--eval-only" in c]
    assert len(trained) == len(tested) == 3 * len(trainers)
    assert {(c[c.index("--trainer") + 1], c[c.index("--seed") + 1]) for c in trained} == {
        (t, seed) for t in trainers for seed in "123"}
    assert {c[c.index("DATASET.SUBSAMPLE_CLASSES") + 1] for c in trained} == {"base"}
    assert {c[c.index("DATASET.SUBSAMPLE_CLASSES") + 1] for c in tested} == {"new"}
    assert {c[c.index("DATASET.NUM_SHOTS") + 1] for c in trained} == {"16"}


def test_the_docs_grid_commands_plan_the_papers_grids(capsys, monkeypatch, tmp_path):
    """Every other `dpt-sweep launch` of docs/sweep.md, as written, with --dry-run: the grid of its spec, for
    the trainers it names (every registered one that has the protocol when it names none)."""
    monkeypatch.setenv("DATA", str(tmp_path))
    launches = [c for c in doc_commands() if c.startswith("dpt-sweep launch") and "--spec toy" not in c]
    assert {re.search(r"--spec (\S+)", command).group(1) for command in launches} == set(sweep.PROTOCOLS)
    for command in launches:
        words = shlex.split(os.path.expandvars(command))
        plans = planned_commands(capsys, *words[2:])
        spec = sweep.read_spec(words[words.index("--spec") + 1])
        named = words[words.index("--trainers") + 1 : words.index("--root")] if "--trainers" in words else None
        expected = named or [t for t in sweep.registered_trainers()
                             if sweep.has_default_config(t) and sweep.supports(t, spec["protocol"])]
        assert {command[command.index("--trainer") + 1] for command in plans.values()} == set(expected), command
        trained = [command for command in plans.values() if "--eval-only" not in command]
        assert {command[command.index("DATASET.NUM_SHOTS") + 1] for command in trained} == set(map(str, spec["shots"]))
