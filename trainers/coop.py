"""CoOp's trainer and config node (TRAINER.COOP); the model is `dpt_models.coop.CoOpCLIP`."""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dpt_models.coop import CoOpCLIP
from dpt_runs.options import choice, non_negative_int

from .base import ClipPromptTrainer, precision


def coop_config_node():
    """CoOp's options with the names and defaults of the CoOp repository (VLP and DPT have them too)."""
    node = CN()
    node.N_CTX = 16  # context vectors M
    node.CSC = False  # class-specific context ([C, M, W] instead of [M, W])
    node.CTX_INIT = ""  # initial context words ("a photo of a"); sets N_CTX to their number
    node.CLASS_TOKEN_POSITION = "end"  # end, middle or front
    node.PREC = "fp16"
    return node


def extend_cfg(cfg):
    """TRAINER.COOP."""
    cfg.TRAINER.COOP = coop_config_node()


def coop_options():
    """The rules of `coop_config_node`'s keys (dpt_runs.options)."""
    return {
        "N_CTX": non_negative_int,  # 0 only with CTX_INIT, whose words set it
        "CLASS_TOKEN_POSITION": choice("end", "middle", "front"),
        "PREC": precision,
    }


OPTIONS = {"TRAINER.COOP": coop_options()}


@TRAINER_REGISTRY.register()
class CoOp(ClipPromptTrainer):
    """Trains only the prompt learner's context with cross-entropy (TRAINER.COOP)."""

    config_node = "COOP"
    model_class = CoOpCLIP
    default_config = "CoOp/vit_b16"
    class_dependent_keys = ("token_prefix", "token_suffix")
    weight_options = ("N_CTX", "CSC", "CLASS_TOKEN_POSITION")

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        return self.model_class(clip_model, classnames, node.N_CTX, node.CTX_INIT, node.CSC, node.CLASS_TOKEN_POSITION)
