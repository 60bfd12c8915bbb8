"""VPT: deep visual prompts in every ViT block + CLIP's fixed zero-shot classifier.

Jia et al., "Visual Prompt Tuning" (ECCV 2022), as the baseline in Xing et al., "Dual Modality Prompt
Tuning for Vision-Language Pre-Trained Model" (IEEE TMM 2023); reference implementation
github.com/fanrena/DPT (`trainers/VPT.py`). Only the visual prompts train; the classifier is the
normalised text features of the dataset's hand-written template ("a photo of a {}." ...).
"""
import torch.nn as nn
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY, build_lr_scheduler, build_optimizer, compute_accuracy

from .base import ClipPromptTrainer
from .templates import class_prompts, template_for
from .text import TextEncoder
from .visual import DeepVisualPrompts, PromptedViT


def template_text_features(clip_model, classnames, dataset_name):
    """Normalised features [C, E] of the dataset's zero-shot template filled with each class name."""
    prompts = class_prompts(template_for(dataset_name), classnames)
    return TextEncoder(clip_model).encode_texts(prompts, normalize=True)


class VPTCLIP(nn.Module):
    """CLIP with deep visual prompts in all blocks, classifying against fixed template features."""

    def __init__(self, clip_model, classnames, dataset_name, n_visual_tokens=10):
        super().__init__()
        clip_model.requires_grad_(False)
        self.image_encoder = PromptedViT(clip_model.visual)
        self.visual_prompts = DeepVisualPrompts(self.image_encoder.depth, n_visual_tokens, self.image_encoder.width)
        self.register_buffer(
            "template_text_features", template_text_features(clip_model, classnames, dataset_name), persistent=False
        )
        self.logit_scale = clip_model.logit_scale

    def forward(self, images):
        """images [B, 3, H, W] -> {"logits": [B, C]}."""
        image_features = F.normalize(self.image_encoder(images, self.visual_prompts()), dim=-1)
        return {"logits": self.logit_scale.exp() * image_features @ self.template_text_features.t()}


@TRAINER_REGISTRY.register()
class VPT(ClipPromptTrainer):
    """Deep visual prompt tuning of CLIP's ViT with the zero-shot template classifier (TRAINER.VPT).

    Also the trainer skeleton VLP and DPT extend: `build_model` builds `self.model` and registers its
    trainable modules; every model returns a dict with at least `logits`; `compute_loss` turns the
    outputs into (loss, components) and is the one place a variant changes the objective.
    """

    config_node = "VPT"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        if cfg.MODEL.BACKBONE.NAME.startswith("RN"):
            raise ValueError(
                f"{type(self).__name__} prompts a Vision Transformer; MODEL.BACKBONE.NAME {cfg.MODEL.BACKBONE.NAME!r} "
                "is a ResNet. Use ViT-B/16, ViT-B/32, ..."
            )
        if cfg.MODEL.INIT_WEIGHTS:
            raise ValueError(
                f"{type(self).__name__} trains several modules: load trained prompts with --eval-only "
                "--model-dir (or resume with --resume) instead of MODEL.INIT_WEIGHTS"
            )
        self.check_method_cfg(cfg.TRAINER[self.config_node])

    def check_method_cfg(self, node):
        """Validate this method's own config node (raise a ValueError naming the key)."""
        if node.N_CTX < 1:
            raise ValueError(f"TRAINER.{self.config_node}.N_CTX (visual prompt tokens) must be >= 1, got {node.N_CTX}")

    def build_model(self):
        clip_model = self.load_clip()
        print(f"Building {type(self).__name__}")
        self.model = self.build_clip_model(clip_model)
        self.model.to(self.device)
        self.log_trainable_parameters(self.model)
        self.register_trainable_modules()

    def build_clip_model(self, clip_model):
        """The method's model around a loaded CLIP (subclasses build theirs)."""
        return VPTCLIP(clip_model, self.dm.dataset.classnames, self.cfg.DATASET.NAME, self.method_cfg.N_CTX)

    def register_trainable_modules(self):
        """Register each trainable module with its optimiser and scheduler (checkpointed separately)."""
        self.register_trainable("visual_prompts", self.model.visual_prompts, self.cfg.OPTIM)

    def register_trainable(self, name, module, optim_cfg):
        """Give `module` its own optimiser and scheduler (Dassl's register_model, one checkpoint each)."""
        optim = build_optimizer(module, optim_cfg)
        self.register_model(name, module, optim, build_lr_scheduler(optim, optim_cfg))

    def compute_loss(self, outputs, labels):
        """Cross-entropy of the logits; returns (loss, {component name: detached value})."""
        loss = F.cross_entropy(outputs["logits"], labels)
        return loss, {"ce_logits": loss.detach()}

    def forward_backward(self, batch):
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            outputs = self.model(images)
        outputs = {key: value.float() if value.is_floating_point() else value for key, value in outputs.items()}
        loss, components = self.compute_loss(outputs, labels)
        self.model_backward_and_update(loss)
        self.step_lr_at_epoch_end()
        summary = {"loss": loss.item(), "acc": compute_accuracy(outputs["logits"], labels)[0].item()}
        summary.update({name: float(value) for name, value in components.items()})
        return summary

    def model_inference(self, input):
        with self.autocast():
            return self.model(input)["logits"].float()
