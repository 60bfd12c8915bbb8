"""CoCoOp's trainer and config node (TRAINER.COCOOP); the model is `dpt_models.cocoop.CoCoOpCLIP`."""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dpt_models.cocoop import CoCoOpCLIP
from dpt_runs.options import non_negative_int

from .base import precision
from .coop import CoOp


def extend_cfg(cfg):
    """TRAINER.COCOOP, with the names and defaults of the CoOp repository."""
    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"


OPTIONS = {"TRAINER.COCOOP": {"N_CTX": non_negative_int, "PREC": precision}}


@TRAINER_REGISTRY.register()
class CoCoOp(CoOp):
    """Trains the context and the meta-net (the prompt learner) with cross-entropy (TRAINER.COCOOP)."""

    config_node = "COCOOP"
    model_class = CoCoOpCLIP
    default_config = "CoCoOp/vit_b16_c4_ep10_batch1"
    weight_options = ("N_CTX",)

    def build_clip_model(self, clip_model, classnames):
        return self.model_class(clip_model, classnames, self.method_cfg.N_CTX, self.method_cfg.CTX_INIT)
