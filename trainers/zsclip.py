"""Zero-shot CLIP baselines: one hand-written template per dataset (ZeroshotCLIP) and the
ImageNet template ensemble (ZeroshotCLIP2), as in the CoOp repository."""
import torch
import torch.nn.functional as F

from dassl_compat import TRAINER_REGISTRY

from .base import ClipPromptTrainer
from .templates import class_prompts, ensemble_templates, template_for
from .text import TextEncoder


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(ClipPromptTrainer):
    """CLIP with fixed text features of the dataset's template; nothing is trained."""

    config_node = "ZSCLIP"

    def templates(self):
        return [template_for(self.cfg.DATASET.NAME)]

    def build_model(self):
        self.clip_model = self.load_clip().to(self.device)
        self.clip_model.requires_grad_(False)
        classnames = self.dm.dataset.classnames
        text_encoder = TextEncoder(self.clip_model)
        templates = self.templates()
        for template in templates:
            print(f"Prompt template: {template!r}")
        features = torch.stack([text_encoder.encode_texts(class_prompts(t, classnames)) for t in templates])
        self.text_features = F.normalize(features.mean(dim=0), dim=-1)  # [C, E]

    @torch.no_grad()
    def model_inference(self, image):
        with self.autocast():
            image_features = F.normalize(self.clip_model.encode_image(image).float(), dim=-1)
        return self.clip_model.logit_scale.exp() * image_features @ self.text_features.t()

    def train(self):
        raise RuntimeError(f"{type(self).__name__} has nothing to train: run it with --eval-only")


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Zero-shot CLIP with the mean of the seven ImageNet templates (+ the dataset's own)."""

    def templates(self):
        return ensemble_templates(self.cfg.DATASET.NAME)
