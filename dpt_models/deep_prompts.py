"""CLIP with learned prompts in the first blocks of both towers: the model that MaPLe (`maple.py`), IVLP
(`ivlp.py`) and PromptSRC (`promptsrc.py`) share; they differ in where the prompts come from.

The prompts follow the authors' code (github.com/muzairkhattak/multimodal-prompt-learning, its
modified `clip/model.py`): on the text side the context `[SOS] ctx_1..ctx_M {classname}.` is the
first block's prompt and the input of text block i = 1..J-1 has positions 1..M replaced by the deep
text prompt i (`trainers.text.replace_context`); on the image side the first prompt joins the patch
tokens before `ln_pre`, block i = 1..J-1 replaces the last P tokens, and the prompt tokens' outputs
after block J-1 go on through the remaining blocks (`PromptedViT.forward_with_layer_prompts`).
"""
import torch.nn as nn
import torch.nn.functional as F

from trainers.text import EvalTextCache, PromptLearner, TextEncoder
from trainers.visual import PromptedViT


def context_options(n_ctx, ctx_init):
    """`PromptLearner` keywords for the authors' context rule: with CTX_INIT and N_CTX <= 4 the context
    is the first N_CTX tokens of CTX_INIT (its other words stay fixed after the context); otherwise
    N_CTX random tokens (CTX_INIT is then ignored)."""
    if ctx_init and n_ctx <= 4:
        return {"n_ctx": n_ctx, "ctx_init": ctx_init, "init_learned_tokens": n_ctx}
    return {"n_ctx": n_ctx, "ctx_init": ""}


def check_depth(name, depth, n_blocks, minimum=1):
    """A prompt depth must lie in minimum..n_blocks (the tower's blocks); a ValueError names it otherwise."""
    if not minimum <= depth <= n_blocks:
        raise ValueError(f"{name} must be in {minimum}..{n_blocks} (the blocks of that tower), got {depth}")


class DeepPromptedCLIP(nn.Module):
    """CLIP with deep prompts in both towers; logits [B, C] = scale * cos(prompted image, prompted text).

    Args:
        clip_model: an OpenAI or open_clip CLIP ViT (frozen here).
        prompt_learner: a `PromptLearner` (class token at the end, shared context) with a method
            `deep_prompts()` -> (deep text prompts [J_t - 1, M, W] or None, layer prompts of the image
            tower [J_v, P, D] or None); it holds every trained parameter.

    `forward` returns `logits` [B, C], the normalised `image_features` [B, E] and `text_features` [C, E].
    """

    def __init__(self, clip_model, prompt_learner):
        super().__init__()
        clip_model.requires_grad_(False)
        self.prompt_learner = prompt_learner
        self.image_encoder = PromptedViT(clip_model.visual)
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.text_cache = EvalTextCache()

    def train(self, mode=True):
        self.text_cache.clear()
        return super().train(mode)

    def text_features(self, deep_text_prompts):
        """Unnormalised text features [C, E] of the prompts."""
        return self.text_encoder.encode_learned_prompts(self.prompt_learner, deep_text_prompts)

    def image_features(self, images, layer_prompts):
        """Unnormalised image features [B, E]; layer_prompts None: CLIP's own image encoder."""
        if layer_prompts is None:
            return self.image_encoder(images)
        return self.image_encoder.forward_with_layer_prompts(images, layer_prompts)

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C], "image_features": [B, E], "text_features": [C, E]}."""
        deep_text_prompts, layer_prompts = self.prompt_learner.deep_prompts()
        text_features = self.text_cache.get("learned", lambda: self.text_features(deep_text_prompts), self.training)
        image_features = F.normalize(self.image_features(images, layer_prompts), dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        logits = self.logit_scale.exp() * image_features @ text_features.t()
        return {"logits": logits, "image_features": image_features, "text_features": text_features}


def text_width(clip_model):
    """Width W of CLIP's text transformer."""
    return clip_model.ln_final.weight.shape[0]


def text_depth(clip_model):
    """Blocks of CLIP's text transformer."""
    return len(clip_model.transformer.resblocks)


class PromptsOfBothTowers(PromptLearner):
    """A `PromptLearner` (shared context, class token at the end) that also makes deep prompts.

    Subclasses define `deep_prompts()`; construction takes the authors' context rule (`context_options`).
    """

    def __init__(self, classnames, clip_model, n_ctx, ctx_init):
        super().__init__(classnames, clip_model, **context_options(n_ctx, ctx_init))

    def deep_prompts(self):
        """(deep text prompts [J_t - 1, M, W] or None, image layer prompts [J_v, P, D] or None)."""
        raise NotImplementedError
