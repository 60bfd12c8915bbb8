"""dpt_plugin in a CoOp-style harness written here: the host has its own `trainers` package (registering
CoOp), its own vendored `clip` package (whose loaders fail if DPT used them), its own dataset named
DescribableTextures, and a `train.py` in CoOp's shape plus the lines docs/plugin.md tells users to add.
DPT trains there for an epoch through the host's train.py and reloads with --eval-only.

Dassl is not on PyPI, so the host's `dassl` is a stand-in package (on PYTHONPATH, as an installed Dassl
would be) that re-exports this project's bundled engine under Dassl's module paths; dassl_compat
therefore runs its Dassl branch, and the host's registries are the ones the plugin must register into.
With DPT_TEST_ENGINE=dassl (CI's environment that has the real Dassl installed), the host runs on that
Dassl instead of the stand-in.
With DPT_PLUGIN_PYTHON set (CI: the interpreter of a fresh venv holding the built wheel), the host runs
on that interpreter with nothing of this clone on its path.
"""
import os
import re
import subprocess
import sys
import textwrap

from conftest import ROOT, TEST_ENGINE, write_image_folder
from docs_text import code_block

PLUGIN_PYTHON = os.environ.get("DPT_PLUGIN_PYTHON", "")

STANDIN_DASSL = {
    # dassl_compat first: it imports these modules back (its Dassl branch), which then find it initialised.
    "dassl/__init__.py": '__version__ = "0.6.3"\nimport dassl_compat  # noqa: F401,E402\n',
    "dassl/config/__init__.py": "from dassl_compat.lite.config import get_cfg_default\n",
    "dassl/data/__init__.py": "from dassl_compat.lite.data import DataManager\n",
    "dassl/data/data_manager.py": "from dassl_compat.lite.data import DatasetWrapper, build_data_loader\n",
    "dassl/data/datasets/__init__.py":
        "from dassl_compat.lite.data import DATASET_REGISTRY, DatasetBase, Datum, build_dataset\n",
    "dassl/data/transforms/__init__.py": "from dassl_compat.lite.transforms import build_transform\n",
    "dassl/engine/__init__.py": "from dassl_compat.lite.trainer import TRAINER_REGISTRY, TrainerX, build_trainer\n",
    "dassl/engine/trainer.py": "from dassl_compat.lite.trainer import SimpleTrainer, TrainerX\n",
    "dassl/evaluation/__init__.py":
        "from dassl_compat.lite.evaluation import EVALUATOR_REGISTRY, build_evaluator\n",
    "dassl/metrics/__init__.py": "from dassl_compat.lite.evaluation import compute_accuracy\n",
    "dassl/utils/__init__.py": (
        "from dassl_compat.lite.logging import collect_env_info\n"
        "from dpt_runs.run_log import setup_logger\n"
        "from dassl_compat.lite.registry import Registry\n"
        "from dassl_compat.lite.utils import (AverageMeter, MetricMeter, count_num_param, listdir_nohidden,\n"
        "    mkdir_if_missing, read_json, set_random_seed, write_json)\n"
    ),
}

