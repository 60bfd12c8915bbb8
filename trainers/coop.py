"""CoOp (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022): learnable text
context vectors in front of (or around) each class name; CLIP stays frozen.

Reference implementation: github.com/KaiyangZhou/CoOp (trainers/coop.py).
"""
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY

from .base import ClipPromptTrainer
from .text import EvalTextCache, PromptLearner, TextEncoder


def coop_config_node():
    """CoOp's options with the names and defaults of the CoOp repository (VLP and DPT have them too)."""
    node = CN()
    node.N_CTX = 16  # context vectors M
    node.CSC = False  # class-specific context ([C, M, W] instead of [M, W])
    node.CTX_INIT = ""  # initial context words ("a photo of a"); sets N_CTX to their number
    node.CLASS_TOKEN_POSITION = "end"  # end, middle or front
    node.PREC = "fp16"
    return node


def extend_cfg(cfg):
    """TRAINER.COOP."""
    cfg.TRAINER.COOP = coop_config_node()


class CoOpCLIP(nn.Module):
    """CLIP whose class text features come from learned prompts: logits [B, C] = 100 * cos(img, text).

    Args:
        clip_model: an OpenAI CLIP (frozen here); classnames: the C class names.
        n_ctx, ctx_init, csc, class_token_position: the prompt learner's options (`text.PromptLearner`).
    """

    def __init__(self, clip_model, classnames, n_ctx=16, ctx_init="", csc=False, class_token_position="end"):
        super().__init__()
        clip_model.requires_grad_(False)
        self.prompt_learner = PromptLearner(classnames, clip_model, n_ctx, ctx_init, csc, class_token_position)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.text_cache = EvalTextCache()

    def train(self, mode=True):
        self.text_cache.clear()
        return super().train(mode)

    def text_features(self):
        """Unnormalised text features [C, E] of the current prompts."""
        return self.text_encoder.encode_learned_prompts(self.prompt_learner)

    def learned_text_features(self):
        """`text_features()`, computed once per evaluation (see `text.EvalTextCache`)."""
        return self.text_cache.get("learned", self.text_features, self.training)

    def forward(self, image):
        """Images [B, 3, H, W] -> {"logits": [B, C], "text_features": normalised [C, E]}."""
        image_features = F.normalize(self.image_encoder(image), dim=-1)
        text_features = F.normalize(self.learned_text_features(), dim=-1)
        return {"logits": self.logit_scale.exp() * image_features @ text_features.t(), "text_features": text_features}


@TRAINER_REGISTRY.register()
class CoOp(ClipPromptTrainer):
    """Trains only the prompt learner's context with cross-entropy (TRAINER.COOP)."""

    config_node = "COOP"
    weight_options = ("N_CTX", "CSC", "CLASS_TOKEN_POSITION")
    class_dependent_keys = ("token_prefix", "token_suffix")

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        return CoOpCLIP(clip_model, classnames, node.N_CTX, node.CTX_INIT, node.CSC, node.CLASS_TOKEN_POSITION)
