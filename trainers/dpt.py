"""DPT: dual-modality prompt tuning = CoOp text prompts + deep visual prompts + class-aware visual prompts.

Xing et al., "Dual Modality Prompt Tuning for Vision-Language Pre-Trained Model", IEEE TMM 2023
(arXiv 2208.08340); reference implementation github.com/fanrena/DPT (`trainers/DPT.py`); the method in
short: README.md, "DPT". Our default configuration computes the same function as that code; its
defects we fix are listed in the README, "What we fixed in the reference code" (notably: the
auxiliary loss is 0, not NaN, when no label is among the top K classes).

Blocks 0..BOTTOMLIMIT-2 of the ViT get ordinary deep visual prompts; blocks BOTTOMLIMIT-1..depth-1 get
class-aware prompts (`cavpt.py`) generated from the learned text features of the K = min(CPN, C)
classes that the frozen zero-shot CLIP ranks highest for the image. Each class-aware prompt also
predicts the class through an auxiliary classifier, trained with weight ALPHA on the prompts whose
selected class is the label. The loss adds that term to VLP's guidance loss (`vlp.py`).
"""
import torch
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.errors import UserError

from .cavpt import ClassAwarePrompts
from .visual import PromptedViT
from .vlp import VLP, VLPCLIP, guidance_loss, vlp_config_node


def extend_cfg(cfg):
    """TRAINER.DPT: VLP's options plus the class-aware prompts' (reference run script defaults)."""
    node = vlp_config_node()
    node.BOTTOMLIMIT = 12  # blocks BOTTOMLIMIT-1..depth-1 are class-aware (1 = all of them)
    node.CPN = 10  # class prompts per class-aware block: the top-K classes, K = min(CPN, C)
    node.ALPHA = 0.3  # weight of CAVPT's auxiliary loss
    node.CAVPT_EXTRA_TOKENS = 10  # learnable key/value tokens of the CAVPT attention
    node.CAVPT_ATTN_DIM = 32  # query/key dimension of the CAVPT attention
    cfg.TRAINER.DPT = node


class DPTCLIP(VLPCLIP):
    """VLP's model with class-aware visual prompts in the top blocks.

    Args (keyword only; any other keyword goes to VLPCLIP: template, n_ctx, ..., n_visual_tokens):
        n_class_aware_blocks: the top blocks (1..depth) that get class-aware prompts; the ones below
            get deep prompts.
        n_class_prompts: CPN; K = min(CPN, C) classes are selected per image.
        n_extra_tokens, attn_dim: CAVPT's learnable key/value tokens and its query/key dimension.

    Outputs (`forward`, besides VLP's): `aux_logits` [L_ca, K, B, C] (one entry per class-aware block)
    and `class_indices` [B, K] (the selected classes, best first).
    """

    needs_zero_shot_image_at_inference = True

    def __init__(
        self,
        clip_model,
        classnames,
        *,
        n_class_aware_blocks=1,
        n_class_prompts=10,
        n_extra_tokens=10,
        attn_dim=32,
        **vlp_options,
    ):
        depth = PromptedViT(clip_model.visual).depth  # raises for a non-ViT backbone
        if not 1 <= n_class_aware_blocks <= depth:
            raise ValueError(
                f"n_class_aware_blocks must be in 1..{depth} (the ViT's depth), got {n_class_aware_blocks}"
            )
        super().__init__(clip_model, classnames, n_visual_blocks=depth - n_class_aware_blocks, **vlp_options)
        self.n_class_prompts = min(n_class_prompts, len(classnames))
        self.cavpt = ClassAwarePrompts(
            n_class_aware_blocks,
            self.image_encoder.output_dim,
            self.image_encoder.width,
            len(classnames),
            n_extra_tokens,
            attn_dim,
        )

    @torch.no_grad()
    def select_classes(self, zero_shot_image_features):
        """Top-K classes [B, K] of the frozen zero-shot classifier (template text features), best first."""
        logits = self.logit_scale.exp() * zero_shot_image_features @ self.template_text_features.t()
        return logits.topk(self.n_class_prompts, dim=-1).indices

    def encode_prompted_image(self, images, text_features, zero_shot_image_features):
        """Image features [B, E] with deep prompts below BOTTOMLIMIT and class-aware prompts above.

        text_features [C, E]: the learned (unnormalised, not detached) text features that feed CAVPT.
        """
        class_indices = self.select_classes(zero_shot_image_features)  # [B, K]
        selected_text = text_features[class_indices]  # [B, K, E]
        deep_prompts = self.visual_prompts()  # [BL - 1, P, D]
        n_deep = deep_prompts.shape[0]
        aux_logits = []
        x = self.image_encoder.embed(images)  # [N, B, D]
        for index, block in enumerate(self.image_encoder.blocks):
            if index < n_deep:
                prompts = deep_prompts[index]
            else:
                prompts, block_aux_logits = self.cavpt[index - n_deep](x, selected_text)  # [K, B, D], [K, B, C]
                aux_logits.append(block_aux_logits)
            x = self.image_encoder.run_block(block, x, prompts, cls_only=index == self.image_encoder.depth - 1)
        outputs = {"aux_logits": torch.stack(aux_logits), "class_indices": class_indices}
        return self.image_encoder.project(x), outputs


