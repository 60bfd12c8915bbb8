"""Zero-shot and linear-probe accuracy of a CLIP model, and the chance-level bound they are tested against.

The linear probe measures what the frozen image features can tell apart; zero-shot, what one prompt
per class ("a photo of a {class}.", filled in by the caller) finds in them. The gap between the two
is what prompt tuning can learn.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from dpt_models.clip_backbone import clip

from .pretrain import images_to_tensor


def load_images(paths):
    """PNG/JPEG files -> CLIP-normalised float tensor [N, 3, H, W] (images must share one size)."""
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB")))
    return images_to_tensor(np.stack(arrays))


@torch.no_grad()
def image_features(model, images, batch_size=256):
    """L2-normalised image features [N, E] of `images` [N, 3, H, W]."""
    dtype = model.visual.conv1.weight.dtype
    features = torch.cat([model.encode_image(batch.to(dtype)).float() for batch in images.split(batch_size)])
    return features / features.norm(dim=-1, keepdim=True)


@torch.no_grad()
def prompt_text_features(model, prompts):
    """L2-normalised text features [C, E] of one prompt per class ("a photo of a red disk.", ...)."""
    text_features = model.encode_text(clip.tokenize(prompts)).float()
    return text_features / text_features.norm(dim=-1, keepdim=True)


def accuracy_of(scores, labels):
    """Top-1 accuracy in [0, 1] of class scores [N, C] against int labels [N]."""
    return (scores.argmax(dim=-1) == torch.as_tensor(labels)).float().mean().item()


def zero_shot_accuracy(model, images, labels, prompts):
    """Top-1 accuracy in [0, 1] of `model` classifying `images` [N, 3, H, W] by one prompt per class.

    labels: int tensor or array [N] indexing `prompts`.
    """
    return accuracy_of(image_features(model, images) @ prompt_text_features(model, prompts).t(), labels)


def linear_probe_accuracy(train_features, train_labels, test_features, test_labels, weight_decay=1e-4):
    """Top-1 test accuracy in [0, 1] of a logistic regression on frozen, normalised image features [N, E].

    Multinomial logistic regression (features x 10, L2 penalty `weight_decay` * ||W||^2), fitted to the
    training features / labels [N] by L-BFGS from zero: deterministic on a given machine.
    """
    train_features, test_features = 10 * train_features, 10 * test_features
    labels = torch.as_tensor(train_labels)
    num_classes = int(labels.max()) + 1
    weight = torch.zeros(train_features.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(train_features @ weight + bias, labels) + weight_decay * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        return accuracy_of(test_features @ weight + bias, test_labels)


def chance_upper_bound(num_samples, num_classes, tail_probability=1e-6):
    """Smallest accuracy a guesser at chance (p = 1/C) reaches with probability <= `tail_probability`.

    Exact binomial tail: the least k with P(Binomial(n, 1/C) >= k) <= tail_probability, as k / n.
    An accuracy at or above it is above chance with that confidence.
    """
    p = 1.0 / num_classes
    tail = 0.0
    for k in range(num_samples, -1, -1):
        mass = math.comb(num_samples, k) * p**k * (1 - p) ** (num_samples - k)
        if tail + mass > tail_probability:
            return (k + 1) / num_samples
        tail += mass
    return 0.0
