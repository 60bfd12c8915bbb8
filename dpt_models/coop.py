"""CoOp (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022): learnable text
context vectors in front of (or around) each class name; CLIP stays frozen.

Reference implementation: github.com/KaiyangZhou/CoOp (trainers/coop.py).
"""
import torch.nn as nn
import torch.nn.functional as F

from .text import EvalTextCache, PromptLearner, TextEncoder, TextEncodingSwitch


class CoOpCLIP(TextEncodingSwitch, nn.Module):
    """CLIP whose class text features come from learned prompts: logits [B, C] = 100 * cos(img, text).

    Args:
        clip_model: an OpenAI CLIP (frozen here); classnames: the C class names.
        n_ctx, ctx_init, csc, class_token_position: the prompt learner's options (`text.PromptLearner`).
        prompt_learner: a `PromptLearner` built by the caller, used instead of one from the options above.
    """

    def __init__(self, clip_model, classnames, n_ctx=16, ctx_init="", csc=False, class_token_position="end",
                 prompt_learner=None):
        super().__init__()
        clip_model.requires_grad_(False)
        self.prompt_learner = prompt_learner or PromptLearner(
            classnames, clip_model, n_ctx, ctx_init, csc, class_token_position
        )
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

