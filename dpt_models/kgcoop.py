"""KgCoOp (Yao et al., "Visual-Language Prompt Tuning with Knowledge-guided Context Optimization",
CVPR 2023): CoOp whose learned class text features are kept close to those of the dataset's
hand-written template.

Loss: CE(logits) + W * (1 - mean_c cos(t_c, t^clip_c)), with t_c the learned prompt's text feature of
class c and t^clip_c the frozen CLIP's feature of the template filled with class c's name. (The paper
writes the distance as the mean squared Euclidean distance of the normalised features, which is
2 * (1 - cos); the authors' code, followed here, uses 1 - cos, so their W = 8.0 is the paper's 4.0.)

Reference implementation: github.com/htyao89/KgCoOp (`KgCoOp/trainers/kgcoop.py`).
"""
from .coop import CoOpCLIP
from .templates import CUSTOM_TEMPLATES, DEFAULT_TEMPLATE, template_text_features

# The authors' templates: CoOp's, except DTD's.
KGCOOP_TEMPLATES = {**CUSTOM_TEMPLATES, "DescribableTextures": "a photo of a {}, a type of texture."}


def kgcoop_template(dataset_name):
    """KgCoOp's hand-written template of a dataset ("a photo of a {}." when it has none)."""
    return KGCOOP_TEMPLATES.get(dataset_name, DEFAULT_TEMPLATE)


def knowledge_distance(text_features, template_features):
    """1 - mean over classes of cos(learned, template): both [C, E] and normalised -> a scalar."""
    return 1.0 - (text_features * template_features).sum(dim=-1).mean()


class KgCoOpCLIP(CoOpCLIP):
    """CoOp's model that also returns the distance of its text features to the template's.

    Args:
        clip_model: an OpenAI or open_clip CLIP (frozen here); classnames: the C class names.
        template: the hand-written template ("a photo of a {}.") of the anchor text features.
        n_ctx, ctx_init, csc, class_token_position: CoOp's prompt options (`text.PromptLearner`).
    """

    def __init__(self, clip_model, classnames, template=DEFAULT_TEMPLATE, n_ctx=4, ctx_init="a photo of a",
                 csc=False, class_token_position="end"):
        super().__init__(clip_model, classnames, n_ctx, ctx_init, csc, class_token_position)
        self.register_buffer(
            "template_features", template_text_features(clip_model, classnames, [template]), persistent=False
        )  # [C, E], normalised

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C], "text_features": normalised [C, E]}; in training also
        "knowledge_distance" (a scalar, `knowledge_distance`)."""
        outputs = super().forward(images)
        if self.training:
            template = self.template_features.to(outputs["text_features"].dtype)
            outputs["knowledge_distance"] = knowledge_distance(outputs["text_features"], template)
        return outputs

