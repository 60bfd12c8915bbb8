"""The KgCoOp trainer (model: `dpt_models.kgcoop`): CoOp's prompts with the knowledge-guided loss
CE + W * (1 - mean cos(learned text features, template text features))."""
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY
from dpt_models.kgcoop import KgCoOpCLIP, kgcoop_template
from dpt_runs.options import non_negative_float

from .coop import CoOp, coop_config_node, coop_options


def extend_cfg(cfg):
    """TRAINER.KGCOOP: CoOp's options with the authors' prompt (4 tokens from "a photo of a") and W."""
    node = coop_config_node()  # N_CTX, CSC, CTX_INIT, CLASS_TOKEN_POSITION, PREC
    node.CTX_INIT = "a photo of a"  # the authors' CTX_INIT True always means these words
    node.N_CTX = 4  # ignored while CTX_INIT is set (its number of words)
    node.W = 8.0  # weight of the knowledge-guided distance (their scripts' value; TRAINER.COOP.W upstream)
    cfg.TRAINER.KGCOOP = node


OPTIONS = {"TRAINER.KGCOOP": {**coop_options(), "W": non_negative_float}}  # W: the distance's weight


@TRAINER_REGISTRY.register()
class KgCoOp(CoOp):
    """Trains CoOp's context with CE + W * knowledge-guided distance (TRAINER.KGCOOP)."""

    config_node = "KGCOOP"
    default_config = "KgCoOp/vit_b16_ep100_ctxv1"
    model_class = KgCoOpCLIP
    in_plugin = True

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        template = kgcoop_template(self.cfg.DATASET.NAME)
        print(f"Template of the knowledge-guided text features: {template!r}")
        return KgCoOpCLIP(clip_model, classnames, template, node.N_CTX, node.CTX_INIT, node.CSC,
                          node.CLASS_TOKEN_POSITION)

    def compute_loss(self, outputs, labels):
        ce_logits = F.cross_entropy(outputs["logits"], labels)
        distance = outputs["knowledge_distance"]
        return ce_logits + self.method_cfg.W * distance, {"ce_logits": ce_logits.detach(),
                                                          "kg_distance": distance.detach()}
