"""Linear-probe CLIP (trainers/linear_probe.py): lpclip's search of C, the head, the feature cache, the
few-shot sample of CoOp-style trainers, train.py / --eval-only, bad input, and the toy demo.

The toy margin. On ToyFog at 16 shots, seed 1, the probe gets 81.2% and zero-shot 55.0% (docs/results.md).
As in tests/test_toy_learning.py, an accuracy on these 800 test images has a binomial standard error of at
most 1.8 points; a margin of 8 points is more than 4 of them, so a probe that only matched zero-shot fails,
while the measured gap is 26 points.
"""
import glob
import os
import os.path as osp
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import folder_run_args, write_image_folder
from sklearn.linear_model import LogisticRegression

from dpt_models.errors import UserError
from dpt_models.linear_probe import linear_head
from dpt_tools import demo, plot_results
from dpt_tools.results_common import run_accuracy
from trainers.linear_probe import COARSE_GRID, LinearProbe, search_c

TOY_MARGIN = 8.0


def probe_args(data_root, clip_file, output_dir, seed=1, shots=4, extra=()):
    """A LinearProbe run on the conftest's folder dataset; features cached beside `output_dir`."""
    feature_dir = str(Path(output_dir).parent / "features")
    args = folder_run_args(data_root, clip_file, output_dir, trainer="LinearProbe", epochs=1,
                           extra=("DATASET.NUM_SHOTS", str(shots), "TRAINER.LINEAR_PROBE.FEATURE_DIR", feature_dir,
                                  *extra))
    args[args.index("--seed") + 1] = str(seed)
    return args


def logged_accuracy(output_dir):
    text = "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))
    return float(re.findall(r"\* accuracy: ([\d.]+)%", text)[-1])


def blobs(n_per_class, n_classes, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (n_classes, dim))
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return (centres[labels] + rng.normal(0, 1.5, (len(labels), dim))).astype(np.float32), labels


def test_search_c_is_lpclips_grid_then_bisection_in_log_c():
    train, val = blobs(8, 4, seed=1), blobs(4, 4, seed=2)
    chosen, history = search_c(train, val, steps=8)
    tried = [c for c, _ in history]
    accuracy = [a for _, a in history]
    assert tried[: len(COARSE_GRID)] == list(COARSE_GRID) and len(history) == len(COARSE_GRID) + 2 * 8
    peak = COARSE_GRID[int(np.argmax(accuracy[: len(COARSE_GRID)]))]
    pairs = [history[i : i + 2] for i in range(len(COARSE_GRID), len(history), 2)]
    assert pairs[0][0][0] == pytest.approx(peak / 10) and pairs[0][1][0] == pytest.approx(peak * 10)
    for (left, right), (next_left, next_right) in zip(pairs, pairs[1:]):
        # the better end (the right one only when strictly better) stays, the other moves to the middle
        keep_right = left[1] < right[1]
        kept = right[0] if keep_right else left[0]
        middle = 10 ** ((np.log10(left[0]) + np.log10(right[0])) / 2)
        expected = (middle, kept) if keep_right else (kept, middle)
        assert (next_left[0], next_right[0]) == pytest.approx(expected)
    last_left, last_right = pairs[-1]
    assert chosen == (last_right[0] if last_left[1] < last_right[1] else last_left[0])


@pytest.mark.parametrize("n_classes", [2, 5])
def test_linear_head_predicts_what_scikit_learn_predicts(n_classes):
    features, labels = blobs(10, n_classes)
    labels = np.where(labels == 0, 1, labels) if n_classes > 2 else labels  # class 0 absent when C > 2
    classifier = LogisticRegression(C=1.0, max_iter=1000).fit(features, labels)
    head = linear_head(classifier, n_classes)
    with torch.no_grad():
        predicted = head(torch.from_numpy(features)).argmax(dim=-1).numpy()
    assert (predicted == classifier.predict(features)).all()


