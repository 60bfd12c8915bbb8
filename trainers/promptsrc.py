"""PromptSRC trainer (TRAINER.PROMPTSRC): IVLP's prompts, the self-consistency loss and Gaussian prompt
aggregation over epochs; the model and both mechanisms are in `dpt_models.promptsrc`.

Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation without Forgetting" (ICCV
2023); reference implementation github.com/muzairkhattak/PromptSRC (`trainers/promptsrc.py`);
options: docs/methods/promptsrc.md.
"""
from dassl_compat import TRAINER_REGISTRY
from dpt_models.promptsrc import PromptAggregate, PromptSRCCLIP, gaussian_epoch_weights, self_consistency_loss
from dpt_runs.options import non_negative_float, number, positive_float

from .ivlp import IVLP, ivlp_config_node, ivlp_options


def extend_cfg(cfg):
    """TRAINER.PROMPTSRC: IVLP's options, the losses' weights and GPA's Gaussian (authors' base-to-new values)."""
    node = ivlp_config_node()
    node.N_CTX_TEXT = 4
    node.N_CTX_VISION = 4
    node.PROMPT_DEPTH_TEXT = 9
    node.PROMPT_DEPTH_VISION = 9
    # Integers, as in the authors' code (so that their config files load unchanged).
    node.TEXT_LOSS_WEIGHT = 25  # L1 between prompted and frozen text features
    node.IMAGE_LOSS_WEIGHT = 10  # L1 between prompted and frozen image features
    node.GPA_MEAN = 15  # mean and standard deviation (in epochs, 1-based) of GPA's epoch weights
    node.GPA_STD = 1
    cfg.TRAINER.PROMPTSRC = node


OPTIONS = {
    "TRAINER.PROMPTSRC": {
        **ivlp_options(),
        "TEXT_LOSS_WEIGHT": non_negative_float,
        "IMAGE_LOSS_WEIGHT": non_negative_float,
        "GPA_MEAN": number,
        "GPA_STD": positive_float,
    }
}


@TRAINER_REGISTRY.register()
class PromptSRC(IVLP):
    """IVLP trained with PromptSRC's self-consistency loss; after the last epoch the trained parameters
    are their Gaussian-weighted average over the epochs (GPA), which is what is saved and tested.
    The running average is part of every epoch's resumable state."""

    config_node = "PROMPTSRC"
    default_config = "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx"
    model_class = PromptSRCCLIP

    def build_model(self):
        super().build_model()
        node = self.method_cfg
        self.prompt_aggregate = PromptAggregate(gaussian_epoch_weights(self.max_epoch, node.GPA_MEAN, node.GPA_STD))

    def compute_loss(self, outputs, labels):
        node = self.method_cfg
        return self_consistency_loss(outputs, labels, node.TEXT_LOSS_WEIGHT, node.IMAGE_LOSS_WEIGHT)

    def trained_parameters(self):
        """{name: parameter} of every registered module's trainable parameters."""
        return {f"{name}.{key}": param for name in self.get_model_names()
                for key, param in self._models[name].named_parameters() if param.requires_grad}

    def after_epoch(self):
        """Add this epoch's parameters to GPA; after the last epoch load the aggregate; then Dassl's
        after_epoch (checkpoint, evaluation)."""
        parameters = self.trained_parameters()
        self.prompt_aggregate.add(self.epoch, parameters)
        if self.epoch + 1 == self.max_epoch:
            print("GPA: the trained parameters are now their Gaussian-weighted average over the epochs")
            for name, param in parameters.items():
                param.data.copy_(self.prompt_aggregate.sum[name])
        super().after_epoch()

    def resume_state(self):
        return {**super().resume_state(), "prompt_aggregate": self.prompt_aggregate.state_dict()}

    def restore_resume_state(self, state):
        super().restore_resume_state(state)
        self.prompt_aggregate.load_state_dict(state["prompt_aggregate"])
