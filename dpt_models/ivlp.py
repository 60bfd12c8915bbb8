"""IVLP: independent vision-language prompting, deep prompts learned separately in both towers.

The baseline of Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023) and of "Self-regulating
Prompts: Foundational Model Adaptation without Forgetting" (PromptSRC, ICCV 2023); reference
implementation github.com/muzairkhattak/multimodal-prompt-learning (`trainers/independentVL.py`).
Text: the context (M_t tokens) plus deep text prompts in text blocks 1..J_t-1; image: P tokens in
blocks 0..J_v-1 (none with J_v = 0). How the prompts enter the blocks: `deep_prompts.py`.
"""
import torch
import torch.nn as nn

from .deep_prompts import DeepPromptedCLIP, PromptsOfBothTowers, check_depth, text_depth, text_width
from .visual import PromptedViT


def normal_prompts(*shape):
    """A Parameter of the given shape drawn from N(0, 0.02) (the authors' prompt initialisation)."""
    return nn.Parameter(nn.init.normal_(torch.empty(*shape), std=0.02))


class IndependentPrompts(PromptsOfBothTowers):
    """The context ctx [M_t, W], `text_prompts` [J_t - 1, M_t, W] and `visual_prompts` [J_v, P, D].

    A depth of 1 (text) or 0 (image) leaves that tower without deep prompts (the parameter is None).
    """

    def __init__(self, classnames, clip_model, n_ctx_text=2, n_ctx_vision=2, depth_text=12, depth_vision=12,
                 ctx_init="a photo of a"):
        super().__init__(classnames, clip_model, n_ctx_text, ctx_init)
        vit = PromptedViT(clip_model.visual)
        check_depth("The text prompt depth", depth_text, text_depth(clip_model))
        check_depth("The vision prompt depth", depth_vision, vit.depth, minimum=0)
        if depth_vision and n_ctx_vision < 1:
            raise ValueError(f"Vision prompts (depth {depth_vision}) need at least one token, got {n_ctx_vision}")
        self.text_prompts = normal_prompts(depth_text - 1, self.n_ctx, text_width(clip_model)) \
            if depth_text > 1 else None
        self.visual_prompts = normal_prompts(depth_vision, n_ctx_vision, vit.width) if depth_vision else None

    def deep_text_prompts(self):
        return self.text_prompts

    def layer_prompts(self):
        return self.visual_prompts


class IVLPCLIP(DeepPromptedCLIP):
    """CLIP with independent deep prompts in both towers (`IndependentPrompts`' arguments)."""

    def __init__(self, clip_model, classnames, **prompt_options):
        super().__init__(clip_model, IndependentPrompts(classnames, clip_model, **prompt_options))
