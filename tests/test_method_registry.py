"""The registry is the one list of methods: a method added in the tree as its trainer module
(trainers/<m>.py) and its model module (dpt_models/<m>.py), in a copy of this repository, is found by
every list derived from it: the config keys, dpt-benchmark's defaults, dpt-demo's config folder and
zero-shot handling, the model tests' parametrisation and dpt_plugin's offer to a host Dassl harness."""
import json
import os
import shutil
import subprocess
import sys

from conftest import ROOT
from test_plugin import STANDIN_DASSL, write_tree

PACKAGES = ("dassl_compat", "dpt_models", "dpt_runs", "trainers", "clip_datasets", "dpt_tools", "dpt_toyworld")
NEW_METHOD = {
    "dpt_models/toy_method.py": '''
        from .zsclip import TemplateCLIP


        class ToyMethodCLIP(TemplateCLIP):
            """A new model class (zero-shot CLIP's forward)."""
    ''',
    "trainers/toy_method.py": '''
        from yacs.config import CfgNode as CN

        from dassl_compat import TRAINER_REGISTRY
        from dpt_models.toy_method import ToyMethodCLIP

        from .zsclip import ZeroshotCLIP


        def extend_cfg(cfg):
            cfg.TRAINER.TOY_METHOD = CN({"PREC": "fp32", "STRENGTH": 0.5})


        @TRAINER_REGISTRY.register()
        class ToyMethod(ZeroshotCLIP):
            config_node, model_class, default_config = "TOY_METHOD", ToyMethodCLIP, "ToyMethod/vit_b16"
            in_plugin = True  # eval_only, from ZeroshotCLIP
    ''',
}
LISTS = '''
import json
from trainers.config import extend_cfg
from dassl_compat import get_cfg_default
from dpt_tools import benchmark, demo
from argparse import Namespace
import test_models

args = Namespace(data="data", seed=1, dataset="toy_fog", shots=2)
print(json.dumps({
    "config": extend_cfg(get_cfg_default()).TRAINER.TOY_METHOD.STRENGTH,
    "benchmark": benchmark.default_configs().get("ToyMethod"),
    "demo": demo.train_args(args, "ToyMethod", "out"),
    "demo_folder": demo.run_folder("out", "toy_fog", "ToyMethod", 2, 1),
    "models": sorted(test_models.MODELS),
}))
'''
PLUGIN = '''
import json
import dpt_plugin
from dassl_compat import get_cfg_default
cfg = get_cfg_default()
print(json.dumps({"registered": dpt_plugin.setup(cfg), "config": cfg.TRAINER.TOY_METHOD.STRENGTH}))
'''


def run_json(code, cwd, paths, backend=None):
    env = {k: v for k, v in os.environ.items() if k not in ("DASSL_BACKEND", "PYTHONPATH")}
    env.update(PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1")
    if backend:
        env["DASSL_BACKEND"] = backend
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_new_method_module_is_in_every_list(tmp_path):
    clone = tmp_path / "clone"
    ignore = shutil.ignore_patterns("__pycache__", "*.pt")
    for package in PACKAGES:
        shutil.copytree(os.path.join(ROOT, package), clone / package, ignore=ignore)
    shutil.copy(os.path.join(ROOT, "dpt_plugin.py"), clone)
    for name in ("conftest.py", "reference.py", "test_models.py"):
        shutil.copy(os.path.join(ROOT, "tests", name), clone / name)
    write_tree(clone, NEW_METHOD)

    found = run_json(LISTS, clone, [str(clone)], backend="lite")
    assert found["config"] == 0.5
    assert found["benchmark"] == "ToyMethod/vit_b16"
    assert found["demo"][0] == "--eval-only" and "ToyMethod/toy" in found["demo"]
    assert found["demo_folder"] == os.path.join("out", "toy_fog", "ToyMethod", "toy", "seed1")
    assert "ToyMethodCLIP" in found["models"] and "DPTCLIP" in found["models"]

    standin = tmp_path / "site"
    write_tree(standin, STANDIN_DASSL)
    offered = run_json(PLUGIN, tmp_path, [str(standin), str(clone)])
    assert "ToyMethod" in offered["registered"] and {"DPT", "VLP", "VPT"} <= set(offered["registered"])
    assert not {"CoOp", "CoCoOp", "ZeroshotCLIP"} & set(offered["registered"])  # the host's names are not offered
    assert offered["config"] == 0.5
