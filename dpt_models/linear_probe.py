"""The linear-probe CLIP model: a frozen CLIP image encoder and a linear head, and the head of a fitted
scikit-learn logistic regression (the trainer, its search of C and its feature cache: `trainers/linear_probe.py`)."""
import torch
import torch.nn as nn


def linear_head(classifier, num_classes):
    """The fitted classifier as nn.Linear(E, num_classes) giving the same predictions."""
    coef = torch.as_tensor(classifier.coef_, dtype=torch.float32)
    intercept = torch.as_tensor(classifier.intercept_, dtype=torch.float32)
    if coef.shape[0] == 1:  # binary: scikit-learn keeps one row, the logit of classes_[1]
        coef, intercept = torch.cat([torch.zeros_like(coef), coef]), torch.cat([torch.zeros_like(intercept), intercept])
    head = nn.Linear(coef.shape[1], num_classes)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-1e4)  # classes absent from the training sample are never predicted
        rows = torch.as_tensor(classifier.classes_, dtype=torch.long)
        head.weight[rows] = coef
        head.bias[rows] = intercept
    return head



class LinearProbeCLIP(nn.Module):
    """Frozen CLIP image encoder + a linear head for the C classes: images [B, 3, H, W] -> {"logits": [B, C]}."""

    def __init__(self, clip_model, classnames):
        super().__init__()
        clip_model.requires_grad_(False)
        self.clip_model = clip_model
        self.head = nn.Linear(clip_model.visual.output_dim, len(classnames))

    def forward(self, images):
        return {"logits": self.head(self.clip_model.encode_image(images).float())}


