"""MaPLe trainer (TRAINER.MAPLE): coupled prompts in both towers; the model is `dpt_models.maple`.

Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023); reference implementation
github.com/muzairkhattak/multimodal-prompt-learning (`trainers/maple.py`); options: docs/methods/maple.md.
"""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dpt_models.maple import MaPLeCLIP
from dpt_runs.options import positive_int

from .base import precision
from .ivlp import DeepPromptTrainer


def extend_cfg(cfg):
    """TRAINER.MAPLE, with the names and the base-to-new values of the authors' config."""
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2  # prompt tokens per block (with CTX_INIT and N_CTX <= 4: its first N_CTX tokens)
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9  # blocks of each tower with prompts (J)
    cfg.TRAINER.MAPLE.PREC = "fp16"


OPTIONS = {"TRAINER.MAPLE": {"N_CTX": positive_int, "PROMPT_DEPTH": positive_int, "PREC": precision}}


@TRAINER_REGISTRY.register()
class MaPLe(DeepPromptTrainer):
    """Multi-modal prompt learning (TRAINER.MAPLE): cross-entropy of the prompted logits."""

    config_node = "MAPLE"
    default_config = "MaPLe/vit_b16_c2_ep5_batch4_2ctx"
    model_class = MaPLeCLIP
    weight_options = ("N_CTX", "PROMPT_DEPTH")
    in_plugin = True

    def model_options(self):
        node = self.method_cfg
        return {"n_ctx": node.N_CTX, "depth": node.PROMPT_DEPTH, "ctx_init": node.CTX_INIT}
