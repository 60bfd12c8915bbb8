"""VPT's trainer and config node (TRAINER.VPT); the model is `dpt_models.vpt.VPTCLIP`."""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dpt_models.vpt import VPTCLIP
from dpt_runs.options import positive_int

from .base import ClipPromptTrainer, precision


def extend_cfg(cfg):
    """TRAINER.VPT (the reference run script's values as defaults)."""
    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX = 10  # deep visual prompt tokens per block
    cfg.TRAINER.VPT.PREC = "fp16"


OPTIONS = {"TRAINER.VPT": {"N_CTX": positive_int, "PREC": precision}}


@TRAINER_REGISTRY.register()
class VPT(ClipPromptTrainer):
    """Deep visual prompt tuning of CLIP's ViT with the zero-shot template classifier (TRAINER.VPT)."""

    config_node = "VPT"
    model_class = VPTCLIP
    default_config = "VPT/vit_b16"
    weight_options = ("N_CTX",)
    requires_vit = True
    in_plugin = True

    def build_clip_model(self, clip_model, classnames):
        return self.model_class(clip_model, classnames, self.template, self.method_cfg.N_CTX)