def test_trains_caches_features_and_evaluates_through_train_py(run_train, tmp_path, data_root, tiny_clip_file,
                                                               monkeypatch):
    out1 = tmp_path / "seed1"
    trainer = run_train(probe_args(data_root, tiny_clip_file, out1))
    log = open(out1 / "log.txt").read()
    assert "Chosen C = " in log and "=> result" in log
    checkpoint = torch.load(out1 / "linear_head" / "model.pth.tar-1", weights_only=True)
    assert checkpoint["state_dict"]["weight"].shape == (4, 32)

    # The sample is the one CoOp sees for this seed, item for item.
    coop = run_train(["--no-train", *folder_run_args(data_root, tiny_clip_file, tmp_path / "coop",
                                                     extra=("DATASET.NUM_SHOTS", "4"))])
    assert [d.impath for d in trainer.dm.dataset.train_x] == [d.impath for d in coop.dm.dataset.train_x]
    assert [d.impath for d in trainer.dm.dataset.val] == [d.impath for d in coop.dm.dataset.val]

    # Plain arrays, keyed by dataset / backbone / split; the test split is encoded once for all runs.
    caches = sorted(glob.glob(osp.join(tmp_path, "features", "ImageFolder", "tiny_*.npz")))
    assert [osp.basename(p).split("_")[1] for p in caches] == ["test", "train", "val"]
    with np.load(caches[0], allow_pickle=False) as stored:
        assert stored["features"].shape == (16, 32) and stored["features"].dtype == np.float32
    encoded = []
    encode_files = LinearProbe.encode_files
    monkeypatch.setattr(LinearProbe, "encode_files",
                        lambda self, paths: encoded.extend(paths) or encode_files(self, paths))
    second = run_train(probe_args(data_root, tiny_clip_file, tmp_path / "seed2", seed=2))
    cached_before = {d.impath for d in trainer.dm.dataset.train_x} | {d.impath for d in trainer.dm.dataset.val}
    new_paths = {d.impath for d in second.dm.dataset.train_x} | {d.impath for d in second.dm.dataset.val}
    assert set(encoded) == new_paths - cached_before and len(encoded) == len(set(encoded))

    encoded.clear()
    out_eval = tmp_path / "eval"
    run_train(["--eval-only", "--model-dir", str(out1), "--load-epoch", "1",
               *probe_args(data_root, tiny_clip_file, out_eval)])
    assert logged_accuracy(out_eval) == logged_accuracy(out1) and encoded == []


def test_fewer_than_two_classes_is_a_clear_error(run_train, tmp_path, tiny_clip_file):
    root = tmp_path / "data"
    write_image_folder(str(root / "colours"), classes=("red_disk",))
    with pytest.raises(UserError, match="at least 2 classes"):
        run_train(probe_args(str(root), tiny_clip_file, tmp_path / "out"))


@pytest.mark.xdist_group("toy_fog_demo")
def test_beats_zero_shot_on_toy_fog_in_the_demo_table_and_the_plot(toy_fog_demo, capsys):
    argv, output = toy_fog_demo  # the demo on ToyFog, 16 shots, seed 1
    assert demo.main([*argv, "--trainers", "ZeroshotCLIP", "LinearProbe"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"\| LinearProbe \| toy \| 16 \| [\d.]+ ± 0.00 \| 1 \|", table), table
    accuracy = {trainer: run_accuracy(Path(demo.run_folder(output, "toy_fog", trainer, 16, 1)))
                for trainer in ("ZeroshotCLIP", "LinearProbe")}
    assert accuracy["LinearProbe"] >= accuracy["ZeroshotCLIP"] + TOY_MARGIN, accuracy
    _, axes = plot_results.few_shot_figure(Path(output))
    labels = {line.get_label() for ax in axes.values() for line in ax.get_lines()}
    assert any(label.startswith("LinearProbe · toy") for label in labels), labels


def test_script_runs_every_seed_in_the_scripts_layout(tmp_path):
    user_settings = ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT", "NCTX", "CSC", "CTP")
    env = {k: v for k, v in os.environ.items() if k not in user_settings}
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    run = subprocess.run(["bash", "scripts/linear_probe/main.sh", "toy_fog", "16"], cwd=root, capture_output=True,
                         text=True, env={**env, "DRY_RUN": "1", "DATA": str(tmp_path), "OUTPUT": str(tmp_path)})
    assert run.returncode == 0, run.stderr
    commands = run.stdout.strip().splitlines()
    assert len(commands) == 3
    for seed, command in enumerate(commands, start=1):
        assert "--trainer LinearProbe " in command and "--config-file configs/trainers/LinearProbe/toy.yaml" in command
        assert f"--output-dir {tmp_path}/toy_fog/LinearProbe/toy_16shots/seed{seed} " in command  # no variant level
        assert command.endswith("DATASET.NUM_SHOTS 16")


@pytest.mark.parametrize("name,backbone", [("vit_b16", "ViT-B/16"), ("vit_b32", "ViT-B/32"), ("rn50", "RN50"),
                                           ("toy", "ToyCLIP-ViT")])
def test_configs_merge_and_save_the_head_at_the_epoch_evaluation_loads(name, backbone):
    from dassl_compat import get_cfg_default
    from trainers.config import extend_cfg

    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "configs", "trainers",
                                 "LinearProbe", f"{name}.yaml"))
    assert cfg.MODEL.BACKBONE.NAME == backbone and cfg.OPTIM.MAX_EPOCH == 1
