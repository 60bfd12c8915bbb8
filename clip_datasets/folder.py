"""ImageFolder: any `<DATASET.ROOT>/<DATASET.FOLDER>/` of class folders, as a registered dataset.

Two layouts are read:
- split folders: `train/<class>/<image>` and `test/<class>/<image>` (and `val/<class>/<image>`
  when present; otherwise the dataset has no validation set);
- one folder of classes: `<class>/<image>`, split per class (sorted listings shuffled by a fixed
  generator, 50% train / 20% val / 30% test) the first time and saved as `split_folder.json` in the
  split_zhou format, which later runs read back.
Labels are the sorted class folder names; class names are the folder names with `_` -> space.
Few-shot sampling (cached under `split_fewshot/`) and base/new subsampling are those of the
benchmarks (`clip_datasets.common`).
"""
import os.path as osp
import random

from dassl_compat import DATASET_REGISTRY, DatasetBase, Datum
from dpt_models.errors import UserError

from .common import (
    check_images_before_training,
    dataset_root,
    list_folders,
    list_images,
    read_split,
    require,
    sample_few_shot,
    split_class_folders,
    subsample_classes,
    write_split,
)

SPLIT_SUBFOLDERS = ("train", "val", "test")
FEW_SHOT_FOLDER = "split_fewshot"


def classname_of(folder):
    """The class name of a class folder: underscores become spaces."""
    return folder.replace("_", " ")


@DATASET_REGISTRY.register()
class ImageFolder(DatasetBase):
    """A folder of class folders under DATASET.ROOT, named by DATASET.FOLDER (see the module docstring)."""

    folder = ""  # subclasses fix their folder; "" means DATASET.FOLDER
    split_file = "split_folder.json"
    layout = """\
<DATASET.FOLDER>/
    train/<class_name>/<image>    (and test/<class_name>/<image>, optionally val/<class_name>/<image>)
or
<DATASET.FOLDER>/
    <class_name>/<image>          (split 50/20/30 per class into split_folder.json on first use)
Class names are the folder names with '_' read as a space.
"""

    def __init__(self, cfg):
        self.dataset_dir = osp.join(dataset_root(cfg), self.folder_name(cfg))
        self.prepare()
        require(self.dataset_dir, type(self).__name__, self.layout, self.missing_hint())

        train, val, test = self.read_data()
        train, val = sample_few_shot(self, cfg, train, val, self.dataset_dir, self.layout)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        check_images_before_training(type(self).__name__, cfg.DATASET.NUM_SHOTS, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def folder_name(self, cfg):
        """The dataset's folder under DATASET.ROOT."""
        folder = self.folder or cfg.DATASET.FOLDER
        if not folder:
            raise UserError(
                "ImageFolder needs DATASET.FOLDER: the folder under DATASET.ROOT that holds the class folders "
                "(e.g. `DATASET.FOLDER my_data` on the command line)"
            )
        return folder

    def prepare(self):
        """Hook run before the folder is read (toy datasets generate themselves here)."""

    def missing_hint(self):
        """Extra advice for the missing-folder error."""
        return ""

    def read_data(self):
        """train, val, test Datums from whichever layout the folder has."""
        if all(osp.isdir(osp.join(self.dataset_dir, split)) for split in ("train", "test")):
            return self.read_split_folders()
        split_path = osp.join(self.dataset_dir, self.split_file)
        if osp.isfile(split_path):
            return read_split(split_path, self.dataset_dir, type(self).__name__, self.layout)
        folders = [f for f in list_folders(self.dataset_dir) if f not in SPLIT_SUBFOLDERS + (FEW_SHOT_FOLDER,)]
        if not folders:
            raise UserError(
                f"{type(self).__name__}: no class folders in {self.dataset_dir}. Put each class's images in a "
                f"folder named after the class. Expected:\n{self.layout}"
            )
        # A private generator: the split does not depend on, nor disturb, the run's seeded `random`.
        train, val, test = split_class_folders(
            self.dataset_dir,
            random.Random(0),
            ignored=SPLIT_SUBFOLDERS + (FEW_SHOT_FOLDER,),
            rename={folder: classname_of(folder) for folder in folders},
        )
        write_split(train, val, test, split_path, self.dataset_dir)
        return train, val, test

    def read_split_folders(self):
        """Datums of train/, val/ (empty when absent) and test/, labelled by the sorted train class folders."""
        train_dir = osp.join(self.dataset_dir, "train")
        classes = list_folders(train_dir)
        empty = [folder for folder in classes if not list_images(osp.join(train_dir, folder))]
        if empty:
            raise UserError(
                f"{type(self).__name__}: {len(empty)} class folder(s) of {train_dir} hold no images, e.g. "
                f"{osp.join(train_dir, empty[0])}. Every class folder of train/ is a class: add its training "
                "images, or remove the folder (and its val/ and test/ folders)."
            )
        labels = {folder: label for label, folder in enumerate(classes)}
        splits = []
        for split in SPLIT_SUBFOLDERS:
            split_dir = osp.join(self.dataset_dir, split)
            if not osp.isdir(split_dir):
                splits.append([])
                continue
            unknown = sorted(set(list_folders(split_dir)) - set(labels))
            if unknown:
                raise UserError(
                    f"{split_dir} has class folders that {train_dir} lacks: {', '.join(unknown)}. The classes are "
                    "train/'s folders: add the class to train/ or remove these folders."
                )
            splits.append([
                Datum(impath=osp.join(split_dir, folder, name), label=labels[folder], classname=classname_of(folder))
                for folder in list_folders(split_dir)
                for name in list_images(osp.join(split_dir, folder))
            ])
        if not splits[0]:
            raise UserError(
                f"{type(self).__name__}: no class folders under {train_dir}. Expected:\n{self.layout}"
            )
        return tuple(splits)
