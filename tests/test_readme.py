"""The documentation stays true: the "Add your own method" example (docs/adding_a_method.md) runs
through train.py as shown."""
import re

import pytest
import torch
from conftest import folder_run_args
from docs_text import code_block

from dpt_models.errors import UserError


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The example's my_anchored_coop.py, one file for the module's tests (a trainer registers once per process)."""
    path = tmp_path_factory.mktemp("plugin") / "my_anchored_coop.py"
    path.write_text(code_block("# my_anchored_coop.py"))
    return path


def test_add_your_own_method_example_runs_as_a_plugin(run_train, plugin, tmp_path, data_root, tiny_clip_file):
    command = code_block("python train.py --plugin")
    assert "--plugin my_anchored_coop.py --trainer AnchoredCoOp" in command
    out = tmp_path / "out"
    opts = ("TRAINER.ANCHORED_COOP.PREC", "fp32", "TRAINER.ANCHORED_COOP.N_CTX", "4",
            "TRAINER.ANCHORED_COOP.WEIGHT", "2.0")
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


def test_the_example_plugin_declares_the_rules_of_its_options(run_train, plugin, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "out", trainer="AnchoredCoOp", epochs=1,
                           extra=("TRAINER.ANCHORED_COOP.WEIGHT", "-8.0"))
    with pytest.raises(UserError, match=r"TRAINER\.ANCHORED_COOP\.WEIGHT must be a number >= 0, got -8\.0"):
        run_train(["--plugin", str(plugin)] + args)
    assert not (tmp_path / "out").exists()  # checked before the run starts