def auxiliary_loss(aux_logits, class_indices, labels):
    """CAVPT's auxiliary loss: C-way CE of the prompts whose selected class is the label.

    aux_logits [L, K, B, C], class_indices [B, K], labels [B]. The mean is over the kept
    (block, sample, prompt) rows; with none kept the loss is 0 (upstream: NaN), still attached to the
    graph. Returns (loss, number of kept rows).
    """
    n_blocks, n_prompts, batch_size, _ = aux_logits.shape
    rows = aux_logits.permute(2, 0, 1, 3)  # [B, L, K, C]
    keep = (class_indices == labels.unsqueeze(1)).unsqueeze(1).expand(-1, n_blocks, -1)  # [B, L, K]
    kept_logits = rows[keep]  # [R, C]
    if kept_logits.shape[0] == 0:
        return kept_logits.sum(), 0
    kept_labels = labels.view(batch_size, 1, 1).expand(-1, n_blocks, n_prompts)[keep]
    return F.cross_entropy(kept_logits, kept_labels), kept_logits.shape[0]


@TRAINER_REGISTRY.register()
class DPT(VLP):
    """Dual-modality prompt tuning (TRAINER.DPT): VLP's trainer plus CAVPT and its auxiliary loss.

    CAVPT trains with OPTIM like the visual prompts. Its auxiliary classifier is per class, so it is
    dropped when prompts are loaded for another class set (as are the prompt learner's class buffers).
    """

    config_node = "DPT"
    weight_options = VLP.weight_options + ("BOTTOMLIMIT", "CPN", "CAVPT_EXTRA_TOKENS", "CAVPT_ATTN_DIM")
    class_dependent_keys = ("token_prefix", "token_suffix", "aux_classifier")

    def check_method_cfg(self, node):
        super().check_method_cfg(node)
        if node.CPN < 1 or node.CAVPT_EXTRA_TOKENS < 0 or node.CAVPT_ATTN_DIM < 1:
            raise UserError(
                f"TRAINER.DPT.CPN must be >= 1, CAVPT_EXTRA_TOKENS >= 0 and CAVPT_ATTN_DIM >= 1; got {node.CPN}, "
                f"{node.CAVPT_EXTRA_TOKENS}, {node.CAVPT_ATTN_DIM}"
            )

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        depth = PromptedViT(clip_model.visual).depth
        if not 1 <= node.BOTTOMLIMIT <= depth:  # known only now: the depth is the loaded CLIP's
            raise UserError(
                f"TRAINER.{self.config_node}.BOTTOMLIMIT must be in 1..{depth} (the ViT's depth) so that at least "
                f"one block is class-aware, got {node.BOTTOMLIMIT}"
            )
        return DPTCLIP(
            clip_model,
            classnames,
            n_class_aware_blocks=depth - (node.BOTTOMLIMIT - 1),  # blocks BOTTOMLIMIT-1..depth-1
            n_class_prompts=node.CPN,
            n_extra_tokens=node.CAVPT_EXTRA_TOKENS,
            attn_dim=node.CAVPT_ATTN_DIM,
            **self.vlp_model_options(),
        )

    def compute_loss(self, outputs, labels):
        """VLP's guidance loss + ALPHA * auxiliary loss; returns (loss, components)."""
        node = self.method_cfg
        loss, components = guidance_loss(outputs, labels, self.epoch, node.C_PRE, node.GUIDANCE_WEIGHT)
        aux_loss, n_kept = self.auxiliary_loss(outputs, labels)
        components.update(aux_ce=aux_loss.detach(), aux_rows_kept=n_kept)
        return loss + node.ALPHA * aux_loss, components

    def auxiliary_loss(self, outputs, labels):
        """(loss, rows kept) of CAVPT's auxiliary classifier; override to change it."""
        return auxiliary_loss(outputs["aux_logits"], outputs["class_indices"], labels)
