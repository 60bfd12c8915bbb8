"""Zero-shot classification accuracy of a CLIP model, and the chance-level bound it is tested against."""
import math

import clip
import numpy as np
import torch
from PIL import Image

from trainers.templates import class_prompts

from .pretrain import images_to_tensor


def load_images(paths):
    """PNG/JPEG files -> CLIP-normalised float tensor [N, 3, H, W] (images must share one size)."""
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(np.asarray(image.convert("RGB")))
    return images_to_tensor(np.stack(arrays))


@torch.no_grad()
def zero_shot_accuracy(model, images, labels, classnames, template="a photo of a {}.", batch_size=256):
    """Top-1 accuracy in [0, 1] of `model` classifying `images` [N, 3, H, W] by `template` prompts.

    labels: int tensor or array [N] indexing `classnames`.
    """
    dtype = model.visual.conv1.weight.dtype
    tokens = clip.tokenize(class_prompts(template, classnames))
    text_features = model.encode_text(tokens).float()  # [C, E]
    text_features = text_features / text_features.norm(dim=-1, keepdim=True)
    predictions = []
    for batch in images.split(batch_size):
        image_features = model.encode_image(batch.to(dtype)).float()  # [b, E]
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        predictions.append((image_features @ text_features.t()).argmax(dim=-1))
    return (torch.cat(predictions) == torch.as_tensor(labels)).float().mean().item()


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
