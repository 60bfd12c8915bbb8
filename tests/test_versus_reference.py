"""dpt_tools.versus_reference: the authors' trainers and ours measured side by side, one fresh process per side.

The authors' repositories cannot be part of the test suite: generated stand-ins in their layout (a
`trainers/coop.py` with their module-level `load_clip_to_cpu` / `build_lr_scheduler` and a trainer class, a
`clip/clip.py`, a `dassl.config`; for MaPLe and PromptSRC their `trainers/maple.py` and
`trainers/promptsrc.py` in clones of their own, whose `load_clip_to_cpu` reads the weights through
`clip._download`) check the harness's side of the contract: their modules come from the clone each option
names and none of ours is loaded in their process, the harness's configuration (Dassl's tree with their
keys; for MaPLe and PromptSRC our shipped config's), weights and scheduler replace theirs, the model runs
in fp32 (their `.cuda()` and `.half()` neutralised where they call them). Timings are not asserted (a
benchmark, not a test).
"""
import textwrap
from pathlib import Path

import pytest
import yaml

from dassl_compat import TRAINER_REGISTRY
from dpt_models.clip_backbone import OPENAI_ARCHITECTURES
from dpt_tools import versus_reference
from dpt_tools.their_code import THEIR_SUCCESSORS

ROOT = Path(__file__).resolve().parents[1]

# Checks at the top of each stand-in's build_model: their modules are theirs, and none of ours is loaded.
NOTHING_OF_OURS = '''
import sys

OUR_PACKAGES = ("clip_datasets", "dassl_compat", "dpt_models", "dpt_plugin", "dpt_runs", "dpt_tools", "dpt_toyworld")
HARNESS_MODULES = ("dpt_tools", "dpt_tools.measure", "dpt_tools.their_code", "dpt_tools.versus_reference_side")


def check_nothing_of_ours():
    leaked = sorted(name for name in sys.modules
                    if name.split(".")[0] in OUR_PACKAGES and name not in HARNESS_MODULES)
    assert not leaked, f"our modules in their process: {leaked}"
    for name in ("trainers", "clip"):
        assert sys.modules[name].__file__.startswith(THEIR_ROOT), (name, sys.modules[name].__file__)
'''

# The stand-ins' model and training calls: a linear head on each image's mean colour.
STAND_IN_TRAINER = '''
import torch
import torch.nn.functional as F


def build_lr_scheduler(optim, cfg):
    raise AssertionError("the harness replaces the Dassl scheduler")


class MeanColourClassifier(torch.nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.head = torch.nn.Linear(3, n_classes)

    def forward(self, images):
        return self.head(images.mean(dim=(2, 3)))


class StandInTrainer:
    def build_classifier(self):
        self.model = MeanColourClassifier(self.num_classes).half()  # the harness runs it in fp32
        self.optim = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.sched = build_lr_scheduler(self.optim, self.cfg)

    def set_model_mode(self, mode):
        self.model.train(mode == "train")

    def forward_backward(self, batch):
        loss = F.cross_entropy(self.model(batch["img"]), batch["label"])
        self.optim.zero_grad()
        loss.backward()
        self.optim.step()
        return {"loss": loss.item()}

    def model_inference(self, images):
        return self.model(images)
'''

THEIR_COOP = '''
def load_clip_to_cpu(cfg):
    raise AssertionError("the harness replaces load_clip_to_cpu with its own weights")


class CoOp(StandInTrainer):
    def build_model(self):
        check_nothing_of_ours()
        clip_model = load_clip_to_cpu(self.cfg)
        assert clip_model == "built by their clip.build_model" and tuple(self.cfg.INPUT.SIZE) == (32, 32)
        assert self.cfg.TRAINER.COOP.N_CTX == 16 and self.cfg.OPTIM.NAME == "sgd"  # Dassl's tree, their keys
        self.build_classifier()
'''

THEIR_CLIP = '''
def build_model(state_dict):
    assert "visual.conv1.weight" in state_dict
    return "built by their clip.build_model"
'''

# MaPLe's and PromptSRC's clip: the weights come through `_download`, the model is built with design details.
THEIR_SUCCESSORS_CLIP = '''
_MODELS = {"ViT-B/16": "https://openaipublic.azureedge.net/clip/models/ViT-B-16.pt"}


def _download(url, root=None):
    raise AssertionError("the harness points their _download at its weights file")


def build_model(state_dict, design_details):
    assert "visual.conv1.weight" in state_dict and design_details
    return "built by their clip.build_model"
'''

