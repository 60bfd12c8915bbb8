"""Caltech101 (Fei-Fei et al., 2004): 100 object classes, CoOp's split (background classes dropped)."""

from dassl_compat import DATASET_REGISTRY

from .common import SplitFileBenchmark, split_class_folders

IGNORED = ("BACKGROUND_Google", "Faces_easy")
NEW_CLASSNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitFileBenchmark):
    folder = "caltech-101"
    image_folder = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    split_drive_id = "1hyarUivQE36mY6jSomru6Fjd-JzwcCzN"
    layout = """\
caltech-101/
    101_ObjectCategories/<class>/image_0001.jpg ...
    split_zhou_Caltech101.json
"""
    rename = NEW_CLASSNAMES

    def generate_split(self, rng):
        return split_class_folders(self.image_dir, rng, ignored=IGNORED, rename=NEW_CLASSNAMES)
