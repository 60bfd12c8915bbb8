"""Shared fixtures: a tiny random CLIP file, a generated image folder, and in-process train.py runs."""
import glob
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
# The engine under test: the bundled one (DASSL_BACKEND=lite), unless DPT_TEST_ENGINE=dassl, which leaves
# DASSL_BACKEND as a user has it (unset: the installed Dassl), as CI's run in its environment with Dassl does.
TEST_ENGINE = os.environ.get("DPT_TEST_ENGINE", "lite")
if TEST_ENGINE not in ("lite", "dassl"):
    raise ValueError(f"DPT_TEST_ENGINE must be 'lite' or 'dassl', got {TEST_ENGINE!r}")
if TEST_ENGINE == "lite":
    os.environ.setdefault("DASSL_BACKEND", "lite")
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n N: N workers share the cores, one thread each
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
else:
    torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_sessionstart(session):
    """DPT_TEST_ENGINE=dassl must test the installed Dassl, never fall back to the bundled engine unseen."""
    import dassl_compat

    if TEST_ENGINE == "dassl" and dassl_compat.BACKEND != "dassl":
        raise pytest.UsageError(
            f"DPT_TEST_ENGINE=dassl, but the active engine is {dassl_compat.BACKEND!r} (DASSL_BACKEND="
            f"{os.environ.get('DASSL_BACKEND', '')!r}; import dassl: {dassl_compat.DASSL_IMPORT_ERROR}). Run in an "
            "environment with Dassl installed and DASSL_BACKEND unset."
        )


def run_side_by_side(commands, cwd, env, at_once=2):
    """{name: CompletedProcess} of `commands` ({name: argv}), `at_once` of them running at a time."""
    pending, running, finished = list(commands.items()), {}, {}
    while pending or running:
        while pending and len(running) < at_once:
            name, argv = pending.pop(0)
            running[name] = (argv, subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                    stderr=subprocess.PIPE, text=True))
        name = next(iter(running))
        argv, process = running.pop(name)
        out, err = process.communicate(timeout=600)
        finished[name] = subprocess.CompletedProcess(argv, process.returncode, out, err)
    return finished


TOY_DEMO_TRAINERS = ("ZeroshotCLIP", "CoOp", "DPT", "LinearProbe")


@pytest.fixture(scope="session")
def toy_fog_demo(tmp_path_factory):
    """The demo's runs on ToyFog, 16 shots, seed 1 (its default recipe) of TOY_DEMO_TRAINERS, made once and
    read by the tests that need toy models trained as a user trains them: the `dpt-demo` arguments that made
    them (with `--trainers`, a later call finds them done and prints the table again) and the output root.
    CoOp and DPT, the long ones, train side by side in two `python -m dpt_tools.demo` processes of one thread
    each; the others then in this process."""
    from dpt_tools import demo

    root = tmp_path_factory.mktemp("toy_fog_demo")
    argv = ["--dataset", "toy_fog", "--shots", "16", "--seed", "1", "--data", str(root / "data"),
            "--output", str(root / "output")]
    assert demo.main([*argv, "--trainers", "ZeroshotCLIP"]) == 0  # generates the dataset once, before the two
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    trained = run_side_by_side({trainer: [sys.executable, "-m", "dpt_tools.demo", *argv, "--trainers", trainer]
                                for trainer in ("CoOp", "DPT")}, ROOT, env)
    for trainer, process in trained.items():
        assert process.returncode == 0, f"{trainer}: {process.stderr[-3000:]}"
    assert demo.main([*argv, "--trainers", *TOY_DEMO_TRAINERS]) == 0
    return argv, str(root / "output")


FOLDER_CLASSES = ("red_disk", "green_square", "blue_bar", "white_cross")


def write_image_folder(root, classes=FOLDER_CLASSES, per_split=(("train", 6), ("val", 2), ("test", 4)), size=32,
                       seed=0):
    """`root/{train,val,test}/<class>/<i>.png`: each class a noisy version of its own colour."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(classes):
        colour = np.array([(label * 97) % 256, (label * 57 + 80) % 256, (label * 151 + 30) % 256], dtype=np.float32)
        for split, count in per_split:
            folder = osp.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                pixels = np.clip(colour + rng.normal(0, 25, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(osp.join(folder, f"{i}.png"))
    return root


@pytest.fixture(scope="session")
def tiny_clip_file(tmp_path_factory):
    """A random ViT CLIP (2+2 layers, 32 px, embed 32) saved as an fp16 state dict."""
    from dpt_models.clip_backbone import save_tiny_clip

    return save_tiny_clip(str(tmp_path_factory.mktemp("clip") / "tiny_vit.pt"), seed=0)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory):
    """A DATASET.ROOT holding the folder dataset `colours` (4 classes)."""
    root = tmp_path_factory.mktemp("data")
    write_image_folder(str(root / "colours"))
    return str(root)


def fp32_option(trainer):
    """(TRAINER.<node>.PREC, fp32) for a trainer of the project; none for another (a plugin's, registered
    only when train.py imports it: its test gives its own precision)."""
    import trainers  # noqa: F401  (registers the trainers)
    from dassl_compat import TRAINER_REGISTRY

    if trainer not in TRAINER_REGISTRY.registered_names():
        return ()
    return (f"TRAINER.{TRAINER_REGISTRY.get(trainer).config_node}.PREC", "fp32")


def folder_run_args(data_root, clip_file, output_dir, trainer="CoOp", epochs=2, extra=()):
    """train.py arguments for a short CPU run on the `colours` folder dataset. A run of 1 epoch is all warmup:
    it checks the plumbing, not learning, and says so (TRAIN.ALLOW_NO_LEARNING True)."""
    return [
        "--root", data_root,
        "--trainer", trainer,
        "--output-dir", str(output_dir),
        "--seed", "1",
        "DATASET.NAME", "ImageFolder",
        "DATASET.FOLDER", "colours",
        "MODEL.BACKBONE.NAME", "tiny",
        "MODEL.BACKBONE.PATH", clip_file,
        "INPUT.SIZE", "(32, 32)",
        "INPUT.INTERPOLATION", "bicubic",
        "INPUT.TRANSFORMS", "('random_flip', 'normalize')",
        "INPUT.PIXEL_MEAN", "[0.48145466, 0.4578275, 0.40821073]",
        "INPUT.PIXEL_STD", "[0.26862954, 0.26130258, 0.27577711]",
        "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
        "DATALOADER.TEST.BATCH_SIZE", "16",
        "OPTIM.NAME", "sgd",
        "OPTIM.LR", "0.002",
        "OPTIM.MAX_EPOCH", str(epochs),
        "OPTIM.LR_SCHEDULER", "cosine",
        "OPTIM.WARMUP_EPOCH", "1",
        "OPTIM.WARMUP_TYPE", "constant",
        "OPTIM.WARMUP_CONS_LR", "1e-5",
        "TRAIN.PRINT_FREQ", "1",
        *fp32_option(trainer),
        *(("TRAIN.ALLOW_NO_LEARNING", "True") if epochs <= 1 else ()),
        *extra,
    ]


def read_log(output_dir):
    """The text of every log of a run folder (log.txt, then the log.txt-<time> of later runs)."""
    return "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))


@pytest.fixture
def run_train():
    """Call train.main in this process (fast: no re-import of torch); returns its result."""
    from dpt_tools import train

    return train.main