HOST = {
    "trainers/__init__.py": "",
    "trainers/coop.py": '''
        """The host's CoOp: registered under the name our CoOp also has; imports the host's clip as CoOp does."""
        from clip import clip  # noqa: F401
        from dassl.engine import TRAINER_REGISTRY, TrainerX


        @TRAINER_REGISTRY.register()
        class CoOp(TrainerX):
            pass
        ''',
    "trainers/vpt.py": '''
        """The host's own VPT (as MaPLe's repository has): ours must reach the harness under another name."""
        from dassl.engine import TRAINER_REGISTRY, TrainerX


        @TRAINER_REGISTRY.register()
        class VPT(TrainerX):
            pass
        ''',
    "clip/__init__.py": "",
    "clip/clip.py": '''
        """The host's vendored CLIP: DPT must load CLIP from clip-anytorch, never from here."""
        _MODELS = {}


        def tokenize(*args, **kwargs):
            raise RuntimeError("DPT used the host's vendored clip.tokenize")
        ''',
    "clip/model.py": '''
        def build_model(state_dict):
            raise RuntimeError("DPT used the host's vendored clip.model.build_model")
        ''',
    "datasets/__init__.py": "",
    "datasets/dtd.py": '''
        """The host's reader registered as DescribableTextures (our clip_datasets has one too)."""
        import os

        from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum


        @DATASET_REGISTRY.register()
        class DescribableTextures(DatasetBase):
            dataset_dir = "dtd"

            def __init__(self, cfg):
                root = os.path.join(os.path.abspath(cfg.DATASET.ROOT), self.dataset_dir)
                classes = sorted(os.listdir(os.path.join(root, "train")))

                def read(split):
                    return [Datum(impath=os.path.join(root, split, name, image), label=label, classname=name)
                            for label, name in enumerate(classes)
                            for image in sorted(os.listdir(os.path.join(root, split, name)))]

                super().__init__(train_x=read("train"), val=read("test"), test=read("test"))
        ''',
    "configs/datasets/dtd.yaml": 'DATASET:\n  NAME: "DescribableTextures"\n',
    # CoOp's train.py, cut to what it does (its imports, extend_cfg, setup_cfg and main in the same order).
    "train.py": '''
        import argparse

        import torch
        from dassl.config import get_cfg_default
        from dassl.engine import build_trainer
        from dassl.utils import collect_env_info, set_random_seed, setup_logger

        import datasets.dtd
        import trainers.coop
        import trainers.vpt


        def reset_cfg(cfg, args):
            if args.root:
                cfg.DATASET.ROOT = args.root
            if args.output_dir:
                cfg.OUTPUT_DIR = args.output_dir
            if args.seed:
                cfg.SEED = args.seed
            if args.trainer:
                cfg.TRAINER.NAME = args.trainer


        def extend_cfg(cfg):
            from yacs.config import CfgNode as CN

            cfg.TRAINER.COOP = CN()
            cfg.TRAINER.COOP.N_CTX = 16
            cfg.TRAINER.COOP.CSC = False
            cfg.TRAINER.COOP.CTX_INIT = ""
            cfg.TRAINER.COOP.PREC = "fp16"
            cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"
            cfg.DATASET.SUBSAMPLE_CLASSES = "all"


        def setup_cfg(args):
            cfg = get_cfg_default()
            extend_cfg(cfg)
            if args.dataset_config_file:
                cfg.merge_from_file(args.dataset_config_file)
            if args.config_file:
                cfg.merge_from_file(args.config_file)
            reset_cfg(cfg, args)
            cfg.merge_from_list(args.opts)
            cfg.freeze()
            return cfg


        def main(args):
            cfg = setup_cfg(args)
            if cfg.SEED >= 0:
                set_random_seed(cfg.SEED)
            setup_logger(cfg.OUTPUT_DIR)
            if torch.cuda.is_available() and cfg.USE_CUDA:
                torch.backends.cudnn.benchmark = True
            print(collect_env_info())
            trainer = build_trainer(cfg)
            if args.eval_only:
                trainer.load_model(args.model_dir, epoch=args.load_epoch)
                trainer.test()
                return
            if not args.no_train:
                trainer.train()


        if __name__ == "__main__":
            parser = argparse.ArgumentParser()
            parser.add_argument("--root", type=str, default="")
            parser.add_argument("--output-dir", type=str, default="")
            parser.add_argument("--seed", type=int, default=-1)
            parser.add_argument("--config-file", type=str, default="")
            parser.add_argument("--dataset-config-file", type=str, default="")
            parser.add_argument("--trainer", type=str, default="")
            parser.add_argument("--eval-only", action="store_true")
            parser.add_argument("--model-dir", type=str, default="")
            parser.add_argument("--load-epoch", type=int)
            parser.add_argument("--no-train", action="store_true")
            parser.add_argument("opts", default=None, nargs=argparse.REMAINDER)
            main(parser.parse_args())
        ''',
}


