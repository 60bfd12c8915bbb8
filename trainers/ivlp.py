"""IVLP trainer: independent deep prompts in both towers (TRAINER.IVLP); the model is `dpt_models.ivlp`.

Khattak et al., "MaPLe: Multi-modal Prompt Learning" (CVPR 2023), its independent V-L prompting
baseline; reference implementation github.com/muzairkhattak/multimodal-prompt-learning
(`trainers/independentVL.py`); options and their upstream names: docs/methods/ivlp.md.
"""
from yacs.config import CfgNode as CN

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.errors import UserError
from dpt_models.ivlp import IVLPCLIP
from dpt_runs.options import non_negative_int, positive_int

from .base import ClipPromptTrainer, precision


def ivlp_config_node():
    """IVLP's options, with the names and the base-to-new values of the authors' configs (PromptSRC has them too)."""
    node = CN()
    node.N_CTX_TEXT = 2  # context tokens (with CTX_INIT and N_CTX_TEXT <= 4: its first N_CTX_TEXT tokens)
    node.N_CTX_VISION = 2  # image prompt tokens per block
    node.CTX_INIT = "a photo of a"
    node.PROMPT_DEPTH_TEXT = 12  # text blocks with prompts (1: the context only)
    node.PROMPT_DEPTH_VISION = 12  # image blocks with prompts (0: none)
    node.PREC = "fp16"
    return node


def extend_cfg(cfg):
    """TRAINER.IVLP."""
    cfg.TRAINER.IVLP = ivlp_config_node()


def ivlp_options():
    """The rules of `ivlp_config_node`'s keys (dpt_runs.options)."""
    return {
        "N_CTX_TEXT": positive_int,
        "N_CTX_VISION": non_negative_int,  # >= 1 when PROMPT_DEPTH_VISION is not 0 (check_method_cfg)
        "PROMPT_DEPTH_TEXT": positive_int,
        "PROMPT_DEPTH_VISION": non_negative_int,
        "PREC": precision,
    }


OPTIONS = {"TRAINER.IVLP": ivlp_options()}


class DeepPromptTrainer(ClipPromptTrainer):
    """The skeleton of the models with deep prompts in both towers (a ViT; depths checked on the loaded CLIP)."""

    requires_vit = True
    class_dependent_keys = ("token_prefix", "token_suffix")

    def build_clip_model(self, clip_model, classnames):
        try:
            return self.model_class(clip_model, classnames, **self.model_options())
        except ValueError as error:  # a depth or token count that the loaded CLIP cannot take
            raise UserError(f"TRAINER.{self.config_node}: {error}") from error

    def model_options(self):
        """The model's keyword arguments from TRAINER.<config_node>."""
        raise NotImplementedError


@TRAINER_REGISTRY.register()
class IVLP(DeepPromptTrainer):
    """Independent vision-language prompting (TRAINER.IVLP): cross-entropy of the prompted logits."""

    config_node = "IVLP"
    default_config = "IVLP/vit_b16_c2_ep5_batch4_2+2ctx"
    model_class = IVLPCLIP
    weight_options = ("N_CTX_TEXT", "N_CTX_VISION", "PROMPT_DEPTH_TEXT", "PROMPT_DEPTH_VISION")
    in_plugin = True

    def check_method_cfg(self, node):
        if node.PROMPT_DEPTH_VISION and node.N_CTX_VISION < 1:
            name = f"TRAINER.{self.config_node}"
            raise UserError(f"{name}.N_CTX_VISION must be >= 1 when {name}.PROMPT_DEPTH_VISION is not 0, got "
                            f"{node.N_CTX_VISION} (set PROMPT_DEPTH_VISION 0 for no image prompts)")

    def model_options(self):
        node = self.method_cfg
        return {
            "n_ctx_text": node.N_CTX_TEXT,
            "n_ctx_vision": node.N_CTX_VISION,
            "depth_text": node.PROMPT_DEPTH_TEXT,
            "depth_vision": node.PROMPT_DEPTH_VISION,
            "ctx_init": node.CTX_INIT,
        }
