"""Zero-shot CLIP baselines: one hand-written template per dataset (ZeroshotCLIP) and the
ImageNet template ensemble (ZeroshotCLIP2), as in the CoOp repository."""
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY

from .base import ClipPromptTrainer
from .templates import ensemble_templates, template_text_features


def extend_cfg(cfg):
    """TRAINER.ZSCLIP: only the precision of the image encoder."""
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.PREC = "fp32"


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


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipPromptTrainer):
    """CLIP with fixed text features of the dataset's template; nothing is trained."""

    config_node = "ZSCLIP"
    shares_config_files_with = ("CoOp",)  # zero-shot CLIP runs with CoOp's config files, as in CoOp's scripts

    def templates(self):
        return [self.template]

    def build_clip_model(self, clip_model, classnames):
        templates = self.templates()
        for template in templates:
            print(f"Prompt template: {template!r}")
        return TemplateCLIP(clip_model, classnames, templates)

    def train(self):
        raise RuntimeError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Zero-shot CLIP with the mean of the seven ImageNet templates (+ the dataset's own)."""

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
