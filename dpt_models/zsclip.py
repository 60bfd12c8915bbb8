"""Zero-shot CLIP baselines: one hand-written template per dataset (ZeroshotCLIP) and the
ImageNet template ensemble (ZeroshotCLIP2), as in the CoOp repository."""
import torch.nn as nn
import torch.nn.functional as F

from .templates import template_text_features


class TemplateCLIP(nn.Module):
    """Frozen CLIP classifying against the fixed text features of hand-written templates.

    Args:
        clip_model: an OpenAI CLIP (frozen here); classnames: the C class names.
        templates: templates with one "{}" for the class name; their features are averaged.
    """

    def __init__(self, clip_model, classnames, templates=("a photo of a {}.",)):
        super().__init__()
        clip_model.requires_grad_(False)
        self.clip_model = clip_model
        self.register_buffer(
            "text_features", template_text_features(clip_model, classnames, templates), persistent=False
        )  # [C, E]

    def forward(self, images):
        """Images [B, 3, H, W] -> {"logits": [B, C]}."""
        image_features = F.normalize(self.clip_model.encode_image(images).float(), dim=-1)
        return {"logits": self.clip_model.logit_scale.exp() * image_features @ self.text_features.t()}

