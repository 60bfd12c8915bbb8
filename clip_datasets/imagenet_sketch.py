"""ImageNet-Sketch (Wang et al., 2019): sketches of the 1000 ImageNet classes, test only."""

from dassl_compat import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetSketch(ImageNetVariant):
    folder = "imagenet-sketch"
    image_folder = "images"
    layout = """\
imagenet-sketch/
    images/<wnid>/<image>.JPEG ...   (1000 wnid folders)
    classnames.txt                   (a copy of imagenet/classnames.txt)
"""
