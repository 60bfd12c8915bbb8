"""CoCoOp (Zhou et al., "Conditional Prompt Learning for Vision-Language Models", CVPR 2022): CoOp's
learnable text context plus a small meta-network that turns each image's feature into a bias added
to every context vector, so that every image gets its own prompts for all classes; CLIP stays frozen.

Reference implementation: github.com/KaiyangZhou/CoOp (trainers/cocoop.py). Same parameters (names
included: `prompt_learner.ctx`, `prompt_learner.meta_net.linear{1,2}`), same logits, loss and
gradients. Differences: the model returns logits in training too (the reference returns the loss;
the trainer computes the same cross-entropy and also logs accuracy); the B x C per-image prompts of
a training batch go through the text encoder in one call instead of a loop over the images, each
image's shared `[SOS] ctx` prefix encoded once and the prompts only up to the longest one's EOT
(trainers/text.py); fp16 is autocast with fp32 parameters (trainers/base.py).
"""
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY

from .coop import CoOp
from .text import PromptLearner, TextEncoder


def extend_cfg(cfg):
    """TRAINER.COCOOP, with the names and defaults of the CoOp repository."""
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"


class ConditionalPromptLearner(PromptLearner):
    """CoOp's shared context ctx [M, W] shifted per image by a meta-net bias.

    meta_net: Linear(E -> E // 16) -> ReLU -> Linear(E // 16 -> W) maps the L2-normalised image
    feature [B, E] to a bias [B, W]; image b's context is ctx + bias_b for every class.
    """

    def __init__(self, classnames, clip_model, n_ctx=16, ctx_init=""):
        super().__init__(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init)
        image_dim = clip_model.visual.output_dim
        hidden_dim = image_dim // 16
        if hidden_dim < 1:
            raise ValueError(f"CoCoOp's meta-net needs an image feature size of at least 16, got {image_dim}")
        self.meta_net = nn.Sequential(
            OrderedDict(
                [
                    ("linear1", nn.Linear(image_dim, hidden_dim)),
                    ("relu", nn.ReLU(inplace=True)),
                    ("linear2", nn.Linear(hidden_dim, self.ctx.shape[-1])),
                ]
            )
        )

    def contexts(self, image_features):
        """Normalised image features [B, E] -> each image's context [B, M, W] (shared by its classes)."""
        bias = self.meta_net(image_features)  # [B, W]
        return self.ctx.unsqueeze(0) + bias.unsqueeze(1)  # [B, M, W]

    def forward(self, image_features):
        """Normalised image features [B, E] -> per-image prompt embeddings [B, C, L, W]."""
        ctx = self.contexts(image_features)  # [B, M, W]
        return self.assemble(ctx.unsqueeze(1).expand(-1, self.n_cls, -1, -1))  # ctx [B, C, M, W]


class CoCoOpCLIP(nn.Module):
    """CLIP whose class text features are conditioned on each image.

    logits[b, c] = 100 * cos(image b, text of class c under image b's prompts).

    Args:
        clip_model: an OpenAI CLIP (frozen here); classnames: the C class names.
        n_ctx, ctx_init: the context's options (`text.PromptLearner`).
        eval_prompts_per_call: in eval mode, at most this many prompts (at least one image's C) go
            through the text encoder per call, which bounds memory for 1000-class ImageNet at test
            batch 100 (100,000 prompts otherwise).
    """

    def __init__(self, clip_model, classnames, n_ctx=16, ctx_init="", eval_prompts_per_call=10_000):
        super().__init__()
        clip_model.requires_grad_(False)
        self.prompt_learner = ConditionalPromptLearner(classnames, clip_model, n_ctx=n_ctx, ctx_init=ctx_init)
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.eval_prompts_per_call = eval_prompts_per_call

    def text_features(self, image_features, images_per_call=None):
        """Unnormalised text features [B, C, E] of each image's prompts, from normalised image features [B, E].

        The C prompts of `images_per_call` images (default: the whole batch) are encoded in one
        text-encoder call; each image's `[SOS] ctx` prefix once (TextEncoder.encode_contexts).
        """
        contexts = self.prompt_learner.contexts(image_features)  # [B, M, W]
        chunks = contexts.split(images_per_call or contexts.shape[0])
        return torch.cat([self.text_encoder.encode_contexts(self.prompt_learner, chunk) for chunk in chunks])

    def forward(self, image, images_per_call=None):
        """Images [B, 3, H, W] -> {"logits": [B, C]} (fp32).

        images_per_call: images whose prompts share a text-encoder call; default: the whole batch in
        training, eval_prompts_per_call // C in eval mode.
        """
        if images_per_call is None and not self.training:
            images_per_call = max(1, self.eval_prompts_per_call // self.prompt_learner.n_cls)
        image_features = F.normalize(self.image_encoder(image).float(), dim=-1)  # [B, E]
        text_features = F.normalize(self.text_features(image_features, images_per_call).float(), dim=-1)
        cosine = (text_features * image_features.unsqueeze(1)).sum(dim=-1)  # [B, C], fp32 under autocast too
        return {"logits": self.logit_scale.exp() * cosine}


@TRAINER_REGISTRY.register()
class CoCoOp(CoOp):
    """Trains the context and the meta-net (the prompt learner) with cross-entropy (TRAINER.COCOOP)."""

    config_node = "COCOOP"
    weight_options = ("N_CTX",)

    def build_clip_model(self, clip_model, classnames):
        return CoCoOpCLIP(clip_model, classnames, self.method_cfg.N_CTX, self.method_cfg.CTX_INIT)