def documented_plugin_lines():
    """The lines docs/plugin.md tells users to add to their train.py: (the import, the setup call)."""
    lines = [line.strip() for line in code_block("import trainers.coop").splitlines() if "dpt_plugin" in line]
    imports = [line.split("#")[0].strip() for line in lines if line.startswith("import dpt_plugin")]
    calls = [line.split("#")[0].strip() for line in lines if line.startswith("dpt_plugin.setup(")]
    assert len(imports) == 1 and len(calls) == 1, lines
    return imports[0], calls[0]


def write_tree(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def add_plugin_lines(train_py):
    """Insert the documented lines: the import after the host's trainer imports, the call after extend_cfg."""
    import_line, setup_line = documented_plugin_lines()
    source = train_py.read_text()
    source = source.replace("import trainers.coop\n", f"import trainers.coop\n{import_line}\n", 1)
    source = source.replace("    extend_cfg(cfg)\n", f"    extend_cfg(cfg)\n    {setup_line}\n", 1)
    assert source.count("dpt_plugin") == 2
    train_py.write_text(source)


def host_run(host, standin, args):
    """Run a command in the host folder with the stand-in Dassl (and, without DPT_PLUGIN_PYTHON, this clone)
    on PYTHONPATH; the host folder itself comes first on sys.path, as in CoOp's repository."""
    paths = [str(standin)] + ([] if PLUGIN_PYTHON else [ROOT])
    env = {k: v for k, v in os.environ.items() if k not in ("DASSL_BACKEND", "PYTHONPATH")}
    env.update(PYTHONPATH=os.pathsep.join(paths), OMP_NUM_THREADS="1")
    return subprocess.run([PLUGIN_PYTHON or sys.executable, *args], cwd=host, env=env, capture_output=True,
                          text=True, timeout=600)


def accuracy(log_text):
    return float(re.findall(r"\* accuracy: ([\d.]+)%", log_text)[-1])


def test_dpt_trains_and_reloads_in_a_coop_style_harness(tmp_path):
    host, standin = tmp_path / "host", tmp_path / "site"
    write_tree(host, HOST)
    if TEST_ENGINE == "lite":
        write_tree(standin, STANDIN_DASSL)
    add_plugin_lines(host / "train.py")
    write_image_folder(str(host / "data" / "dtd"), per_split=(("train", 4), ("test", 4)), size=64)

    config = host_run(host, standin, ["-m", "dpt_tools.config_files", "DPT/toy"])
    assert config.returncode == 0, config.stderr
    common = ["--root", "data", "--trainer", "DPT", "--dataset-config-file", "configs/datasets/dtd.yaml",
              "--config-file", config.stdout.strip(), "--seed", "1"]
    opts = ["OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True",  # one epoch, all warmup: the plumbing
            "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "TRAINER.DPT.C_PRE", "1"]
    trained = host_run(host, standin, ["train.py", *common, "--output-dir", "out/dpt", *opts])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "Finish training" in trained.stdout and "ToyCLIP-ViT" in trained.stdout
    assert os.path.isfile(host / "out" / "dpt" / "cavpt" / "model.pth.tar-1")

    reloaded = host_run(host, standin, ["train.py", *common, "--output-dir", "out/eval", "--eval-only",
                                        "--model-dir", "out/dpt", "--load-epoch", "1", *opts])
    assert reloaded.returncode == 0, reloaded.stderr[-3000:]
    assert accuracy(reloaded.stdout) == accuracy(trained.stdout)


# Test-only launcher in the host folder: registers a tiny open_clip architecture with a weight tag whose file is
# local (as open_clip's built-in tags are registered), then runs the host's train.py.
TINY_OPEN_CLIP_LAUNCHER = '''
import runpy
import sys

import open_clip
from open_clip import pretrained

open_clip.add_model_config({config!r})
pretrained._PRETRAINED["DPT-Tiny-Test"] = {{"tiny_tag": {{"file": {weights!r}, **{preprocess!r}}}}}
sys.argv = ["train.py", *sys.argv[1:]]
runpy.run_path("train.py", run_name="__main__")
'''


def test_our_vpt_beside_the_hosts_and_an_open_clip_weight_tag(tmp_path):
    """The host has its own VPT: ours is registered as DPT_VPT (setup() says so) and trains there, with the
    shipped open_clip config and a weight tag given on the command line (the host keeps Dassl's boolean
    MODEL.BACKBONE.PRETRAINED; the tag reaches our trainer: its preprocessing is the tag's)."""
    import json

    from dpt_models.open_clip_backbone import random_model, save_model_folder, tiny_model_cfg

    host, standin = tmp_path / "host", tmp_path / "site"
    write_tree(host, HOST)
    write_tree(standin, STANDIN_DASSL)
    add_plugin_lines(host / "train.py")
    write_image_folder(str(host / "data" / "dtd"), per_split=(("train", 4), ("test", 4)), size=32)
    save_model_folder(str(tmp_path / "tiny"), random_model(tiny_model_cfg()), tiny_model_cfg())
    (tmp_path / "DPT-Tiny-Test.json").write_text(json.dumps(tiny_model_cfg()))
    preprocess = {"mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6), "interpolation": "bilinear"}
    (host / "tiny_open_clip_train.py").write_text(TINY_OPEN_CLIP_LAUNCHER.format(
        config=str(tmp_path / "DPT-Tiny-Test.json"), weights=str(tmp_path / "tiny" / "open_clip_model.safetensors"),
        preprocess=preprocess))

    config = host_run(host, standin, ["-m", "dpt_tools.config_files", "VPT/openclip_vit_b16"])
    assert config.returncode == 0, config.stderr
    trained = host_run(host, standin, [
        "tiny_open_clip_train.py", "--root", "data", "--trainer", "DPT_VPT", "--seed", "1",
        "--dataset-config-file", "configs/datasets/dtd.yaml", "--config-file", config.stdout.strip(),
        "--output-dir", "out/vpt", "MODEL.BACKBONE.NAME", "open_clip:DPT-Tiny-Test",
        "MODEL.BACKBONE.OPEN_CLIP_PRETRAINED", "tiny_tag", "OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True",
        "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "DATALOADER.TEST.BATCH_SIZE", "8"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "dpt_plugin: this harness has its own VPT; this project's are registered as DPT_VPT" in trained.stdout
    assert "Finish training" in trained.stdout
    assert "INPUT.PIXEL_MEAN [0.1, 0.2, 0.3], INPUT.PIXEL_STD [0.4, 0.5, 0.6]" in trained.stdout


def test_plugin_without_dassl_names_what_is_missing(tmp_path):
    no_dassl = host_run(tmp_path, tmp_path, ["-c", "import sys; sys.modules['dassl'] = None; import dpt_plugin"])
    assert no_dassl.returncode != 0
    assert "ImportError: dpt_plugin adds DPT to a Dassl harness, but Dassl cannot be imported" in no_dassl.stderr

    write_tree(tmp_path, {"dassl/__init__.py": '__version__ = "0.1.0"\n',
                          "dassl/engine/__init__.py": "TRAINER_REGISTRY = build_trainer = None\n"})
    old_dassl = host_run(tmp_path, tmp_path, ["-c", "import dpt_plugin"])
    assert old_dassl.returncode != 0
    assert "dpt_plugin needs dassl.engine.TrainerX" in old_dassl.stderr and "(0.1.0) lacks" in old_dassl.stderr

