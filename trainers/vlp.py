"""VLP's trainer and config node (TRAINER.VLP); the model and its guidance loss are in `dpt_models.vlp`."""
from dassl_compat import TRAINER_REGISTRY
from dpt_models.errors import UserError
from dpt_models.vlp import VLPCLIP, guidance_loss
from dpt_runs.options import non_negative_float, non_negative_int, positive_float, positive_int

from .base import ClipPromptTrainer
from .coop import coop_config_node, coop_options


def vlp_config_node():
    """VLP's options (DPT has them too). Defaults are the values of the reference run script
    (github.com/fanrena/DPT); values hard-coded there are keys here, with that value as default."""
    node = coop_config_node()  # N_CTX, CSC, CTX_INIT, CLASS_TOKEN_POSITION, PREC
    node.VPT_N_CTX = 10  # deep visual prompt tokens per block (upstream TRAINER.VPT.N_CTX)
    node.C_PRE = 30  # guidance epochs (upstream PRETRAIN.C): guidance loss while epoch < C_PRE
    node.GUIDANCE_WEIGHT = 0.1  # weight of CE(logits) during the guidance epochs
    node.TEXT_LR = 0.002  # learning rate of the text context (visual prompts use OPTIM.LR)
    node.TEXT_WARMUP_EPOCH = 1  # warmup epochs of the text context (visual: OPTIM.WARMUP_EPOCH)
    return node


def extend_cfg(cfg):
    """TRAINER.VLP."""
    cfg.TRAINER.VLP = vlp_config_node()


def vlp_options():
    """The rules of `vlp_config_node`'s keys (dpt_runs.options)."""
    return {
        **coop_options(),
        "VPT_N_CTX": positive_int,
        "C_PRE": non_negative_int,
        "GUIDANCE_WEIGHT": non_negative_float,
        "TEXT_LR": positive_float,
        "TEXT_WARMUP_EPOCH": non_negative_int,
    }


OPTIONS = {"TRAINER.VLP": vlp_options()}


@TRAINER_REGISTRY.register()
class VLP(ClipPromptTrainer):
    """Text context + deep visual prompts in every block, trained with the guidance loss (TRAINER.VLP).

    The text context has its own optimiser (TEXT_LR, TEXT_WARMUP_EPOCH); the visual prompts use OPTIM.
    """

    config_node = "VLP"
    model_class = VLPCLIP
    default_config = "VLP/vit_b16"
    requires_vit = True
    in_plugin = True
    class_dependent_keys = ("token_prefix", "token_suffix")
    weight_options = ("N_CTX", "CSC", "CLASS_TOKEN_POSITION", "VPT_N_CTX")

    def check_method_cfg(self, node):
        if node.N_CTX < 1 and not node.CTX_INIT:
            name = f"TRAINER.{self.config_node}"
            raise UserError(
                f"{name}.N_CTX must be >= 1 (text context tokens), got {node.N_CTX}: set {name}.N_CTX, or give "
                f"{name}.CTX_INIT (its words set the number)."
            )

    def vlp_model_options(self):
        """VLPCLIP's keyword arguments from TRAINER.<config_node> and the dataset's template."""
        node = self.method_cfg
        return {
            "template": self.template,
            "n_ctx": node.N_CTX,
            "ctx_init": node.CTX_INIT,
            "csc": node.CSC,
            "class_token_position": node.CLASS_TOKEN_POSITION,
            "n_visual_tokens": node.VPT_N_CTX,
        }

    def build_clip_model(self, clip_model, classnames):
        return self.model_class(clip_model, classnames, **self.vlp_model_options())

    def optim_cfg_for(self, module_name):
        """The text context: OPTIM with TEXT_LR and TEXT_WARMUP_EPOCH (hard-coded upstream: 0.002, 1
        epoch); the other modules: OPTIM."""
        if module_name != "prompt_learner":
            return self.cfg.OPTIM
        optim_cfg = self.cfg.OPTIM.clone()
        optim_cfg.defrost()
        optim_cfg.LR = self.method_cfg.TEXT_LR
        optim_cfg.WARMUP_EPOCH = self.method_cfg.TEXT_WARMUP_EPOCH
        optim_cfg.freeze()
        return optim_cfg

    def compute_loss(self, outputs, labels):
        node = self.method_cfg
        return guidance_loss(outputs, labels, self.epoch, node.C_PRE, node.GUIDANCE_WEIGHT)
