"""ImageNet-R (Hendrycks et al., 2021): renditions (art, cartoons, ...) of 200 ImageNet classes, test only.

Labels are 0..199 over the sorted wnid folders (CoOp's convention), not ImageNet's 1000 indices.
"""

from dassl_compat import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetR(ImageNetVariant):
    folder = "imagenet-rendition"
    image_folder = "imagenet-r"
    layout = """\
imagenet-rendition/
    imagenet-r/<wnid>/<image>.jpg ...   (200 wnid folders; README.txt is ignored)
    classnames.txt                      (a copy of imagenet/classnames.txt)
"""
