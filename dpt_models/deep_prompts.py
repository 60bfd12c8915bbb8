"""CLIP with learned prompts in the first blocks of both towers: the model that MaPLe (`maple.py`), IVLP
(`ivlp.py`) and PromptSRC (`promptsrc.py`) share; they differ in where the prompts come from.

The prompts follow the authors' code (github.com/muzairkhattak/multimodal-prompt-learning, its
modified `clip/model.py`): on the text side the context `[SOS] ctx_1..ctx_M {classname}.` is the
first block's prompt and the input of text block i = 1..J-1 has positions 1..M replaced by the deep
text prompt i (`dpt_models.text.replace_context`); on the image side the first prompt joins the patch
tokens before `ln_pre`, block i = 1..J-1 replaces the last P tokens, and the prompt tokens' outputs
after block J-1 go on through the remaining blocks (`PromptedViT.forward_with_layer_prompts`).
"""
import torch.nn.functional as F

from .coop import CoOpCLIP
from .text import PromptLearner
from .visual import PromptedViT


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


class DeepPromptedCLIP(CoOpCLIP):
    """CLIP with deep prompts in both towers; logits [B, C] = scale * cos(prompted image, prompted text).

    Args:
        clip_model: an OpenAI or open_clip CLIP ViT (frozen here).
        prompt_learner: a `PromptsOfBothTowers` (class token at the end, shared context); it holds every
            trained parameter.

    `forward` returns `logits` [B, C], the normalised `image_features` [B, E] and `text_features` [C, E].
    """

    def __init__(self, clip_model, prompt_learner):
        super().__init__(clip_model, None, prompt_learner=prompt_learner)
        self.image_encoder = PromptedViT(clip_model.visual)

    def text_features(self):
        """Unnormalised text features [C, E] of the prompts, deep text prompts included."""
        return self.text_encoder.encode_learned_prompts(self.prompt_learner, self.prompt_learner.deep_text_prompts())

    def image_features(self, images):
        """Unnormalised image features [B, E] with the image tower's prompts (CLIP's own encoder without)."""
        layer_prompts = self.prompt_learner.layer_prompts()
        if layer_prompts is None:
            return self.image_encoder(images)
        return self.image_encoder.forward_with_layer_prompts(images, layer_prompts)

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C], "image_features": [B, E], "text_features": [C, E]}."""
        image_features = F.normalize(self.image_features(images), dim=-1)
        text_features = F.normalize(self.learned_text_features(), dim=-1)
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

    Subclasses define `deep_text_prompts()` and `layer_prompts()`; construction takes the authors' context
    rule (`context_options`).
    """

    def __init__(self, classnames, clip_model, n_ctx, ctx_init):
        super().__init__(classnames, clip_model, **context_options(n_ctx, ctx_init))

    def deep_text_prompts(self):
        """The deep text prompts [J_t - 1, M, W] of text blocks 1..J_t-1, or None."""
        raise NotImplementedError

    def layer_prompts(self):
        """The image prompts [J_v, P, D] of blocks 0..J_v-1 (`PromptedViT.forward_with_layer_prompts`), or None."""
        raise NotImplementedError
