"""ImageNetV2 (Recht et al., 2019), matched-frequency: a new test set for the 1000 ImageNet classes.

Its folders are numbered: folder `i` holds class `i`, the i-th line of classnames.txt.
"""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, Datum

from .common import dataset_error, list_folders, list_images
from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    folder = "imagenetv2"
    image_folder = "imagenetv2-matched-frequency-format-val"
    layout = """\
imagenetv2/
    imagenetv2-matched-frequency-format-val/0/<image>.jpeg ... 999/   (folder i = line i of classnames.txt)
    classnames.txt                                                    (a copy of imagenet/classnames.txt)
"""

    def read_items(self, classnames):
        expected = [str(label) for label in range(len(classnames))]
        found = list_folders(self.image_dir)
        if sorted(found) != sorted(expected):
            raise dataset_error(
                "ImageNetV2",
                f"{self.image_dir} has {len(found)} class folders, expected folders 0..{len(classnames) - 1} "
                f"(one per line of classnames.txt)",
                self.layout,
            )
        items = []
        for label, classname in enumerate(classnames.values()):
            folder = osp.join(self.image_dir, str(label))
            items.extend(
                Datum(impath=osp.join(folder, name), label=label, classname=classname) for name in list_images(folder)
            )
        return items
