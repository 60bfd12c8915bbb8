"""With Dassl installed, our trainers are Dassl's own TrainerX subclasses in Dassl's registry and
train.py runs on Dassl's engine (skipped where Dassl is not installed, as in CI)."""
import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import ROOT

pytestmark = pytest.mark.skipif(importlib.util.find_spec("dassl") is None, reason="Dassl is not installed")

SCRIPT = """
import sys
sys.path[:0] = [{root!r}, {tests!r}]
from conftest import folder_run_args
import dassl_compat
from dpt_tools import train
from dassl.engine import TRAINER_REGISTRY
from dassl.engine.trainer import TrainerX
assert dassl_compat.BACKEND == "dassl"
assert issubclass(TRAINER_REGISTRY.get("CoOp"), TrainerX)
trainer = train.main(folder_run_args({data!r}, {clip!r}, {out!r}, epochs=1))
acc = train.main(["--eval-only", "--model-dir", {out!r}, "--load-epoch", "1"]
                 + folder_run_args({data!r}, {clip!r}, {out!r} + "_eval"))
print("ACCURACIES", trainer.test(), acc)
"""


def test_trainers_run_on_dassls_engine(tmp_path, data_root, tiny_clip_file):
    code = SCRIPT.format(root=ROOT, tests=os.path.join(ROOT, "tests"), data=data_root, clip=tiny_clip_file,
                         out=str(tmp_path / "out"))
    env = dict(os.environ, DASSL_BACKEND="dassl")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    final, reloaded = result.stdout.split("ACCURACIES")[-1].split()
    assert float(final) == float(reloaded)
