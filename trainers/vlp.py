"""VLP: CoOp text prompts + deep visual prompts + DPT's general-knowledge guidance loss, no CAVPT.

The "vision-language prompt" ablation of Xing et al., "Dual Modality Prompt Tuning for
Vision-Language Pre-Trained Model" (IEEE TMM 2023); reference implementation github.com/fanrena/DPT
(`trainers/VLP.py`). DPT (`dpt.py`) extends this model and trainer with class-aware visual prompts.

Guidance (README.md, "DPT"): besides the prediction `logits` (prompted image vs learned text), the
model produces `text_guidance_logits` (frozen zero-shot image vs learned text: a CoOp signal) and
`visual_guidance_logits` (prompted image vs fixed template text: a VPT signal). For epochs < C_PRE
the loss is CE(text_guidance) + CE(visual_guidance) + GUIDANCE_WEIGHT * CE(logits), then CE(logits).
"""
import torch
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.errors import UserError

from .base import ClipPromptTrainer
from .coop import CoOpCLIP, coop_config_node
from .templates import template_text_features
from .visual import DeepVisualPrompts, PromptedViT


def vlp_config_node():
    """VLP's options (DPT has them too). Defaults are the values of the reference run script
    (github.com/fanrena/DPT); values hard-coded there are keys here, with that value as default."""
    node = coop_config_node()  # N_CTX, CSC, CTX_INIT, CLASS_TOKEN_POSITION, PREC
    node.VPT_N_CTX = 10  # deep visual prompt tokens per block (upstream TRAINER.VPT.N_CTX)
    node.C_PRE = 30  # guidance epochs (upstream PRETRAIN.C): guidance loss while epoch < C_PRE
    node.GUIDANCE_WEIGHT = 0.1  # weight of CE(logits) during the guidance epochs
    node.TEXT_LR = 0.002  # learning rate of the text context (visual prompts use OPTIM.LR)
    node.TEXT_WARMUP_EPOCH = 1  # warmup epochs of the text context (visual: OPTIM.WARMUP_EPOCH)
    return node


def extend_cfg(cfg):
    """TRAINER.VLP."""
    cfg.TRAINER.VLP = vlp_config_node()


class VLPCLIP(CoOpCLIP):
    """CoOp's model with deep visual prompts in CLIP's ViT, plus the guidance logits in training.

    Args:
        clip_model: an OpenAI CLIP ViT (frozen here); classnames: the C class names.
        template: the zero-shot template ("a photo of a {}.") of the visual guidance (and DPT's selector).
        n_ctx, ctx_init, csc, class_token_position: CoOp's text-context options.
        n_visual_tokens: deep visual prompt tokens per block.
        n_visual_blocks: how many blocks, from the first, get deep prompts (default: all).
    """

    # Whether inference needs the frozen zero-shot image features (DPT's class selector does).
    needs_zero_shot_image_at_inference = False

    def __init__(
        self,
        clip_model,
        classnames,
        template="a photo of a {}.",
        n_ctx=16,
        ctx_init="",
        csc=False,
        class_token_position="end",
        n_visual_tokens=10,
        n_visual_blocks=None,
    ):
        super().__init__(clip_model, classnames, n_ctx, ctx_init, csc, class_token_position)
        self.image_encoder = PromptedViT(clip_model.visual)
        if n_visual_blocks is None:
            n_visual_blocks = self.image_encoder.depth
        self.visual_prompts = DeepVisualPrompts(n_visual_blocks, n_visual_tokens, self.image_encoder.width)
        self.register_buffer(
            "template_text_features", template_text_features(clip_model, classnames, [template]), persistent=False
        )

    @torch.no_grad()
    def zero_shot_image_features(self, images):
        """Normalised features [B, E] of the frozen, un-prompted CLIP image encoder."""
        return F.normalize(self.image_encoder(images), dim=-1)

    def encode_prompted_image(self, images, text_features, zero_shot_image_features):
        """Prompted image features [B, E] (unnormalised) and a dict of extra outputs (none here)."""
        return self.image_encoder(images, self.visual_prompts()), {}

    def forward(self, images):
        """images [B, 3, H, W] -> dict of outputs.

        Always `logits` [B, C]; in training mode also `text_guidance_logits` and
        `visual_guidance_logits` [B, C]; subclasses add their own entries.
        """
        text_features = self.learned_text_features()  # [C, E]
        zero_shot_image = None
        if self.training or self.needs_zero_shot_image_at_inference:
            zero_shot_image = self.zero_shot_image_features(images)  # [B, E]
        image_features, outputs = self.encode_prompted_image(images, text_features, zero_shot_image)
        image_features = F.normalize(image_features, dim=-1)
        text_features = F.normalize(text_features, dim=-1)
        scale = self.logit_scale.exp()
        outputs["logits"] = scale * image_features @ text_features.t()
        if self.training:
            outputs["text_guidance_logits"] = scale * zero_shot_image.to(text_features.dtype) @ text_features.t()
            outputs["visual_guidance_logits"] = scale * image_features @ self.template_text_features.t()
        return outputs


