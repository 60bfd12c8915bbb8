"""StanfordCars (Krause et al., 2013): 196 car models, CoOp's split; class names start with the year."""

import os.path as osp

from scipy.io import loadmat

from dassl_compat import DATASET_REGISTRY, Datum

from .common import SplitFileBenchmark, require, split_trainval


def year_first(classname):
    """`AM General Hummer SUV 2000` -> `2000 AM General Hummer SUV`."""
    *words, year = classname.split(" ")
    return " ".join([year, *words])


@DATASET_REGISTRY.register()
class StanfordCars(SplitFileBenchmark):
    folder = "stanford_cars"
    image_folder = ""  # split paths start with cars_train/ or cars_test/
    split_file = "split_zhou_StanfordCars.json"
    split_drive_id = "1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT"
    layout = """\
stanford_cars/
    cars_train/00001.jpg ...
    cars_test/00001.jpg ...
    devkit/cars_meta.mat, devkit/cars_train_annos.mat
    cars_test_annos_withlabels.mat
    split_zhou_StanfordCars.json
"""

    def generate_split(self, rng):
        meta = osp.join(self.dataset_dir, "devkit", "cars_meta.mat")
        trainval = self.read_annotations(
            "cars_train", osp.join(self.dataset_dir, "devkit", "cars_train_annos.mat"), meta
        )
        test = self.read_annotations("cars_test", osp.join(self.dataset_dir, "cars_test_annos_withlabels.mat"), meta)
        train, val = split_trainval(trainval, rng)
        return train, val, test

    def read_annotations(self, image_folder, annotation_file, meta_file):
        """Datums of a devkit annotation .mat (struct array with `fname` and 1-based `class`)."""
        require(annotation_file, "StanfordCars", self.layout)
        require(meta_file, "StanfordCars", self.layout)
        classnames = [str(name[0]) for name in loadmat(meta_file)["class_names"][0]]
        items = []
        for record in loadmat(annotation_file)["annotations"][0]:
            label = int(record["class"][0, 0]) - 1
            impath = osp.join(self.dataset_dir, image_folder, str(record["fname"][0]))
            items.append(Datum(impath=impath, label=label, classname=year_first(classnames[label])))
        return items