# {class_name}: their trainer class; shipped_node, shipped_lr: our shipped config's (what their side must read).
THEIR_SUCCESSOR = '''
from clip import clip


def load_clip_to_cpu(cfg):
    state_dict = torch.load(clip._download(clip._MODELS[cfg.MODEL.BACKBONE.NAME]), map_location="cpu")
    return clip.build_model(state_dict, {{"trainer": "{class_name}"}})


class {class_name}(StandInTrainer):
    def build_model(self):
        check_nothing_of_ours()
        assert load_clip_to_cpu(self.cfg) == "built by their clip.build_model"
        assert dict(self.cfg.TRAINER.{config_node}) == {shipped_node!r}, self.cfg.TRAINER.{config_node}
        assert self.cfg.OPTIM.LR == {shipped_lr!r} and tuple(self.cfg.INPUT.SIZE) == (32, 32)
        assert torch.ones(1).half().dtype == torch.float32  # their .half() neutralised
        assert torch.ones(1).cuda().device.type == "cpu"  # and their .cuda()
        self.build_classifier()
'''

THEIR_DASSL_CONFIG = '''
def get_cfg_default():
    raise AssertionError("the harness passes its configuration; their process does not build one")
'''


def write_package(root, files):
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def their_trainer_module(root, trainer_code):
    """A stand-in's trainers/<module>.py: the checks, the shared calls, then the trainer class."""
    return f"THEIR_ROOT = {str(root)!r}\n" + NOTHING_OF_OURS + STAND_IN_TRAINER + trainer_code


def their_dassl(tmp_path):
    return write_package(tmp_path / "Dassl.pytorch", {"dassl/__init__.py": "", "dassl/config/__init__.py":
                                                      THEIR_DASSL_CONFIG})


def shipped_successor_config(method):
    """(TRAINER.<node> in fp32, OPTIM.LR) of our shipped config of `method`, read from the file itself."""
    import trainers  # noqa: F401  (registers the trainers)

    path = ROOT / "configs" / "trainers" / f"{TRAINER_REGISTRY.get(method).default_config}.yaml"
    shipped = yaml.safe_load(path.read_text())
    return {**shipped["TRAINER"][THEIR_SUCCESSORS[method].config_node], "PREC": "fp32"}, shipped["OPTIM"]["LR"]


@pytest.fixture
def their_clones(tmp_path):
    coop = tmp_path / "CoOp"
    write_package(coop, {"trainers/__init__.py": "", "clip/__init__.py": "", "clip/clip.py": THEIR_CLIP,
                         "trainers/coop.py": their_trainer_module(coop, THEIR_COOP)})
    return coop, their_dassl(tmp_path)


@pytest.fixture
def successor_clones(tmp_path):
    """Stand-ins of the MaPLe and PromptSRC clones, each with only its own trainer."""
    clones = {}
    for method in ("MaPLe", "PromptSRC"):
        their = THEIR_SUCCESSORS[method]
        root = tmp_path / method
        shipped_node, shipped_lr = shipped_successor_config(method)
        code = THEIR_SUCCESSOR.format(class_name=their.class_name, config_node=their.config_node,
                                      shipped_node=shipped_node, shipped_lr=shipped_lr)
        clones[their.repository] = write_package(root, {
            "trainers/__init__.py": "", "clip/__init__.py": "", "clip/clip.py": THEIR_SUCCESSORS_CLIP,
            f"trainers/{their.module}.py": their_trainer_module(root, code)})
    return clones, their_dassl(tmp_path)


@pytest.fixture
def tiny_architecture(monkeypatch):
    monkeypatch.setitem(OPENAI_ARCHITECTURES, "Tiny-ViT/8", dict(embed_dim=32, image_resolution=32, vision_layers=2,
                                                                 vision_width=64, vision_patch_size=8,
                                                                 transformer_width=128, transformer_layers=2))
    # deep enough for the prompt depth 9 of MaPLe's and PromptSRC's shipped configs
    monkeypatch.setitem(OPENAI_ARCHITECTURES, "Tiny-ViT-9/8", {**OPENAI_ARCHITECTURES["Tiny-ViT/8"],
                                                                "vision_layers": 9, "transformer_layers": 9})