def guidance_loss(outputs, labels, epoch, guidance_epochs, guidance_weight):
    """DPT's general-knowledge guidance loss (README.md, "DPT"); returns (loss, components).

    epoch < guidance_epochs: CE(text_guidance) + CE(visual_guidance) + guidance_weight * CE(logits);
    afterwards CE(logits). The components always report all three cross-entropies.
    """
    ce_logits = F.cross_entropy(outputs["logits"], labels)
    ce_text = F.cross_entropy(outputs["text_guidance_logits"], labels)
    ce_visual = F.cross_entropy(outputs["visual_guidance_logits"], labels)
    components = {
        "ce_logits": ce_logits.detach(),
        "ce_text_guidance": ce_text.detach(),
        "ce_visual_guidance": ce_visual.detach(),
    }
    if epoch >= guidance_epochs:
        return ce_logits, components
    return ce_text + ce_visual + guidance_weight * ce_logits, components


@TRAINER_REGISTRY.register()
class VLP(ClipPromptTrainer):
    """Text context + deep visual prompts in every block, trained with the guidance loss (TRAINER.VLP).

    The text context has its own optimiser (TEXT_LR, TEXT_WARMUP_EPOCH); the visual prompts use OPTIM.
    """

    config_node = "VLP"
    weight_options = ("N_CTX", "CSC", "CLASS_TOKEN_POSITION", "VPT_N_CTX")
    requires_vit = True
    class_dependent_keys = ("token_prefix", "token_suffix")

    def check_method_cfg(self, node):
        name = f"TRAINER.{self.config_node}"
        if node.VPT_N_CTX < 1:
            raise UserError(f"{name}.VPT_N_CTX (visual prompt tokens) must be >= 1, got {node.VPT_N_CTX}")
        if node.N_CTX < 1 and not node.CTX_INIT:
            raise UserError(f"{name}.N_CTX must be >= 1, got {node.N_CTX}")
        if node.C_PRE < 0 or node.TEXT_LR <= 0 or node.TEXT_WARMUP_EPOCH < 0:
            raise UserError(
                f"{name}.C_PRE and TEXT_WARMUP_EPOCH must be >= 0 and TEXT_LR > 0; got {node.C_PRE}, "
                f"{node.TEXT_WARMUP_EPOCH}, {node.TEXT_LR}"
            )

    def vlp_model_options(self):
        """VLPCLIP's keyword arguments from TRAINER.<config_node> and the dataset's template."""
        node = self.method_cfg
        return {
            "template": self.template,
            "n_ctx": node.N_CTX,
            "ctx_init": node.CTX_INIT,
            "csc": node.CSC,
            "class_token_position": node.CLASS_TOKEN_POSITION,
            "n_visual_tokens": node.VPT_N_CTX,
        }

    def build_clip_model(self, clip_model, classnames):
        return VLPCLIP(clip_model, classnames, **self.vlp_model_options())

    def optim_cfg_for(self, module_name):
        """The text context: OPTIM with TEXT_LR and TEXT_WARMUP_EPOCH (hard-coded upstream: 0.002, 1
        epoch); the other modules: OPTIM."""
        if module_name != "prompt_learner":
            return self.cfg.OPTIM
        optim_cfg = self.cfg.OPTIM.clone()
        optim_cfg.defrost()
        optim_cfg.LR = self.method_cfg.TEXT_LR
        optim_cfg.WARMUP_EPOCH = self.method_cfg.TEXT_WARMUP_EPOCH
        optim_cfg.freeze()
        return optim_cfg

    def compute_loss(self, outputs, labels):
        node = self.method_cfg
        return guidance_loss(outputs, labels, self.epoch, node.C_PRE, node.GUIDANCE_WEIGHT)
