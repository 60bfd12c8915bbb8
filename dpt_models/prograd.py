"""ProGrad (Zhu et al., "Prompt-aligned Gradient for Prompt Tuning", ICCV 2023): CoOp whose update
never goes against the zero-shot CLIP's "general knowledge".

Two losses on the same batch: the cross-entropy of the learned prompts' logits, and the
distillation loss to the zero-shot logits (the hand-written template's), T^2 * soft-label CE at
temperature T. Where the two gradients of a parameter conflict (negative cosine), the step uses the
cross-entropy gradient minus LAMBDA times its projection on the distillation gradient's direction
(`project_conflicting`); otherwise the cross-entropy gradient as it is.

Reference implementation: github.com/htyao89/KgCoOp (`KgCoOp/trainers/prograd.py` with
`prograd_backward_and_update` of its `Dassl.ProGrad.pytorch`), from github.com/BeierZhu/Prompt-align.
"""
import torch
import torch.nn.functional as F

from .coop import CoOpCLIP
from .templates import CUSTOM_TEMPLATES, DEFAULT_TEMPLATE, template_text_features

# The authors' zero-shot templates: CoOp's except five; their words also initialise the context.
PROGRAD_TEMPLATES = {
    **CUSTOM_TEMPLATES,
    "OxfordPets": "a type of pet, a photo of a {}.",
    "OxfordFlowers": "a type of flower, a photo of a {}.",
    "FGVCAircraft": "a type of aircraft, a photo of a {}.",
    "DescribableTextures": "a texture of {}.",
    "Food101": "a type of food, a photo of {}.",
}


def prograd_template(dataset_name):
    """ProGrad's hand-written template of a dataset ("a photo of a {}." when it has none)."""
    return PROGRAD_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)


def template_context(template, n_ctx):
    """(ctx_init words, number of leading zero vectors) of ProGrad's context initialised from a template.

    The template's words before " {}." fill the last k of the n_ctx context positions; the first
    n_ctx - k are "X" placeholders whose vectors start at zero. E.g. "a photo of a {}." with n_ctx 16:
    "X X X X X X X X X X X X a photo of a", 12 zero vectors.
    """
    words = template.replace(" {}.", "").replace("_", " ")
    n_words = len(words.split(" "))
    if n_ctx < n_words:
        raise ValueError(f"N_CTX ({n_ctx}) must be at least the template's {n_words} words ({words!r})")
    return " ".join(["X"] * (n_ctx - n_words) + [words]), n_ctx - n_words


def distillation_loss(logits, zero_shot_logits, temperature):
    """T^2 * mean over the batch of the soft-label CE of logits [B, C] to softmax(zero_shot_logits / T)."""
    teacher = F.softmax(zero_shot_logits / temperature, dim=-1)
    return -(teacher * F.log_softmax(logits / temperature, dim=-1)).sum(dim=-1).mean() * temperature**2


def project_conflicting(grad, general_grad, weight):
    """ProGrad's update direction of one parameter: grad (the task loss's) minus weight times its component
    along general_grad (the distillation loss's) when the two point in opposite directions (negative dot
    product); grad itself otherwise, and also when either is zero (their cosine is then undefined)."""
    unit = general_grad / torch.linalg.norm(general_grad)
    along = torch.dot(grad.flatten(), unit.flatten())
    return grad - weight * along * unit if along < 0 else grad


class ProGradCLIP(CoOpCLIP):
    """CoOp's model that also returns, in training, the zero-shot CLIP's logits of the same images.

    The zero-shot logits use the frozen image encoder's features (those of the learned logits: CLIP
    is frozen, so a second copy of it would compute the same) against the template's text features.

    Args:
        clip_model: an OpenAI or open_clip CLIP (frozen here); classnames: the C class names.
        template: the zero-shot template ("a photo of a {}.").
        n_ctx, csc, class_token_position: CoOp's prompt options (`text.PromptLearner`).
        init_from_template: the context starts as the template's words after zero vectors
            (`template_context`), the authors' CTX_INIT; otherwise random (std 0.02).
    """

    def __init__(self, clip_model, classnames, template=DEFAULT_TEMPLATE, n_ctx=16, init_from_template=False,
                 csc=False, class_token_position="end"):
        ctx_init, n_zero = template_context(template, n_ctx) if init_from_template else ("", 0)
        super().__init__(clip_model, classnames, n_ctx, ctx_init, csc, class_token_position)
        with torch.no_grad():
            self.prompt_learner.ctx[..., :n_zero, :] = 0
        self.register_buffer(
            "template_features", template_text_features(clip_model, classnames, [template]), persistent=False
        )  # [C, E], normalised

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C], "text_features": normalised [C, E]}; in training also
        "zero_shot_logits" [B, C] (no gradient)."""
        image_features = F.normalize(self.image_encoder(images), dim=-1)  # [B, E]
        text_features = F.normalize(self.learned_text_features(), dim=-1)  # [C, E]
        scale = self.logit_scale.exp()
        outputs = {"logits": scale * image_features @ text_features.t(), "text_features": text_features}
        if self.training:
            template = self.template_features.to(image_features.dtype)
            outputs["zero_shot_logits"] = (scale * image_features @ template.t()).detach()
        return outputs
