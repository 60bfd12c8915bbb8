"""SUN397 (Xiao et al., 2010): 397 scene categories, CoOp's split; `/b/bakery/shop` is named `shop bakery`."""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, Datum

from .common import SplitFileBenchmark, require, split_trainval


def scene_name(category):
    """`b/bakery/shop` -> `shop bakery`: drop the letter folder, put qualifiers (indoor, outdoor, shop) first."""
    return " ".join(category.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(SplitFileBenchmark):
    folder = "sun397"
    image_folder = "SUN397"
    split_file = "split_zhou_SUN397.json"
    split_drive_id = "1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq"
    layout = """\
sun397/
    SUN397/a/abbey/sun_aaalbzqrimafwbiv.jpg ...
    ClassName.txt, Training_01.txt, Testing_01.txt   (from Partitions.zip)
    split_zhou_SUN397.json
"""

    def generate_split(self, rng):
        class_file = osp.join(self.dataset_dir, "ClassName.txt")
        require(class_file, "SUN397", self.layout)
        with open(class_file) as f:
            categories = [line.strip().lstrip("/") for line in f if line.strip()]
        label_of = {category: label for label, category in enumerate(categories)}
        trainval = self.read_partition("Training_01.txt", label_of)
        test = self.read_partition("Testing_01.txt", label_of)
        train, val = split_trainval(trainval, rng)
        return train, val, test

    def read_partition(self, list_file, label_of):
        """Datums of a partition file (`/a/abbey/sun_x.jpg` lines)."""
        path = osp.join(self.dataset_dir, list_file)
        require(path, "SUN397", self.layout)
        items = []
        with open(path) as f:
            for line in f:
                relpath = line.strip().lstrip("/")
                if not relpath:
                    continue
                category = osp.dirname(relpath)
                impath = osp.join(self.image_dir, relpath)
                items.append(Datum(impath=impath, label=label_of[category], classname=scene_name(category)))
        return items
