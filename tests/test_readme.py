"""The README stays true: its "Add your own method" example runs through train.py as shown."""
import os.path as osp
import re

import pytest
import torch
from conftest import ROOT, folder_run_args


def readme_block(marker):
    """The fenced code block of README.md whose first line is `marker`."""
    text = open(osp.join(ROOT, "README.md")).read()
    for block in re.findall(r"```(?:python|bash)\n(.*?)```", text, flags=re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"README.md has no code block starting with {marker!r}")


def test_add_your_own_method_example_runs_as_a_plugin(run_train, tmp_path, data_root, tiny_clip_file):
    plugin = tmp_path / "my_kgcoop.py"
    plugin.write_text(readme_block("# my_kgcoop.py"))
    command = readme_block("python train.py --plugin")
    assert "--plugin my_kgcoop.py --trainer AnchoredCoOp" in command
    out = tmp_path / "out"
    node = "TRAINER.ANCHORED_COOP"
    opts = (f"{node}.PREC", "fp32", f"{node}.N_CTX", "4", f"{node}.WEIGHT", "2.0")
    args = folder_run_args(data_root, tiny_clip_file, out, trainer="AnchoredCoOp", epochs=1, extra=opts)
    trainer = run_train(["--plugin", str(plugin)] + args)
    assert type(trainer).__name__ == "AnchoredCoOp" and trainer.cfg.TRAINER.ANCHORED_COOP.WEIGHT == 2.0
    log = open(out / "log.txt").read()
    assert "Trainable parameters: 512" in log and "* accuracy:" in log  # the context only: 4 x 128
    first = re.search(r"loss ([\d.]+) .*ce ([\d.]+) .*drift ([\d.]+) ", log)
    loss, ce, drift = map(float, first.groups())
    assert drift > 0 and loss == pytest.approx(ce + 2.0 * drift, abs=3e-4)  # the log rounds each to 4 decimals
    saved = torch.load(out / "prompt_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert list(saved) == ["ctx"]
