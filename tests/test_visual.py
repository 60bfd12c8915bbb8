"""trainers/visual.py: the prompted ViT forward."""
import torch
from reference import reference_clip

from trainers.visual import PromptedViT


def test_prompted_vit_without_prompts_is_clip_encode_image():
    clip_model = reference_clip()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(PromptedViT(clip_model.visual)(images), clip_model.encode_image(images))


def test_deep_prompts_change_the_features_and_leave_clip_untouched():
    clip_model = reference_clip()
    before = {k: v.clone() for k, v in clip_model.state_dict().items()}
    encoder = PromptedViT(clip_model.visual)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = encoder(images)
        prompted = encoder(images, torch.randn(2, 5, encoder.width))
    assert plain.shape == prompted.shape and not torch.allclose(plain, prompted)
    assert all(torch.equal(before[k], v) for k, v in clip_model.state_dict().items())
