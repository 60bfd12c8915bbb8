"""The README stays true: its "Add your own method" example runs through train.py as shown."""
import os.path as osp
import re

import pytest
import torch
from conftest import ROOT, folder_run_args

from dassl_compat.errors import UserError


def readme_block(marker):
    """The fenced code block of README.md whose first line is `marker`."""
    text = open(osp.join(ROOT, "README.md")).read()
    for block in re.findall(r"```(?:python|bash)\n(.*?)```", text, flags=re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"README.md has no code block starting with {marker!r}")


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The example's my_kgcoop.py, one file for the module's tests (a trainer registers once per process)."""
    path = tmp_path_factory.mktemp("plugin") / "my_kgcoop.py"
    path.write_text(readme_block("# my_kgcoop.py"))
    return path


def test_add_your_own_method_example_runs_as_a_plugin(run_train, plugin, tmp_path, data_root, tiny_clip_file):
    command = readme_block("python train.py --plugin")
    assert "--plugin my_kgcoop.py --trainer KgCoOp" in command
    out = tmp_path / "out"
    opts = ("TRAINER.KGCOOP.PREC", "fp32", "TRAINER.KGCOOP.N_CTX", "4", "TRAINER.KGCOOP.WEIGHT", "2.0")
    args = folder_run_args(data_root, tiny_clip_file, out, trainer="KgCoOp", epochs=1, extra=opts)
    trainer = run_train(["--plugin", str(plugin)] + args)
    assert type(trainer).__name__ == "KgCoOp" and trainer.cfg.TRAINER.KGCOOP.WEIGHT == 2.0
    log = open(out / "log.txt").read()
    assert "Trainable parameters: 512" in log and "* accuracy:" in log  # the context only: 4 x 128
    first = re.search(r"loss ([\d.]+) .*ce ([\d.]+) .*drift ([\d.]+) ", log)
    loss, ce, drift = map(float, first.groups())
    assert drift > 0 and loss == pytest.approx(ce + 2.0 * drift, abs=3e-4)  # the log rounds each to 4 decimals
    saved = torch.load(out / "prompt_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert list(saved) == ["ctx"]


def test_the_example_plugin_declares_the_rules_of_its_options(run_train, plugin, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "out", trainer="KgCoOp", epochs=1,
                           extra=("TRAINER.KGCOOP.WEIGHT", "-8.0"))
    with pytest.raises(UserError, match=r"TRAINER\.KGCOOP\.WEIGHT must be a number >= 0, got -8\.0"):
        run_train(["--plugin", str(plugin)] + args)
    assert not (tmp_path / "out").exists()  # checked before the run starts
