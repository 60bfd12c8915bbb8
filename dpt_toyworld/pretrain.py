"""Contrastive pretraining of a small OpenAI-architecture CLIP on toy image-caption pairs.

The model is `clip.model.CLIP` (ViT image encoder, CLIP's text transformer, BPE tokenizer with
context length 77), so the exported fp16 state dict loads with `clip.model.build_model` like an
OpenAI checkpoint. The pretraining distribution (`PRETRAIN_DISTRIBUTION`, `CAPTION_MENTION`) shows
every image as rendered (no fog, no dusk: those are the downstream domains, `dpt_toyworld.benchmarks`);
captions almost always name shape and colour, but name the pattern only sometimes, and cluttered
backgrounds are rare.

What the default 800 steps teach this ViT (zero-shot on 400 pretraining-style images): colour
95% (8-way), size 89% (2-way), pattern at chance by prompt (32%, 3-way) though partly decodable
from the features, shape 15% (8-way; a 4-layer ViT from scratch needs far more data for shape).
So the downstream datasets are built on colour and size.
"""
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from dpt_models.clip_backbone import CLIP, clip

from .render import (
    BACKGROUNDS,
    COLOURS,
    IMAGE_SIZE,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    Scene,
    caption_scene,
    render_scene,
)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# attribute -> (values, probabilities); attributes not listed are uniform over their values.
PRETRAIN_DISTRIBUTION = {
    "pattern": (PATTERNS, (0.4, 0.2, 0.2, 0.2)),
    "background": (BACKGROUNDS, (0.45, 0.45, 0.1)),
}
# Probability that a pretraining caption names each attribute (the shape is always named).
CAPTION_MENTION = {"colour": 0.9, "pattern": 0.3, "size": 0.4, "position": 0.3, "background": 0.15}


@dataclass(frozen=True)
class ToyClipConfig:
    """Architecture of the toy CLIP and its pretraining run.

    The token embedding alone is 49408 x text_width parameters (6.3 MB in fp16 at width 64), so
    the text width stays at 64 (one attention head) to keep the shipped file under 10 MB. Patch 16
    on 64 px gives 16 patch tokens + CLS: about 3x faster per step than patch 8, which learned no
    better in the same time.
    """

    embed_dim: int = 128
    image_resolution: int = IMAGE_SIZE
    vision_layers: int = 4
    vision_width: int = 128
    vision_patch_size: int = 16
    context_length: int = 77
    vocab_size: int = 49408
    text_width: int = 64
    text_layers: int = 3
    steps: int = 800
    batch_size: int = 128
    lr: float = 1e-3
    warmup_steps: int = 50
    weight_decay: float = 0.1
    seed: int = 0


def build_toy_clip(config):
    """A randomly initialised `clip.model.CLIP` (fp32) with the architecture of `config`."""
    return CLIP(
        config.embed_dim,
        config.image_resolution,
        config.vision_layers,
        config.vision_width,
        config.vision_patch_size,
        config.context_length,
        config.vocab_size,
        config.text_width,
        config.text_width // 64,
        config.text_layers,
    )


def sample_pretrain_scene(rng):
    """One scene from the pretraining distribution."""
    attributes = {}
    for name, values in (("shape", SHAPES), ("colour", tuple(COLOURS)), ("pattern", PATTERNS),
                         ("size", tuple(SIZES)), ("position", tuple(POSITIONS)), ("background", BACKGROUNDS)):
        values, probabilities = PRETRAIN_DISTRIBUTION.get(name, (values, None))
        attributes[name] = values[rng.choice(len(values), p=probabilities)]
    return Scene(**attributes)


def images_to_tensor(images):
    """uint8 images [N, H, W, 3] -> CLIP-normalised float tensor [N, 3, H, W]."""
    pixels = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (pixels - mean) / std


def pretrain_batch(seed, step, batch_size):
    """The image-caption pairs of one step: images [B, 3, 64, 64] (normalised), tokens [B, 77]."""
    rng = np.random.default_rng([seed, step])
    scenes = [sample_pretrain_scene(rng) for _ in range(batch_size)]
    images = np.stack([render_scene(scene, rng) for scene in scenes])
    captions = [caption_scene(scene, rng, CAPTION_MENTION) for scene in scenes]
    return images_to_tensor(images), clip.tokenize(captions)


def _learning_rate(config, step):
    """Linear warmup, then cosine decay to zero."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * config.lr * (1 + math.cos(math.pi * progress))


def _optimizer(model, config):
    """AdamW with weight decay on weight matrices only (not on embeddings, norms, biases)."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        is_matrix = parameter.ndim >= 2 and "embedding" not in name and name != "visual.class_embedding"
        (decay if is_matrix else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=(0.9, 0.98), eps=1e-6)


def pretrain(config, log=print):
    """Train a toy CLIP from scratch with the symmetric InfoNCE loss; returns the fp32 model."""
    torch.manual_seed(config.seed)
    model = build_toy_clip(config).train()
    optimizer = _optimizer(model, config)
    log(f"Pretraining a toy CLIP: {asdict(config)}")
    start = time.time()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(config, step)
        images, tokens = pretrain_batch(config.seed, step, config.batch_size)
        logits_per_image, logits_per_text = model(images, tokens)  # [B, B] each
        targets = torch.arange(len(images))
        loss = (F.cross_entropy(logits_per_image, targets) + F.cross_entropy(logits_per_text, targets)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            log(f"step {step + 1}/{config.steps} loss {loss.item():.4f} "
                f"scale {model.logit_scale.exp().item():.1f} elapsed {time.time() - start:.0f}s")
    return model.eval()


def export_state_dict(model):
    """The model's weights as an fp16 state dict in OpenAI's layout (`clip.model.build_model` reads it)."""
    return {name: tensor.detach().half() for name, tensor in model.state_dict().items()}
