"""Every console script of setup.py, installed (a wheel of this clone in a private venv that sees this
interpreter's packages) and run once through its entry point as a user would, in the stages of a session:
exit status 0 on success; a failure (no data, no results) exits non-zero."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT, run_side_by_side

# One successful command per console script, in the stages of a session: a stage's commands read what earlier
# stages wrote (the demo generates the data; the tools read dpt-train's run), and run two at a time. A script
# missing here fails the test: each new console script gets its command.
SESSION = [
    {
        "dpt-config": [],
        "dpt-demo": ["--trainers", "ZeroshotCLIP", "--shots", "1", "--data", "data", "--output", "output"],
        "dpt-benchmark": ["--backbone", "ToyCLIP-ViT", "--trainers", "CoOp", "--classes", "4", "--batch-size", "2",
                          "--steps", "1", "--precision", "fp32", "--device", "cpu"],
    },
    {
        "dpt-check-data": ["--root", "data", "toy_fog"],
        "dpt-train": ["--root", "data", "--trainer", "DPT", "--dataset-config-file", "toy_fog", "--config-file", "toy",
                      "--seed", "1", "--output-dir", "output/toy_fog/DPT/toy_1shots/seed1",
                      "DATASET.NUM_SHOTS", "1", "OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True"],
        "dpt-sweep": ["launch", "--spec", "toy", "--root", "data", "--output", "sweep_output", "--dry-run"],
    },
    {
        "dpt-results": ["few-shot", "output"],
        "dpt-plot": ["output", "--output", "few_shot.png"],
        "dpt-interpret": ["output/toy_fog/DPT/toy_1shots/seed1", "--topk", "1"],
        "dpt-visualize": ["output/toy_fog/DPT/toy_1shots/seed1", "--out", "attention", "--num-images", "1"],
    },
]
FAILURES = {  # a failure of the tool's work (not of its arguments): non-zero
    "dpt-check-data": ["--root", "empty", "toy_fog"],
    "dpt-results": ["few-shot", "empty"],
    "dpt-sweep": ["status", "empty"],
}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The bin folder of a venv (with this interpreter's packages) holding a wheel built from this clone."""
    source = tmp_path_factory.mktemp("source") / "clone"  # a copy: building writes build/ and *.egg-info there
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "output", "data", "build", "dist", "*.egg-info",
                                                                 "__pycache__", ".*_cache"))
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-cache-dir", "--wheel-dir", str(wheels), str(source)], check=True, cwd=wheels, timeout=600)
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    *map(str, wheels.glob("*.whl"))], check=True, timeout=600)
    return venv / "bin"


def console_scripts(bin_dir):
    """The console scripts the installed distribution declares."""
    script = ("import importlib.metadata as m; print(*sorted(e.name for e in m.distribution('dpt-prompt-tuning')"
              ".entry_points if e.group == 'console_scripts'))")
    listed = subprocess.run([str(bin_dir / "python"), "-c", script], capture_output=True, text=True, check=True)
    return listed.stdout.split()


def test_the_installed_sweep_plans_the_runs_of_the_clones_scripts(installed, tmp_path):
    """The wheel carries the scripts' settings.sh: an installed dpt-sweep names each run's folder (variant
    tags included) and picks each method's default config as `bash scripts/<method>/main.sh` in a clone does."""
    grid = ["launch", "--protocol", "few-shot", "--trainers", "all", "--datasets", "eurosat", "--shots", "4",
            "--seeds", "1", "--root", str(tmp_path), "--output", "out", "--dry-run"]

    def runs(command, **env):
        done = subprocess.run([*command, *grid], cwd=tmp_path, env={**os.environ, **env}, capture_output=True,
                              text=True, timeout=600, check=True)
        return [line for line in done.stdout.splitlines() if line and not line.startswith(" ")]

    clone = runs([sys.executable, "-m", "dpt_tools.sweep"], PYTHONPATH=str(ROOT))
    assert "eurosat/CoOp/vit_b16_ep50_4shots/nctx16_cscFalse_ctpend/seed1" in clone
    assert runs([str(installed / "dpt-sweep")], PYTHONPATH="") == clone


def test_every_console_script_exits_0_on_success_and_non_zero_on_failure(installed, tmp_path):
    assert sorted(name for stage in SESSION for name in stage) == console_scripts(installed)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ""}  # the installed copy, not this clone
    (tmp_path / "empty").mkdir()
    for stage in SESSION:
        done = run_side_by_side({name: [str(installed / name), *args] for name, args in stage.items()}, tmp_path, env)
        for name, process in done.items():
            assert process.returncode == 0, f"{name}: status {process.returncode}\n{process.stderr[-3000:]}"
    assert osp.isfile(tmp_path / "few_shot.png") and os.listdir(tmp_path / "attention")
    failures = run_side_by_side({name: [str(installed / name), *args] for name, args in FAILURES.items()}, tmp_path,
                                env)
    for name, process in failures.items():
        assert process.returncode != 0, f"{name} {' '.join(FAILURES[name])} failed but exited 0"
        assert "Error" in process.stderr or "missing" in process.stdout, process.stderr[-3000:]
