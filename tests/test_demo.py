"""The offline demo runs every toy recipe (configs/trainers/*/toy.yaml) with the shipped toy CLIP
through train.py, writes the scripts' folder layout and prints the results table."""
import os.path as osp
from pathlib import Path

from dpt_tools import demo
from dpt_tools.results_common import run_accuracy

TRAINERS = ["ZeroshotCLIP", "LinearProbe", "CoOp", "CoCoOp", "VPT", "VLP", "DPT", "MaPLe", "IVLP", "PromptSRC"]


def test_demo_runs_each_toy_recipe_and_prints_the_table(tmp_path, capsys):
    output = tmp_path / "output"
    argv = ["--data", str(tmp_path / "data"), "--output", str(output), "--shots", "1", "--trainers", *TRAINERS]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    for trainer in TRAINERS:
        folder = demo.run_folder(str(output), "toy_fog", trainer, 1, 1)
        accuracy = run_accuracy(Path(folder))
        assert accuracy is not None and osp.isdir(folder)
        assert f"| {trainer} | toy |" in printed
    # a second call finds the finished runs and does not train again
    assert demo.main(argv) == 0
    assert capsys.readouterr().out.count("done before") == len(TRAINERS)
