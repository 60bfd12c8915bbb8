"""The downstream toy datasets: their class definitions, and writing them to disk deterministically.

Each `ToyDatasetSpec` fixes some scene attributes per class (its class name is those values, e.g.
"small red" or "blue striped") and samples the others uniformly. Both are built on what the toy
CLIP learns in pretraining (colour, size, a little pattern; not shape, see `toyworld.pretrain`) and
differ from the pretraining distribution, which leaves prompt tuning something to learn:
- ToyClutter: size x colour (16 classes) on cluttered backgrounds, a style that is rare in
  pretraining (10% of images, seldom captioned);
- ToyTextures: colour x pattern (12 classes) on large objects, where the pattern is what the
  pretraining captions seldom name.

On disk: `<root>/<dataset_dir>/{train,val,test}/<class_name_with_underscores>/<index>.png`.
"""
import os
import os.path as osp
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .render import COLOURS, PATTERNS, POSITIONS, SHAPES, SIZES, Scene, render_scene

SPLITS = ("train", "val", "test")
# Images per class in each split: enough for 16-shot training and a test set whose accuracy has a
# standard error of about 3 points.
DEFAULT_COUNTS = {"train": 20, "val": 5, "test": 20}


@dataclass(frozen=True)
class ToyDatasetSpec:
    """One downstream toy dataset.

    class_attributes: the Scene attributes that define a class, e.g. ("colour", "shape").
    class_values: one tuple of values per class, in the order of `class_attributes`.
    free_values: attribute -> values sampled uniformly per image (the rest keep Scene defaults).
    """

    name: str
    dataset_dir: str
    class_attributes: tuple
    class_values: tuple
    free_values: dict = field(default_factory=dict)
    counts: dict = field(default_factory=lambda: dict(DEFAULT_COUNTS))

    @property
    def classnames(self):
        """Readable class names, e.g. ["red pentagon", ...], in the spec's order."""
        return [" ".join(values) for values in self.class_values]

    def folder_names(self):
        """Class folder names (spaces -> underscores)."""
        return [name.replace(" ", "_") for name in self.classnames]


def _grid(first, second):
    return tuple((a, b) for a in first for b in second)


TOY_CLUTTER = ToyDatasetSpec(
    name="ToyClutter",
    dataset_dir="toy_clutter",
    class_attributes=("size", "colour"),
    class_values=_grid(tuple(SIZES), tuple(COLOURS)),
    free_values={"shape": SHAPES, "pattern": PATTERNS, "position": tuple(POSITIONS), "background": ("cluttered",)},
)

TOY_TEXTURES = ToyDatasetSpec(
    name="ToyTextures",
    dataset_dir="toy_textures",
    class_attributes=("colour", "pattern"),
    class_values=_grid(("red", "blue", "yellow", "green"), ("striped", "dotted", "checkered")),
    free_values={"shape": SHAPES, "size": ("large",), "position": tuple(POSITIONS), "background": ("dark", "light")},
)

TOY_DATASETS = {spec.name: spec for spec in (TOY_CLUTTER, TOY_TEXTURES)}


def _image_rng(spec, seed, split, class_index, image_index):
    """The generator of one image: a function of its identity only, not of generation order."""
    return np.random.default_rng([seed, zlib.crc32(spec.name.encode()), SPLITS.index(split), class_index, image_index])


def render_split(spec, split, seed=0):
    """Render one split in memory: uint8 images [N, 64, 64, 3] and int labels [N] (class order of spec)."""
    images, labels = [], []
    for class_index, values in enumerate(spec.class_values):
        for image_index in range(spec.counts[split]):
            rng = _image_rng(spec, seed, split, class_index, image_index)
            attributes = dict(zip(spec.class_attributes, values))
            for attribute, choices in spec.free_values.items():
                attributes[attribute] = choices[rng.integers(len(choices))]
            images.append(render_scene(Scene(**attributes), rng))
            labels.append(class_index)
    return np.stack(images), np.asarray(labels)


def write_toy_dataset(spec, root, seed=0):
    """Write `spec` under `<root>/<spec.dataset_dir>/` (replacing nothing that exists); returns its path.

    The folder is assembled in a temporary sibling and renamed into place, so a reader never sees a
    half-written dataset.
    """
    target = osp.join(root, spec.dataset_dir)
    if osp.isdir(target):
        return target
    os.makedirs(root, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{spec.dataset_dir}-", dir=root)
    try:
        folders = spec.folder_names()
        for split in SPLITS:
            images, labels = render_split(spec, split, seed)
            for folder in folders:
                os.makedirs(osp.join(staging, split, folder))
            counters = [0] * len(folders)
            for image, label in zip(images, labels):
                Image.fromarray(image).save(osp.join(staging, split, folders[label], f"{counters[label]:04d}.png"))
                counters[label] += 1
        os.rename(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not osp.isdir(target):
            raise
    return target
