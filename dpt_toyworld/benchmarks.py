"""The downstream toy datasets: their class definitions, and writing them to disk deterministically.

Each `ToyDatasetSpec` fixes some scene attributes per class (its class name is those values, e.g.
"small red") and samples the others uniformly, then renders every image in the spec's style. The
classes are built on what the toy CLIP learns in pretraining (colour and size; not shape, see
`dpt_toyworld.pretrain`), and the styles are domains the pretraining never shows, as a satellite or a
sketch domain is for CLIP: the frozen image features still separate the classes (a logistic
regression on those of the 20 training images per class: 82% on ToyFog, 86% on ToyDusk), but the
hand-written prompt "a photo of a {class}." no longer points at them (zero-shot 55% and 38%). That
gap is what prompt tuning learns:
- ToyFog: size x colour (16 classes) seen through fog (FOG_DENSITY of mid-grey over every pixel);
- ToyDusk: the same 16 classes at dusk (every pixel at DUSK_LIGHT of its brightness).
Both share their class names, so one can also train on one and test on the other.

On disk: `<root>/<dataset_dir>/{train,val,test}/<class_name_with_underscores>/<index>.png`, and
`generation.json` (the spec, the seed and GENERATOR_VERSION), which tells a stale folder apart.
"""
import json
import os
import os.path as osp
import re
import shutil
import tempfile
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image

from .render import (
    COLOURS,
    PATTERNS,
    POSITIONS,
    SHAPES,
    SIZES,
    STYLES,
    Scene,
    apply_style,
    render_scene,
    render_scene_with_mask,
)

SPLITS = ("train", "val", "test")
# Images per class in each split: enough for 16-shot training, and 800 test images (16 classes) whose
# accuracy has a binomial standard error of at most 1.8 points.
DEFAULT_COUNTS = {"train": 20, "val": 5, "test": 50}
# Bump when rendering changes what a spec and seed produce: folders written before are then refused.
GENERATOR_VERSION = 2
GENERATION_FILE = "generation.json"


@dataclass(frozen=True)
class ToyDatasetSpec:
    """One downstream toy dataset.

    class_attributes: the Scene attributes that define a class, e.g. ("colour", "shape").
    class_values: one tuple of values per class, in the order of `class_attributes`.
    free_values: attribute -> values sampled uniformly per image (the rest keep Scene defaults).
    style: how every image is seen (`dpt_toyworld.render.STYLES`).
    """

    name: str
    dataset_dir: str
    class_attributes: tuple
    class_values: tuple
    free_values: dict = field(default_factory=dict)
    style: str = "none"
    counts: dict = field(default_factory=lambda: dict(DEFAULT_COUNTS))

    def __post_init__(self):
        if self.style not in STYLES:
            raise ValueError(f"ToyDatasetSpec.style must be one of {list(STYLES)}, got {self.style!r}")

    @property
    def classnames(self):
        """Readable class names, e.g. ["red pentagon", ...], in the spec's order."""
        return [" ".join(values) for values in self.class_values]

    def folder_names(self):
        """Class folder names (spaces -> underscores)."""
        return [name.replace(" ", "_") for name in self.classnames]


def _grid(first, second):
    return tuple((a, b) for a in first for b in second)


def size_colour_dataset(name, dataset_dir, style):
    """16 classes "<size> <colour>" (2 sizes x 8 colours), any shape, pattern and position on a dark or
    light background, every image seen in `style`."""
    return ToyDatasetSpec(
        name=name,
        dataset_dir=dataset_dir,
        class_attributes=("size", "colour"),
        class_values=_grid(tuple(SIZES), tuple(COLOURS)),
        free_values={"shape": SHAPES, "pattern": PATTERNS, "position": tuple(POSITIONS),
                     "background": ("dark", "light")},
        style=style,
    )


TOY_FOG = size_colour_dataset("ToyFog", "toy_fog", style="fog")
TOY_DUSK = size_colour_dataset("ToyDusk", "toy_dusk", style="dusk")

TOY_DATASETS = {spec.name: spec for spec in (TOY_FOG, TOY_DUSK)}


