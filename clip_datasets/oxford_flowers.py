"""OxfordFlowers (Flowers102, Nilsback & Zisserman, 2008): 102 flower species, CoOp's split."""

import os.path as osp

from scipy.io import loadmat

from dassl_compat import DATASET_REGISTRY, Datum, read_json

from .common import SplitFileBenchmark, fetch_or_fail, require

CAT_TO_NAME_DRIVE_ID = "1AkcxCXeK_RCGCEC_GvmWxjcjaNhu-at0"


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitFileBenchmark):
    folder = "oxford_flowers"
    image_folder = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
    split_drive_id = "1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT"
    layout = """\
oxford_flowers/
    jpg/image_00001.jpg ...
    imagelabels.mat
    cat_to_name.json
    split_zhou_OxfordFlowers.json
"""

    def generate_split(self, rng):
        """50% train, 20% val, 30% test per class, classes in order of first appearance in imagelabels.mat."""
        label_file = osp.join(self.dataset_dir, "imagelabels.mat")
        names_file = osp.join(self.dataset_dir, "cat_to_name.json")
        require(label_file, "OxfordFlowers", self.layout)
        fetch_or_fail(names_file, CAT_TO_NAME_DRIVE_ID, "OxfordFlowers", self.layout)
        cat_to_name = read_json(names_file)

        impaths_by_class = {}
        for index, class_id in enumerate(loadmat(label_file)["labels"][0]):
            impath = osp.join(self.image_dir, f"image_{index + 1:05d}.jpg")
            impaths_by_class.setdefault(int(class_id), []).append(impath)

        train, val, test = [], [], []
        for class_id, impaths in impaths_by_class.items():
            rng.shuffle(impaths)
            n_train = round(len(impaths) * 0.5)
            n_val = round(len(impaths) * 0.2)
            cut = (
                (train, impaths[:n_train]),
                (val, impaths[n_train : n_train + n_val]),
                (test, impaths[n_train + n_val :]),
            )
            for split, paths in cut:
                split.extend(Datum(impath=p, label=class_id - 1, classname=cat_to_name[str(class_id)]) for p in paths)
        return train, val, test
