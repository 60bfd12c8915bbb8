"""Image transforms named as in Dassl's INPUT.TRANSFORMS: the ones CLIP prompt tuning uses."""
from torchvision.transforms import (
    CenterCrop,
    Compose,
    InterpolationMode,
    Normalize,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ToTensor,
)

from ..errors import UserError

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}

AVAILABLE_TRANSFORMS = ("random_resized_crop", "random_flip", "center_crop", "normalize")


def build_transform(cfg, is_train=True, choices=None):
    """Train: random_resized_crop / random_flip as listed, then tensor + normalize.
    Test: resize the short side to max(INPUT.SIZE), center crop, tensor + normalize."""
    choices = list(choices if choices is not None else cfg.INPUT.TRANSFORMS)
    unknown = [c for c in choices if c not in AVAILABLE_TRANSFORMS]
    if unknown:
        raise UserError(
            f"Unknown INPUT.TRANSFORMS {unknown}: the bundled engine supports {list(AVAILABLE_TRANSFORMS)}"
        )
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise UserError(
            f"Unknown INPUT.INTERPOLATION {cfg.INPUT.INTERPOLATION!r}: choose one of {list(INTERPOLATION_MODES)}"
        )
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    tfms = []
    if is_train:
        if "random_resized_crop" in choices:
            tfms.append(RandomResizedCrop(size, scale=tuple(cfg.INPUT.RRCROP_SCALE), interpolation=interp))
        else:
            tfms += [Resize(max(size), interpolation=interp), CenterCrop(size)]
        if "random_flip" in choices:
            tfms.append(RandomHorizontalFlip())
    else:
        tfms += [Resize(max(size), interpolation=interp), CenterCrop(size)]
    tfms.append(ToTensor())
    if "normalize" in choices:
        tfms.append(Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD))
    return Compose(tfms)
