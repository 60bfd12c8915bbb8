"""DPT's trainer and config node (TRAINER.DPT); the model and its auxiliary loss are in `dpt_models.dpt`."""
from dassl_compat import TRAINER_REGISTRY
from dpt_models.dpt import DPTCLIP, auxiliary_loss
from dpt_models.errors import UserError
from dpt_models.visual import PromptedViT
from dpt_models.vlp import guidance_loss
from dpt_runs.options import non_negative_float, non_negative_int, positive_int

from .vlp import VLP, vlp_config_node, vlp_options


def extend_cfg(cfg):
    """TRAINER.DPT: VLP's options plus the class-aware prompts' (reference run script defaults)."""
    node = vlp_config_node()
    node.BOTTOMLIMIT = 12  # blocks BOTTOMLIMIT-1..depth-1 are class-aware (1 = all of them)
    node.CPN = 10  # class prompts per class-aware block: the top-K classes, K = min(CPN, C)
    node.ALPHA = 0.3  # weight of CAVPT's auxiliary loss
    node.CAVPT_EXTRA_TOKENS = 10  # learnable key/value tokens of the CAVPT attention
    node.CAVPT_ATTN_DIM = 32  # query/key dimension of the CAVPT attention
    cfg.TRAINER.DPT = node


OPTIONS = {
    "TRAINER.DPT": {
        **vlp_options(),
        "BOTTOMLIMIT": positive_int,  # and <= the ViT's depth, checked when CLIP is loaded
        "CPN": positive_int,
        "ALPHA": non_negative_float,
        "CAVPT_EXTRA_TOKENS": non_negative_int,
        "CAVPT_ATTN_DIM": positive_int,
    }
}


@TRAINER_REGISTRY.register()
class DPT(VLP):
    """Dual-modality prompt tuning (TRAINER.DPT): VLP's trainer plus CAVPT and its auxiliary loss.

    CAVPT trains with OPTIM like the visual prompts. Its auxiliary classifier is per class, so it is
    dropped when prompts are loaded for another class set (as are the prompt learner's class buffers).
    """

    config_node = "DPT"
    model_class = DPTCLIP
    default_config = "DPT/vit_b16"
    class_dependent_keys = ("token_prefix", "token_suffix", "aux_classifier")
    weight_options = VLP.weight_options + ("BOTTOMLIMIT", "CPN", "CAVPT_EXTRA_TOKENS", "CAVPT_ATTN_DIM")

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        depth = PromptedViT(clip_model.visual).depth
        if not 1 <= node.BOTTOMLIMIT <= depth:  # known only now: the depth is the loaded CLIP's
            raise UserError(
                f"TRAINER.{self.config_node}.BOTTOMLIMIT must be in 1..{depth} (the ViT's depth) so that at least "
                f"one block is class-aware, got {node.BOTTOMLIMIT}"
            )
        return self.model_class(
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