def test_both_sides_measured_in_their_own_processes(their_clones, tiny_architecture, capsys):
    coop, dassl = their_clones
    rows = versus_reference.main(["--coop-repo", str(coop), "--dassl-repo", str(dassl), "--methods", "CoOp",
                                  "--backbone", "Tiny-ViT/8", "--classes", "4", "--batch-size", "2", "--repeats", "1",
                                  "--eval-images", "4"])
    keys = {"train_s", "eval_first_s", "eval_later_s", "eval_set_s", "train_rss_mib", "peak_rss_mib"}
    for side in ("theirs", "ours"):
        assert set(rows["CoOp"][side]) == keys
        assert all(rows["CoOp"][side][key] > 0 for key in ("train_s", "eval_first_s", "eval_later_s", "eval_set_s"))
    table = capsys.readouterr().out
    assert "| CoOp | authors |" in table and "| CoOp | ours |" in table and "| CoOp | ours: faster / memory |" in table


def test_maple_and_promptsrc_from_their_own_clones_with_our_shipped_configs(successor_clones, tiny_architecture,
                                                                              monkeypatch, capsys):
    clones, dassl = successor_clones
    # the stand-ins have no width of their own; the authors' MaPLe needs ViT-B's
    monkeypatch.setattr(versus_reference, "VIT_B_WIDTH", OPENAI_ARCHITECTURES["Tiny-ViT-9/8"]["vision_width"])
    rows = versus_reference.main(["--maple-repo", str(clones["maple_repo"]), "--promptsrc-repo",
                                  str(clones["promptsrc_repo"]), "--dassl-repo", str(dassl), "--methods", "MaPLe",
                                  "PromptSRC", "--backbone", "Tiny-ViT-9/8", "--classes", "2", "--batch-size", "2",
                                  "--repeats", "1", "--eval-images", "2"])
    table = capsys.readouterr().out
    for method in ("MaPLe", "PromptSRC"):
        assert all(rows[method][side]["train_s"] > 0 for side in ("theirs", "ours"))
        assert f"| {method} | authors |" in table and f"| {method} | ours: faster / memory |" in table


def test_ratios_are_theirs_over_ours_for_time_and_ours_over_theirs_for_memory():
    theirs = dict(train_s=10.0, eval_first_s=6.0, eval_later_s=6.0, eval_set_s=30.0, train_rss_mib=4000.0,
                  peak_rss_mib=6000.0)
    ours = dict(train_s=2.0, eval_first_s=1.5, eval_later_s=0.6, eval_set_s=3.0, train_rss_mib=400.0,
                peak_rss_mib=1800.0)
    ratios = versus_reference.format_rows("DPT", theirs, ours)[2]
    assert ratios == "| DPT | ours: faster / memory | 5.0x | 4.0x / 10.0x | 10.0x | 0.10x / 0.30x |"


def test_missing_clones_are_named_with_where_to_get_them(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        versus_reference.main(["--methods", "DPT", "--dassl-repo", str(tmp_path)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--dassl-repo: git clone https://github.com/KaiyangZhou/Dassl.pytorch" in error
    assert "--dpt-repo: git clone https://github.com/fanrena/DPT" in error and "--coop-repo" not in error
    with pytest.raises(SystemExit):
        versus_reference.main(["--methods", "MaPLe", "CoOp", "--dassl-repo", str(tmp_path)])
    error = capsys.readouterr().err
    assert "--maple-repo: git clone https://github.com/muzairkhattak/multimodal-prompt-learning" in error
    assert "--promptsrc-repo" not in error and "--coop-repo: git clone" in error


def test_their_maple_needs_a_vit_b(tmp_path, capsys):
    clone = write_package(tmp_path / "clone", {"trainers/maple.py": "", "dassl/config/__init__.py": ""})
    with pytest.raises(SystemExit) as exit_info:
        versus_reference.main(["--methods", "MaPLe", "--maple-repo", str(clone), "--dassl-repo", str(clone),
                               "--backbone", "ViT-L/14"])
    assert exit_info.value.code == 2 and "--backbone ViT-L/14" in capsys.readouterr().err
