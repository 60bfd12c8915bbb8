"""PromptSRC: IVLP's prompts regularised towards the frozen CLIP, averaged over epochs.

Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation without Forgetting" (ICCV
2023); reference implementation github.com/muzairkhattak/PromptSRC (`trainers/promptsrc.py`).

- Mutual agreement (`self_consistency_loss`): CE(logits) + TEXT_LOSS_WEIGHT * L1(prompted text
  features, frozen text features) + IMAGE_LOSS_WEIGHT * L1(prompted image features, frozen image
  features) + KL(softmax(frozen logits) || softmax(prompted logits)) summed over the batch and
  divided by B * C; all features L2-normalised, the L1 terms averaged over all entries.
- Textual diversity: the frozen text features average the raw CLIP features of 60 templates
  (`dpt_models.templates.PROMPTSRC_TEMPLATES`) before normalising.
- Gaussian prompt aggregation (GPA, `PromptAggregate`): after epoch e (1-based) the trained
  parameters are added to a running sum with weight N(e; GPA_MEAN, GPA_STD), normalised over epochs
  1..MAX_EPOCH; after the last epoch that sum replaces the parameters (the model tested and saved).
"""
import math

import torch
import torch.nn.functional as F

from .ivlp import IVLPCLIP
from .templates import PROMPTSRC_TEMPLATES, template_text_features


class PromptSRCCLIP(IVLPCLIP):
    """IVLP's model plus, in training, the frozen CLIP's features and logits (`IndependentPrompts`' arguments).

    Training outputs besides IVLP's: `zs_image_features` [B, E] (CLIP's own image encoder),
    `zs_text_features` [C, E] (the template ensemble, raw features averaged) and `zs_logits` [B, C].
    """

    def __init__(self, clip_model, classnames, templates=PROMPTSRC_TEMPLATES, **prompt_options):
        super().__init__(clip_model, classnames, **prompt_options)
        self.register_buffer(
            "zs_text_features",
            template_text_features(clip_model, classnames, templates, normalize_each=False),
            persistent=False,
        )

    def forward(self, images):
        outputs = super().forward(images)
        if self.training:
            with torch.no_grad():
                zs_image = F.normalize(self.image_encoder(images), dim=-1)  # [B, E]
            zs_text = self.zs_text_features.to(zs_image.dtype)
            outputs.update(
                zs_image_features=zs_image,
                zs_text_features=zs_text,
                zs_logits=self.logit_scale.exp() * zs_image @ zs_text.t(),
            )
        return outputs


def self_consistency_loss(outputs, labels, text_weight=25.0, image_weight=10.0):
    """PromptSRC's loss of the model's training outputs; returns (loss, components).

    Components: `ce_logits`, `l1_text` and `l1_image` (weighted, as they enter the loss), `kl_logits`.
    """
    logits = outputs["logits"]
    ce = F.cross_entropy(logits, labels)
    l1_text = F.l1_loss(outputs["text_features"], outputs["zs_text_features"]) * text_weight
    l1_image = F.l1_loss(outputs["image_features"], outputs["zs_image_features"]) * image_weight
    kl = F.kl_div(F.log_softmax(logits, dim=1), F.log_softmax(outputs["zs_logits"], dim=1),
                  reduction="sum", log_target=True) / logits.numel()
    components = {"ce_logits": ce, "l1_text": l1_text, "l1_image": l1_image, "kl_logits": kl}
    return ce + kl + l1_text + l1_image, {name: value.detach() for name, value in components.items()}


def gaussian_epoch_weights(n_epochs, mean, std):
    """GPA's weight of each epoch 1..n_epochs: the normal density N(e; mean, std), normalised to sum 1."""
    if n_epochs < 1 or std <= 0:
        raise ValueError(f"GPA needs at least one epoch and GPA_STD > 0, got {n_epochs} epochs, std {std}")
    density = [math.exp(-0.5 * ((epoch - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))
               for epoch in range(1, n_epochs + 1)]
    return [value / sum(density) for value in density]


class PromptAggregate:
    """The running Gaussian-weighted sum of trained parameters over epochs (GPA).

    `add(epoch, parameters)` adds weights[epoch] * each parameter (epoch 0-based, parameters
    {name: tensor}); `state_dict()` / `load_state_dict()` hold the sum and the epochs added, plain
    tensors, for checkpoints and resume.
    """

    def __init__(self, weights):
        self.weights = list(weights)
        self.sum = {}
        self.epochs = []

    def add(self, epoch, parameters):
        weight = self.weights[epoch]
        for name, value in parameters.items():
            weighted = value.detach() * weight
            self.sum[name] = self.sum[name] + weighted if name in self.sum else weighted.clone()
        self.epochs.append(epoch)

    def state_dict(self):
        return {"sum": dict(self.sum), "epochs": list(self.epochs)}

    def load_state_dict(self, state):
        self.sum = dict(state["sum"])
        self.epochs = list(state["epochs"])
