"""The zero-shot CLIP trainers (ZeroshotCLIP, ZeroshotCLIP2) and their config node (TRAINER.ZSCLIP); the
model is `dpt_models.zsclip.TemplateCLIP`."""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dpt_models.templates import ensemble_templates
from dpt_models.zsclip import TemplateCLIP

from .base import ClipPromptTrainer, precision


def extend_cfg(cfg):
    """TRAINER.ZSCLIP: only the precision of the image encoder."""
    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.PREC = "fp32"


OPTIONS = {"TRAINER.ZSCLIP": {"PREC": precision}}


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipPromptTrainer):
    """CLIP with fixed text features of the dataset's template; nothing is trained."""

    config_node = "ZSCLIP"
    model_class = TemplateCLIP
    default_config = "CoOp/vit_b16"  # CoOp's configs: backbone and input settings
    shares_config_files_with = ("CoOp",)  # zero-shot CLIP runs with CoOp's config files, as in CoOp's scripts
    eval_only = True

    def templates(self):
        return [self.template]

    def build_clip_model(self, clip_model, classnames):
        templates = self.templates()
        for template in templates:
            print(f"Prompt template: {template!r}")
        return self.model_class(clip_model, classnames, templates)

    def train(self):
        raise RuntimeError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Zero-shot CLIP with the mean of the seven ImageNet templates (+ the dataset's own)."""

    benchmarked = False  # the same model as ZeroshotCLIP's

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
