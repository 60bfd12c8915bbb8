"""Every method's model from plain arguments, as in a notebook (no config node, no dataset name, no
trainer): a dict with `logits` [B, C] in training and in evaluation, on the reference's tiny CLIP; and the
model layer loads no engine."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reference import reference_clip

import dpt_models
import trainers  # noqa: F401  (registers the trainers)
from dassl_compat import get_cfg_default
from trainers.base import registered_methods
from trainers.config import extend_cfg

ROOT_DIR = str(Path(__file__).resolve().parent.parent)
CLASSNAMES = ["dog", "sea lion", "Annual Crop Land"]
# Every registered method's model (the registry is the list); options other than the defaults, by model.
MODELS = {cls.model_class.__name__: cls.model_class for cls in registered_methods().values()}
OPTIONS = {
    "TemplateCLIP": {"templates": ["a photo of a {}.", "itap of a {}."]},
    "CoOpCLIP": {"n_ctx": 4, "csc": True, "class_token_position": "middle"},
    "CoCoOpCLIP": {"ctx_init": "a photo of a"},
    "VPTCLIP": {"template": "{} texture.", "n_visual_tokens": 3},
    "VLPCLIP": {"template": "{} texture.", "n_ctx": 4, "n_visual_tokens": 3},
    "DPTCLIP": {"n_class_aware_blocks": 2, "n_class_prompts": 2, "template": "{} texture.", "n_ctx": 4},
    "KgCoOpCLIP": {"template": "{} texture."},
    "ProGradCLIP": {"template": "a photo of a {}.", "n_ctx": 6, "init_from_template": True},
    "MaPLeCLIP": {"n_ctx": 2, "depth": 2},
    "IVLPCLIP": {"n_ctx_text": 4, "n_ctx_vision": 3, "depth_text": 2, "depth_vision": 1},
    "PromptSRCCLIP": {"depth_text": 2, "depth_vision": 2, "templates": ["a photo of a {}.", "art of a {}."]},
}
# What each model adds to `logits` in training mode.
TRAINING_OUTPUTS = {
    "CoOpCLIP": {"text_features"},
    "VLPCLIP": {"text_guidance_logits", "visual_guidance_logits"},
    "DPTCLIP": {"text_guidance_logits", "visual_guidance_logits", "aux_logits", "class_indices"},
    "KgCoOpCLIP": {"text_features", "knowledge_distance"},
    "ProGradCLIP": {"text_features", "zero_shot_logits"},
    "PromptSRCCLIP": {"image_features", "text_features", "zs_image_features", "zs_text_features", "zs_logits"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_builds_from_plain_arguments_and_returns_logits(name):
    torch.manual_seed(0)
    clip_model = reference_clip()
    model = MODELS[name](clip_model, CLASSNAMES, **OPTIONS.get(name, {}))
    assert not any(p.requires_grad for p in clip_model.parameters())  # the model freezes its CLIP
    images = torch.randn(2, 3, 32, 32)
    outputs = model.train()(images)
    assert outputs["logits"].shape == (2, 3) and torch.isfinite(outputs["logits"]).all()
    assert TRAINING_OUTPUTS.get(name, set()) <= set(outputs)
    with torch.no_grad():
        assert model.eval()(images)["logits"].shape == (2, 3)


@pytest.mark.parametrize("name", list(registered_methods()))
def test_trainer_builds_its_model_from_the_config_alone(name):
    """What rebuilding a run folder relies on: build_clip_model reads only the config (no dataset, device or
    engine state), through ClipPromptTrainer.build_model_from_cfg; depths fit the tiny ViT's 2 blocks."""
    trainer_class = registered_methods()[name]
    cfg = extend_cfg(get_cfg_default())
    cfg.TRAINER.NAME = name
    node = cfg.TRAINER[trainer_class.config_node]
    for key in [key for key in node if "DEPTH" in key or key == "BOTTOMLIMIT"]:
        node[key] = min(node[key], 2)
    torch.manual_seed(0)
    model = trainer_class.build_model_from_cfg(cfg, reference_clip(), CLASSNAMES)
    assert isinstance(model, trainer_class.model_class)
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32))["logits"].shape == (2, 3)


ENGINE_MODULES = ("dassl", "dassl_compat", "yacs", "trainers")


def test_model_layer_imports_no_engine():
    """Importing every module of the model layer, in a fresh interpreter, loads no engine, Dassl, yacs or
    trainer (one interpreter for all: a module that loaded one would leave it in sys.modules)."""
    modules = ["dpt_models"] + [f"dpt_models.{module.name}" for module in pkgutil.iter_modules(dpt_models.__path__)]
    check = (f"import sys, {', '.join(modules)}; "
             f"print(sorted(name for name in sys.modules if name.split('.')[0] in {ENGINE_MODULES!r}))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, cwd=ROOT_DIR)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert "dpt_models.dpt" in modules and len(modules) > 10
