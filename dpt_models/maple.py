"""MaPLe: multi-modal prompt learning, text prompts coupled to the image tower by linear maps.

Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023); reference implementation
github.com/muzairkhattak/multimodal-prompt-learning (`trainers/maple.py`). In the first J blocks of
both towers: text prompt j (the context for j = 0, deep text prompts for j = 1..J-1, each [M, W]) and
image prompt j = Linear_j(text prompt j) [M, D]. Trained: the context, the J - 1 deep text prompts and
the J linear maps (the upstream hard-codes W = 512 and D = 768, ViT-B's widths; here they are the
loaded CLIP's). How the prompts enter the blocks: `deep_prompts.py`.
"""
import copy

import torch
import torch.nn as nn

from .deep_prompts import DeepPromptedCLIP, PromptsOfBothTowers, check_depth, text_depth, text_width
from .ivlp import normal_prompts
from .visual import PromptedViT


class CoupledPrompts(PromptsOfBothTowers):
    """The context ctx [M, W], `text_prompts` [J - 1, M, W], `proj` (W -> D, the context's map) and
    `compound_projections` (J - 1 maps W -> D, all initialised as one copy, as upstream)."""

    def __init__(self, classnames, clip_model, n_ctx=2, depth=9, ctx_init="a photo of a"):
        super().__init__(classnames, clip_model, n_ctx, ctx_init)
        width, vit = text_width(clip_model), PromptedViT(clip_model.visual)
        check_depth("The MaPLe prompt depth", depth, min(text_depth(clip_model), vit.depth))
        self.proj = nn.Linear(width, vit.width)
        self.text_prompts = normal_prompts(depth - 1, self.n_ctx, width) if depth > 1 else None
        projection = nn.Linear(width, vit.width)
        self.compound_projections = nn.ModuleList(copy.deepcopy(projection) for _ in range(depth - 1))

    def deep_text_prompts(self):
        return self.text_prompts

    def layer_prompts(self):
        """The image prompts [J, M, D]: the context and each deep text prompt through its map."""
        visual = [self.proj(self.ctx)]  # [M, D]
        if self.text_prompts is not None:
            visual += [layer(prompts) for layer, prompts in zip(self.compound_projections, self.text_prompts)]
        return torch.stack(visual)


class MaPLeCLIP(DeepPromptedCLIP):
    """CLIP with MaPLe's coupled prompts in the first `depth` blocks of both towers (`CoupledPrompts`)."""

    def __init__(self, clip_model, classnames, **prompt_options):
        super().__init__(clip_model, CoupledPrompts(classnames, clip_model, **prompt_options))
