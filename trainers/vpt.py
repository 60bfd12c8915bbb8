"""VPT: deep visual prompts in every ViT block + CLIP's fixed zero-shot classifier.

Jia et al., "Visual Prompt Tuning" (ECCV 2022), as the baseline in Xing et al., "Dual Modality Prompt
Tuning for Vision-Language Pre-Trained Model" (IEEE TMM 2023); reference implementation
github.com/fanrena/DPT (`trainers/VPT.py`). Only the visual prompts train; the classifier is the
normalised text features of the dataset's hand-written template ("a photo of a {}." ...).
"""
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.errors import UserError

from .base import ClipPromptTrainer
from .templates import template_text_features
from .visual import DeepVisualPrompts, PromptedViT


def extend_cfg(cfg):
    """TRAINER.VPT (the reference run script's values as defaults)."""
    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX = 10  # deep visual prompt tokens per block
    cfg.TRAINER.VPT.PREC = "fp16"


class VPTCLIP(nn.Module):
    """CLIP with deep visual prompts in all blocks, classifying against fixed template features.

    Args:
        clip_model: an OpenAI CLIP ViT (frozen here); classnames: the C class names.
        template: the zero-shot template ("a photo of a {}.") of the classifier.
        n_visual_tokens: deep visual prompt tokens per block.
    """

    def __init__(self, clip_model, classnames, template="a photo of a {}.", n_visual_tokens=10):
        super().__init__()
        clip_model.requires_grad_(False)
        self.image_encoder = PromptedViT(clip_model.visual)
        self.visual_prompts = DeepVisualPrompts(self.image_encoder.depth, n_visual_tokens, self.image_encoder.width)
        self.register_buffer(
            "template_text_features", template_text_features(clip_model, classnames, [template]), persistent=False
        )
        self.logit_scale = clip_model.logit_scale

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C]}."""
        image_features = F.normalize(self.image_encoder(images, self.visual_prompts()), dim=-1)
        return {"logits": self.logit_scale.exp() * image_features @ self.template_text_features.t()}


@TRAINER_REGISTRY.register()
class VPT(ClipPromptTrainer):
    """Deep visual prompt tuning of CLIP's ViT with the zero-shot template classifier (TRAINER.VPT)."""

    config_node = "VPT"
    weight_options = ("N_CTX",)
    requires_vit = True

    def check_method_cfg(self, node):
        if node.N_CTX < 1:
            raise UserError(f"TRAINER.VPT.N_CTX (visual prompt tokens) must be >= 1, got {node.N_CTX}")

    def build_clip_model(self, clip_model, classnames):
        return VPTCLIP(clip_model, classnames, self.template, self.method_cfg.N_CTX)
