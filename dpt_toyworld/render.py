"""Procedural toy images and their captions: one coloured, patterned shape on a background.

A `Scene` names the categorical attributes of an image (shape, colour, pattern, size, position,
background); `render_scene` draws it as a 64x64 RGB uint8 array, drawing the continuous details
(exact radius, offset, rotation, colour jitter, noise, clutter) from a numpy Generator, so an image
is a pure function of (scene, seed). `apply_style` then changes how the whole image looks (fog,
dusk), the way a downstream domain differs from the pretraining photos. `caption_scene` writes an
English caption that mentions each attribute with a given probability: the pretraining distribution
is defined by those probabilities (see `dpt_toyworld.pretrain`).
"""
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64

SHAPES = ("circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star", "cross")
# Colour names avoid a leading vowel so that "a {colour} {shape}" is always grammatical.
COLOURS = {
    "red": (215, 35, 35),
    "green": (40, 165, 55),
    "blue": (35, 75, 220),
    "yellow": (235, 215, 40),
    "purple": (135, 55, 190),
    "pink": (245, 120, 185),
    "brown": (135, 85, 40),
    "cyan": (40, 205, 215),
}
PATTERNS = ("plain", "striped", "dotted", "checkered")
# Circumradius range in pixels at IMAGE_SIZE.
SIZES = {"small": (8.0, 11.0), "large": (15.0, 19.0)}
# Unit offsets of the object's centre; multiplied by POSITION_OFFSET pixels.
POSITIONS = {"center": (0, 0), "left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1)}
POSITION_PHRASES = {
    "center": "in the center",
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}
POSITION_OFFSET = 13.0
# "cluttered" is a colour gradient with grey distractor blobs and strong noise.
BACKGROUNDS = ("dark", "light", "cluttered")

# Image styles of the downstream domains, never seen in pretraining: "fog" blends every pixel towards
# mid-grey (FOG_DENSITY of grey), "dusk" scales every pixel by DUSK_LIGHT. Both keep what tells the
# classes apart (hue, size) but move the images away from what the captions were learned on.
STYLES = ("none", "fog", "dusk")
FOG_DENSITY = 0.7
DUSK_LIGHT = 0.3

CAPTION_TEMPLATES = (
    "a photo of a {}.",
    "a {}.",
    "a picture of a {}.",
    "an image of a {}.",
    "a drawing of a {}.",
    "there is a {}.",
)


@dataclass(frozen=True)
class Scene:
    """The categorical content of one toy image."""

    shape: str
    colour: str
    pattern: str = "plain"
    size: str = "large"
    position: str = "center"
    background: str = "dark"

    def __post_init__(self):
        for attribute, allowed in (
            ("shape", SHAPES),
            ("colour", COLOURS),
            ("pattern", PATTERNS),
            ("size", SIZES),
            ("position", POSITIONS),
            ("background", BACKGROUNDS),
        ):
            if getattr(self, attribute) not in allowed:
                raise ValueError(f"Scene.{attribute} must be one of {list(allowed)}, got {getattr(self, attribute)!r}")


def _polygon(cx, cy, radius, n_vertices, rotation, inner_ratio=None):
    """Vertices of a regular polygon (or of a star when `inner_ratio` is given), first vertex up."""
    points = []
    steps = n_vertices * 2 if inner_ratio else n_vertices
    for k in range(steps):
        angle = rotation - math.pi / 2 + 2 * math.pi * k / steps
        r = radius * (inner_ratio if inner_ratio and k % 2 else 1.0)
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def _cross(cx, cy, radius, rotation):
    """Vertices of a plus sign whose arms are 0.38 * radius thick."""
    h = 0.38 * radius
    outline = [(-h, -radius), (h, -radius), (h, -h), (radius, -h), (radius, h), (h, h),
               (h, radius), (-h, radius), (-h, h), (-radius, h), (-radius, -h), (-h, -h)]
    cos, sin = math.cos(rotation), math.sin(rotation)
    return [(cx + x * cos - y * sin, cy + x * sin + y * cos) for x, y in outline]


def shape_mask(shape, cx, cy, radius, rotation, size=IMAGE_SIZE):
    """Binary mask of one shape, float32 [size, size] in {0, 1}."""
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if shape == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    elif shape == "cross":
        draw.polygon(_cross(cx, cy, radius, rotation), fill=255)
    else:
        vertices = {
            "square": lambda: _polygon(cx, cy, radius, 4, rotation + math.pi / 4),
            "diamond": lambda: _polygon(cx, cy, radius, 4, rotation),
            "triangle": lambda: _polygon(cx, cy + 0.2 * radius, radius * 1.1, 3, rotation),
            "pentagon": lambda: _polygon(cx, cy, radius, 5, rotation),
            "hexagon": lambda: _polygon(cx, cy, radius, 6, rotation + math.pi / 6),
            "star": lambda: _polygon(cx, cy, radius * 1.1, 5, rotation, inner_ratio=0.45),
        }[shape]()
        draw.polygon(vertices, fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


def _pattern_mask(pattern, rng, size=IMAGE_SIZE):
    """Where the secondary colour of a pattern goes, float32 [size, size] in {0, 1}."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    xx += rng.uniform(0, 8)
    yy += rng.uniform(0, 8)
    if pattern == "plain":
        return np.zeros((size, size), np.float32)
    if pattern == "striped":
        angle = rng.choice([0.0, math.pi / 4, math.pi / 2, 3 * math.pi / 4])
        coordinate = xx * math.cos(angle) + yy * math.sin(angle)
        return ((coordinate // 3) % 2).astype(np.float32)
    if pattern == "dotted":
        period = 6.0
        dx, dy = xx % period - period / 2, yy % period - period / 2
        return (dx * dx + dy * dy < 2.6).astype(np.float32)
    cell = 4.0
    return (((xx // cell) + (yy // cell)) % 2).astype(np.float32)


def _background(kind, rng, size=IMAGE_SIZE):
    """Background pixels, float32 [size, size, 3] in [0, 255]."""
    if kind == "dark":
        base = np.full((size, size, 3), rng.uniform(10, 60), np.float32)
        return base + rng.normal(0, 4, (size, size, 1))
    if kind == "light":
        base = np.full((size, size, 3), rng.uniform(185, 235), np.float32)
        return base + rng.normal(0, 4, (size, size, 1))
    # cluttered: a two-colour diagonal gradient, grey distractor blobs and strong noise.
    start, end = rng.uniform(40, 200, 3), rng.uniform(40, 200, 3)
    t = np.linspace(0, 1, size, dtype=np.float32)
    weight = (t[:, None] + t[None, :])[..., None] / 2
    base = start * (1 - weight) + end * weight
    for _ in range(rng.integers(4, 8)):
        blob = shape_mask(
            rng.choice(["circle", "square", "triangle"]),
            rng.uniform(0, size), rng.uniform(0, size), rng.uniform(3, 6), rng.uniform(0, math.pi),
        )[..., None]
        base = base * (1 - blob) + rng.uniform(60, 200) * blob
    return base + rng.normal(0, 12, (size, size, 3))


def render_scene(scene, rng):
    """Draw `scene` with details from the numpy Generator `rng`: uint8 array [64, 64, 3]."""
    return render_scene_with_mask(scene, rng)[0]


def render_scene_with_mask(scene, rng):
    """`render_scene`'s image (the same pixels for the same `rng` state) and the object's pixels:
    (uint8 [64, 64, 3], float32 mask [64, 64] in {0, 1})."""
    background = _background(scene.background, rng)
    radius = rng.uniform(*SIZES[scene.size])
    unit_x, unit_y = POSITIONS[scene.position]
    cx = IMAGE_SIZE / 2 + unit_x * POSITION_OFFSET + rng.uniform(-3, 3)
    cy = IMAGE_SIZE / 2 + unit_y * POSITION_OFFSET + rng.uniform(-3, 3)
    rotation = rng.uniform(-0.15, 0.15)
    mask = shape_mask(scene.shape, cx, cy, radius, rotation)[..., None]

    colour = np.clip(np.asarray(COLOURS[scene.colour], np.float32) + rng.normal(0, 10, 3), 0, 255)
    secondary = colour * 0.3 if colour.mean() > 110 else np.minimum(colour + 130, 255)
    pattern = _pattern_mask(scene.pattern, rng)[..., None]
    fill = colour * (1 - pattern) + secondary * pattern

    image = background * (1 - mask) + fill * mask
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask[..., 0]


def apply_style(image, style):
    """`image` (uint8 [H, W, 3]) as seen in `style` (one of STYLES): uint8 [H, W, 3]."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {list(STYLES)}, got {style!r}")
    pixels = image.astype(np.float32)
    if style == "fog":
        pixels = (1 - FOG_DENSITY) * pixels + FOG_DENSITY * 128.0
    elif style == "dusk":
        pixels = DUSK_LIGHT * pixels
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def describe_scene(scene, rng, mention):
    """The noun phrase of a caption, e.g. "small red striped circle".

    mention: dict attribute -> probability that the caption names it ("colour", "pattern",
    "size"); the shape is always named, a plain pattern never.
    """
    words = []
    if rng.random() < mention.get("size", 0.0):
        words.append(scene.size)
    if rng.random() < mention.get("colour", 0.0):
        words.append(scene.colour)
    if scene.pattern != "plain" and rng.random() < mention.get("pattern", 0.0):
        words.append(scene.pattern)
    words.append(scene.shape)
    return " ".join(words)


def caption_scene(scene, rng, mention):
    """A caption of `scene`, e.g. "a photo of a red striped circle on the left."

    mention: probabilities per attribute, as in `describe_scene`, plus "position" and
    "background" for the trailing phrases.
    """
    phrase = describe_scene(scene, rng, mention)
    if rng.random() < mention.get("position", 0.0):
        phrase += " " + POSITION_PHRASES[scene.position]
    if rng.random() < mention.get("background", 0.0):
        phrase += f" on a {scene.background} background"
    return CAPTION_TEMPLATES[rng.integers(len(CAPTION_TEMPLATES))].format(phrase)
