"""The ProGrad trainer (model: `dpt_models.prograd`): CoOp's prompts, updated along the cross-entropy
gradient made to agree with the zero-shot CLIP's (`dpt_models.prograd.project_conflicting`)."""
import torch
import torch.distributed as dist
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY
from dassl_compat.errors import UserError
from dpt_models.prograd import ProGradCLIP, distillation_loss, prograd_template, project_conflicting, template_context
from dpt_runs.options import non_negative_float, positive_float

from .base import is_distributed
from .coop import CoOp, coop_config_node, coop_options


def extend_cfg(cfg):
    """TRAINER.PROGRAD: CoOp's options, the context initialised from the template, T and LAMBDA."""
    node = coop_config_node()  # N_CTX, CSC, CLASS_TOKEN_POSITION, PREC
    node.CTX_INIT = True  # True: the template's words after N_CTX - k zero vectors; False: random
    node.T = 1.0  # distillation temperature (LOSS.T upstream)
    node.LAMBDA = 1.0  # how much of the conflicting component is removed (LOSS.LAMBDA upstream)
    cfg.TRAINER.PROGRAD = node


# T: the distillation temperature; LAMBDA: how much of the conflicting component is removed
OPTIONS = {"TRAINER.PROGRAD": {**coop_options(), "T": positive_float, "LAMBDA": non_negative_float}}


@TRAINER_REGISTRY.register()
class ProGrad(CoOp):
    """Trains CoOp's context with ProGrad's prompt-aligned gradient step (TRAINER.PROGRAD)."""

    config_node = "PROGRAD"
    default_config = "ProGrad/vit_b16_ep100"
    model_class = ProGradCLIP
    in_plugin = True

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        node = cfg.TRAINER.PROGRAD
        if node.CTX_INIT:
            try:
                template_context(prograd_template(cfg.DATASET.NAME), node.N_CTX)
            except ValueError as err:
                raise UserError(f"TRAINER.PROGRAD.CTX_INIT True: {err}; raise TRAINER.PROGRAD.N_CTX or set "
                                "TRAINER.PROGRAD.CTX_INIT False (random context)") from err

    def build_clip_model(self, clip_model, classnames):
        node = self.method_cfg
        template = prograd_template(self.cfg.DATASET.NAME)
        print(f"Zero-shot template: {template!r}")
        return ProGradCLIP(clip_model, classnames, template, node.N_CTX, node.CTX_INIT, node.CSC,
                           node.CLASS_TOKEN_POSITION)

    def compute_loss(self, outputs, labels):
        """The cross-entropy (the loss logged and stepped) and, in the components with its graph for
        `backward_and_update`, the distillation loss to the zero-shot logits."""
        ce_logits = F.cross_entropy(outputs["logits"], labels)
        distill = distillation_loss(outputs["logits"], outputs["zero_shot_logits"], self.method_cfg.T)
        return ce_logits, {"ce_logits": ce_logits.detach(), "kl_zero_shot": distill}

    def backward_and_update(self, loss, components):
        """The authors' `prograd_backward_and_update`: per parameter, the cross-entropy gradient with
        LAMBDA of its component along the distillation gradient removed where the two conflict.

        Both gradients go through the GradScaler's scale (the projection is linear in the first and
        depends only on the direction of the second, so it commutes with the scale); under DDP the
        distillation gradient is averaged over the processes as DDP averages the other one.
        """
        names = self.get_model_names()
        self.model_zero_grad(names)
        self.detect_anomaly(loss)
        scaler = self.grad_scaler
        params = [p for name in names for p in self._models[name].parameters() if p.requires_grad]
        general_grads = torch.autograd.grad(scaler.scale(components["kl_zero_shot"]), params, retain_graph=True)
        if is_distributed():
            for grad in general_grads:
                dist.all_reduce(grad)
                grad /= dist.get_world_size()
        scaler.scale(loss).backward()
        with torch.no_grad():
            for param, general_grad in zip(params, general_grads):
                if not torch.isfinite(general_grad).all():
                    # an overflow of the scaled distillation gradient skips the step, as one of the other
                    param.grad = general_grad
                else:
                    param.grad = project_conflicting(param.grad, general_grad, self.method_cfg.LAMBDA)
        self.step_optimizers(names)
