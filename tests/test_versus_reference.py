"""dpt_tools.versus_reference: the authors' trainers and ours measured side by side, one fresh process per side.

The authors' repositories cannot be part of the test suite: a generated stand-in in their layout (a
`trainers/coop.py` with their module-level `load_clip_to_cpu` / `build_lr_scheduler` and a trainer class, a
`clip/clip.py`, a `dassl.config`) checks the harness's side of the contract: their modules come from the
given clones and none of ours is loaded in their process, the harness's configuration (Dassl's tree with
their keys), weights and scheduler replace theirs, the model runs in fp32. Timings are not asserted (a
benchmark, not a test).
"""
import textwrap

import pytest

from dpt_models.clip_backbone import OPENAI_ARCHITECTURES
from dpt_tools import versus_reference

THEIR_COOP = '''
import sys

import torch
import torch.nn.functional as F


def load_clip_to_cpu(cfg):
    raise AssertionError("the harness replaces load_clip_to_cpu with its own weights")


def build_lr_scheduler(optim, cfg):
    raise AssertionError("the harness replaces the Dassl scheduler")


class MeanColourClassifier(torch.nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.head = torch.nn.Linear(3, n_classes)

    def forward(self, images):
        return self.head(images.mean(dim=(2, 3)))


class CoOp:
    def build_model(self):
        leaked = sorted(name for name in sys.modules if name.split(".")[0] in ("dassl_compat", "dpt_tools")
                        and name != "dpt_tools.measure" and name != "dpt_tools" and
                        not name.startswith("dpt_tools.versus_reference_side"))
        assert not leaked, f"our modules in their process: {leaked}"
        assert sys.modules["trainers"].__file__.startswith(THEIR_ROOT), sys.modules["trainers"].__file__
        clip_model = load_clip_to_cpu(self.cfg)
        assert clip_model == "built by their clip.build_model" and tuple(self.cfg.INPUT.SIZE) == (32, 32)
        assert self.cfg.TRAINER.COOP.N_CTX == 16 and self.cfg.OPTIM.NAME == "sgd"  # Dassl's tree, their keys
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

THEIR_CLIP = '''
def build_model(state_dict):
    assert "visual.conv1.weight" in state_dict
    return "built by their clip.build_model"
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


@pytest.fixture
def their_clones(tmp_path):
    coop = tmp_path / "CoOp"
    write_package(coop, {"trainers/__init__.py": "", "clip/__init__.py": "", "clip/clip.py": THEIR_CLIP,
                         "trainers/coop.py": f"THEIR_ROOT = {str(coop)!r}\n" + THEIR_COOP})
    dassl = write_package(tmp_path / "Dassl.pytorch", {"dassl/__init__.py": "", "dassl/config/__init__.py":
                                                       THEIR_DASSL_CONFIG})
    return coop, dassl


@pytest.fixture
def tiny_architecture(monkeypatch):
    monkeypatch.setitem(OPENAI_ARCHITECTURES, "Tiny-ViT/8", dict(embed_dim=32, image_resolution=32, vision_layers=2,
                                                                 vision_width=64, vision_patch_size=8,
                                                                 transformer_width=128, transformer_layers=2))


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
