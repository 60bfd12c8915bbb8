"""CoOp (Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022): learnable text
context vectors in front of (or around) each class name; CLIP stays frozen.

Reference implementation: github.com/KaiyangZhou/CoOp (trainers/coop.py).
"""
import torch.nn as nn
import torch.nn.functional as F

from dassl_compat import (
    TRAINER_REGISTRY,
    build_lr_scheduler,
    build_optimizer,
    compute_accuracy,
    load_pretrained_weights,
)

from .base import ClipPromptTrainer
from .text import EvalTextCache, PromptLearner, TextEncoder


class CoOpCLIP(nn.Module):
    """CLIP whose class text features come from learned prompts: logits [B, C] = 100 * cos(img, text)."""

    def __init__(self, coop_cfg, classnames, clip_model):
        super().__init__()
        self.prompt_learner = PromptLearner(
            classnames,
            clip_model,
            n_ctx=coop_cfg.N_CTX,
            ctx_init=coop_cfg.CTX_INIT,
            csc=coop_cfg.CSC,
            class_token_position=coop_cfg.CLASS_TOKEN_POSITION,
        )
        self.image_encoder = clip_model.visual
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.text_cache = EvalTextCache()

    def train(self, mode=True):
        self.text_cache.clear()
        return super().train(mode)

    def text_features(self):
        """Unnormalised text features [C, E] of the current prompts."""
        return self.text_encoder(self.prompt_learner(), self.prompt_learner.eot_indices)

    def forward(self, image):
        image_features = F.normalize(self.image_encoder(image), dim=-1)
        text_features = F.normalize(self.text_cache.get("text", self.text_features, self.training), dim=-1)
        return self.logit_scale.exp() * image_features @ text_features.t()


@TRAINER_REGISTRY.register()
class CoOp(ClipPromptTrainer):
    """Trains only the prompt learner's context with cross-entropy."""

    config_node = "COOP"
    class_dependent_keys = ("token_prefix", "token_suffix")
    model_class = CoOpCLIP  # built as model_class(cfg.TRAINER.<config_node>, classnames, clip_model)

    def build_model(self):
        cfg = self.cfg
        clip_model = self.load_clip()
        print("Building custom CLIP")
        self.model = self.model_class(self.method_cfg, self.dm.dataset.classnames, clip_model)
        self.freeze_all_but(self.model, ["prompt_learner"])
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model.prompt_learner, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.log_trainable_parameters(self.model)
        self.optim = build_optimizer(self.model.prompt_learner, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("prompt_learner", self.model.prompt_learner, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = self.parse_batch_train(batch)
        with self.autocast():
            output = self.model(image)
            loss = F.cross_entropy(output.float(), label)
        self.model_backward_and_update(loss)
        self.step_lr_at_epoch_end()
        return {"loss": loss.item(), "acc": compute_accuracy(output, label)[0].item()}
