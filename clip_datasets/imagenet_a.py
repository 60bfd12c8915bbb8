"""ImageNet-A (Hendrycks et al., 2021): natural adversarial examples of 200 ImageNet classes, test only.

Labels are 0..199 over the sorted wnid folders (CoOp's convention), not ImageNet's 1000 indices.
"""

from dassl_compat import DATASET_REGISTRY

from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetA(ImageNetVariant):
    folder = "imagenet-adversarial"
    image_folder = "imagenet-a"
    layout = """\
imagenet-adversarial/
    imagenet-a/<wnid>/<image>.jpg ...   (200 wnid folders; README.txt is ignored)
    classnames.txt                      (a copy of imagenet/classnames.txt)
"""
