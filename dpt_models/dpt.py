"""DPT: dual-modality prompt tuning = CoOp text prompts + deep visual prompts + class-aware visual prompts.

Xing et al., "Dual Modality Prompt Tuning for Vision-Language Pre-Trained Model", IEEE TMM 2023
(arXiv 2208.08340); reference implementation github.com/fanrena/DPT (`trainers/DPT.py`); the method in
short: docs/methods/dpt.md. Our default configuration computes the same function as that code; its
defects we fix are listed in docs/fidelity.md, "What we fixed in the reference code" (notably: the
auxiliary loss is 0, not NaN, when no label is among the top K classes).

Blocks 0..BOTTOMLIMIT-2 of the ViT get ordinary deep visual prompts; blocks BOTTOMLIMIT-1..depth-1 get
class-aware prompts (`cavpt.py`) generated from the learned text features of the K = min(CPN, C)
classes that the frozen zero-shot CLIP ranks highest for the image. Each class-aware prompt also
predicts the class through an auxiliary classifier, trained with weight ALPHA on the prompts whose
selected class is the label. The loss adds that term to VLP's guidance loss (`vlp.py`).
"""
import torch
import torch.nn.functional as F

from .cavpt import ClassAwarePrompts
from .visual import PromptedViT, block_attention_weights
from .vlp import VLPCLIP


class DPTCLIP(VLPCLIP):
    """VLP's model with class-aware visual prompts in the top blocks.

    Args (keyword only; any other keyword goes to VLPCLIP: template, n_ctx, ..., n_visual_tokens):
        n_class_aware_blocks: the top blocks (1..depth) that get class-aware prompts; the ones below
            get deep prompts.
        n_class_prompts: CPN; K = min(CPN, C) classes are selected per image.
        n_extra_tokens, attn_dim: CAVPT's learnable key/value tokens and its query/key dimension.

    Outputs (`forward`, besides VLP's): `aux_logits` [L_ca, K, B, C] (one entry per class-aware block)
    and `class_indices` [B, K] (the selected classes, best first). `forward(images, return_attention=True)`
    adds where the model looks (dpt-visualize draws it), N = 1 + patches:
        `cavpt_attention` [L_ca, B, K, N]: each class-aware block's prompt attention over CLS + patches
            (renormalised without CAVPT's extra tokens);
        `cls_attention` [B, N]: the CLS token's attention in the last block over CLS + patches (heads
            averaged, renormalised without the prompts);
        `selector_logits` [B, C]: the frozen zero-shot classifier's logits that selected the classes.
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
    def selector_logits(self, zero_shot_image_features):
        """Logits [B, C] of the frozen zero-shot classifier (template text features) that selects the classes."""
        return self.logit_scale.exp() * zero_shot_image_features @ self.template_text_features.t()

    def select_classes(self, zero_shot_image_features):
        """Top-K classes [B, K] of the frozen zero-shot classifier, best first."""
        return self.selector_logits(zero_shot_image_features).topk(self.n_class_prompts, dim=-1).indices

    def encode_prompted_image(self, images, text_features, zero_shot_image_features, return_attention=False):
        """Image features [B, E] with deep prompts below BOTTOMLIMIT and class-aware prompts above.

        text_features [C, E]: the learned (unnormalised, not detached) text features that feed CAVPT.
        return_attention: also output the attention maps and selector logits (class docstring).
        """
        selector_logits = self.selector_logits(zero_shot_image_features)  # [B, C]
        class_indices = selector_logits.topk(self.n_class_prompts, dim=-1).indices  # [B, K]
        selected_text = text_features[class_indices]  # [B, K, E]
        deep_prompts = self.visual_prompts()  # [BL - 1, P, D]
        n_deep = deep_prompts.shape[0]
        aux_logits, cavpt_attention = [], []
        x = self.image_encoder.embed(images)  # [N, B, D]
        n_tokens = x.shape[0]
        for index, block in enumerate(self.image_encoder.blocks):
            last = index == self.image_encoder.depth - 1
            if index < n_deep:
                prompts = deep_prompts[index]
            else:
                generator = self.cavpt[index - n_deep]
                prompts, block_aux_logits = generator(x, selected_text)  # [K, B, D], [K, B, C]
                aux_logits.append(block_aux_logits)
                if return_attention:
                    cavpt_attention.append(generator.attention_weights(x, selected_text)[..., :n_tokens])  # [B, K, N]
            if return_attention and last:
                cls_attention = block_attention_weights(block, x, prompts)[:, 0, :n_tokens]  # [B, N]
            x = self.image_encoder.run_block(block, x, prompts, cls_only=last)
        outputs = {"aux_logits": torch.stack(aux_logits), "class_indices": class_indices}
        if return_attention:
            cavpt_attention = torch.stack(cavpt_attention)  # [L_ca, B, K, N]
            outputs.update(
                cavpt_attention=cavpt_attention / cavpt_attention.sum(dim=-1, keepdim=True),
                cls_attention=cls_attention / cls_attention.sum(dim=-1, keepdim=True),
                selector_logits=selector_logits,
            )
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


