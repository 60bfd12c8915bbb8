"""Registered datasets: the 11 few-shot benchmarks, the ImageNet variants and folder datasets.

Importing this package registers every dataset in the active DATASET_REGISTRY.
"""
from . import (
    caltech101,  # noqa: F401
    dtd,  # noqa: F401
    eurosat,  # noqa: F401
    fgvc_aircraft,  # noqa: F401
    folder,  # noqa: F401
    food101,  # noqa: F401
    imagenet,  # noqa: F401
    imagenet_a,  # noqa: F401
    imagenet_r,  # noqa: F401
    imagenet_sketch,  # noqa: F401
    imagenetv2,  # noqa: F401
    oxford_flowers,  # noqa: F401
    oxford_pets,  # noqa: F401
    stanford_cars,  # noqa: F401
    sun397,  # noqa: F401
    toy,  # noqa: F401
    ucf101,  # noqa: F401
)