def _image_rng(spec, seed, split, class_index, image_index):
    """The generator of one image: a function of its identity only, not of generation order."""
    return np.random.default_rng([seed, zlib.crc32(spec.name.encode()), SPLITS.index(split), class_index, image_index])


def _image_scene(spec, rng, class_index):
    """The scene of one image: the class's attributes, the free ones drawn from `rng`."""
    attributes = dict(zip(spec.class_attributes, spec.class_values[class_index]))
    for attribute, choices in spec.free_values.items():
        attributes[attribute] = choices[rng.integers(len(choices))]
    return Scene(**attributes)


def render_split(spec, split, seed=0):
    """Render one split in memory: uint8 images [N, 64, 64, 3] and int labels [N] (class order of spec)."""
    images, labels = [], []
    for class_index in range(len(spec.class_values)):
        for image_index in range(spec.counts[split]):
            rng = _image_rng(spec, seed, split, class_index, image_index)
            images.append(apply_style(render_scene(_image_scene(spec, rng, class_index), rng), spec.style))
            labels.append(class_index)
    return np.stack(images), np.asarray(labels)


def object_mask(spec, split, class_index, image_index, seed=0):
    """The object's pixels in image `image_index` of class `class_index` (file `<split>/<class
    folder>/<image_index:04d>.png`): float32 [64, 64] in {0, 1}, regenerated from the spec and seed."""
    rng = _image_rng(spec, seed, split, class_index, image_index)
    return render_scene_with_mask(_image_scene(spec, rng, class_index), rng)[1]


def generation_record(spec, seed):
    """What a dataset folder was generated from, as plain JSON data (written to GENERATION_FILE)."""
    return json.loads(json.dumps({"generator_version": GENERATOR_VERSION, "seed": seed, "spec": asdict(spec)}))


def read_generation_record(dataset_dir):
    """The record in `dataset_dir`'s GENERATION_FILE, or None when there is none (or it is unreadable)."""
    try:
        with open(osp.join(dataset_dir, GENERATION_FILE)) as file:
            return json.load(file)
    except (OSError, ValueError):
        return None


def current_umask():
    """The process's umask (reading it means setting it, so it is set straight back)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def write_toy_dataset(spec, root, seed=0):
    """Write `spec` under `<root>/<spec.dataset_dir>/` (replacing nothing that exists); returns its path.

    The folder is assembled in a temporary sibling and renamed into place, so a reader never sees a
    half-written dataset. It gets the permissions of an ordinary new folder (the umask's), not the
    owner-only ones of a temporary folder, so the other users of a shared data root can read it.
    """
    target = osp.join(root, spec.dataset_dir)
    if osp.isdir(target):
        return target
    os.makedirs(root, exist_ok=True)
    remove_abandoned_staging(root, spec.dataset_dir)
    staging = tempfile.mkdtemp(prefix=f".{spec.dataset_dir}-{os.getpid()}-", dir=root)
    os.chmod(staging, 0o777 & ~current_umask())
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
        with open(osp.join(staging, GENERATION_FILE), "w") as file:
            json.dump(generation_record(spec, seed), file, indent=1)
        os.rename(staging, target)
    except BaseException as error:  # Ctrl-C included: no half-written staging folder stays behind
        shutil.rmtree(staging, ignore_errors=True)
        if not (isinstance(error, OSError) and osp.isdir(target)):  # else another process won the rename
            raise
    return target


def remove_abandoned_staging(root, dataset_dir):
    """Remove the staging folders `.<dataset_dir>-<pid>-*` in `root` of processes no longer running
    (killed while generating); a running generator's folder is left alone."""
    for entry in os.listdir(root):
        match = re.match(rf"\.{re.escape(dataset_dir)}-(\d+)-", entry)
        if not match or not osp.isdir(osp.join(root, entry)):
            continue
        try:
            os.kill(int(match.group(1)), 0)
        except ProcessLookupError:
            shutil.rmtree(osp.join(root, entry), ignore_errors=True)
            print(f"Removed {osp.join(root, entry)}, left over by an interrupted toy data generation")
        except PermissionError:  # a running process of another user
            pass
