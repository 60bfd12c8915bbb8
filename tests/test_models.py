"""Every method's model from plain arguments, as in a notebook (no config node, no dataset name, no
trainer): a dict with `logits` [B, C] in training and in evaluation, on the reference's tiny CLIP."""
import pytest
import torch
from reference import reference_clip

from dpt_models.ivlp import IVLPCLIP
from dpt_models.maple import MaPLeCLIP
from dpt_models.promptsrc import PromptSRCCLIP
from trainers.cocoop import CoCoOpCLIP
from trainers.coop import CoOpCLIP
from trainers.dpt import DPTCLIP
from trainers.vlp import VLPCLIP
from trainers.vpt import VPTCLIP
from trainers.zsclip import TemplateCLIP

CLASSNAMES = ["dog", "sea lion", "Annual Crop Land"]
MODELS = {
    "TemplateCLIP": (TemplateCLIP, {"templates": ["a photo of a {}.", "itap of a {}."]}),
    "CoOpCLIP": (CoOpCLIP, {"n_ctx": 4, "csc": True, "class_token_position": "middle"}),
    "CoCoOpCLIP": (CoCoOpCLIP, {"ctx_init": "a photo of a"}),
    "VPTCLIP": (VPTCLIP, {"template": "{} texture.", "n_visual_tokens": 3}),
    "VLPCLIP": (VLPCLIP, {"template": "{} texture.", "n_ctx": 4, "n_visual_tokens": 3}),
    "DPTCLIP": (DPTCLIP, {"n_class_aware_blocks": 2, "n_class_prompts": 2, "template": "{} texture.", "n_ctx": 4}),
    "MaPLeCLIP": (MaPLeCLIP, {"n_ctx": 2, "depth": 2}),
    "IVLPCLIP": (IVLPCLIP, {"n_ctx_text": 4, "n_ctx_vision": 3, "depth_text": 2, "depth_vision": 1}),
    "PromptSRCCLIP": (PromptSRCCLIP, {"depth_text": 2, "depth_vision": 2,
                                      "templates": ["a photo of a {}.", "art of a {}."]}),
}
# What each model adds to `logits` in training mode.
TRAINING_OUTPUTS = {
    "CoOpCLIP": {"text_features"},
    "VLPCLIP": {"text_guidance_logits", "visual_guidance_logits"},
    "DPTCLIP": {"text_guidance_logits", "visual_guidance_logits", "aux_logits", "class_indices"},
    "PromptSRCCLIP": {"image_features", "text_features", "zs_image_features", "zs_text_features", "zs_logits"},
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_builds_from_plain_arguments_and_returns_logits(name):
    model_class, options = MODELS[name]
    torch.manual_seed(0)
    clip_model = reference_clip()
    model = model_class(clip_model, CLASSNAMES, **options)
    assert not any(p.requires_grad for p in clip_model.parameters())  # the model freezes its CLIP
    images = torch.randn(2, 3, 32, 32)
    outputs = model.train()(images)
    assert outputs["logits"].shape == (2, 3) and torch.isfinite(outputs["logits"]).all()
    assert TRAINING_OUTPUTS.get(name, set()) <= set(outputs)
    with torch.no_grad():
        assert model.eval()(images)["logits"].shape == (2, 3)
