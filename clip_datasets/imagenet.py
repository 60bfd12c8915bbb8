"""ImageNet (Deng et al., 2009) as CoOp uses it, and the base of its test-only variants.

Class names come from `classnames.txt` (`<wnid> <name>` lines, CLIP's names); a class's label is
its line index, which for the official file (sorted wnids) equals CoOp's sorted-folder index.
The val set is the test set (and the validation set). Folders are listed sorted. The full train
listing (1.28M files) is only read when there is no few-shot cache for (NUM_SHOTS, SEED).
"""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, DatasetBase, Datum

from .common import (
    dataset_error,
    dataset_root,
    fetch_or_fail,
    few_shot_cache_path,
    list_folders,
    list_images,
    load_few_shot,
    missing,
    require,
    save_few_shot,
    subsample_classes,
)

CLASSNAMES_DRIVE_ID = "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF"


def read_classnames(path):
    """{wnid: class name} in file order from a `classnames.txt`."""
    classnames = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                wnid, _, name = line.strip().partition(" ")
                classnames[wnid] = name
    return classnames


def read_wnid_folders(dataset, layout, image_dir, classnames):
    """Datums of `image_dir/<wnid>/<image>`: sorted wnid folders labelled 0.., named from `classnames`."""
    items = []
    for label, wnid in enumerate(list_folders(image_dir)):
        if wnid not in classnames:
            raise dataset_error(dataset, f"folder {osp.join(image_dir, wnid)} is not a wnid of classnames.txt", layout)
        folder = osp.join(image_dir, wnid)
        items.extend(
            Datum(impath=osp.join(folder, name), label=label, classname=classnames[wnid])
            for name in list_images(folder)
        )
    return items


@DATASET_REGISTRY.register()
class ImageNet(DatasetBase):
    folder = "imagenet"
    layout = f"""\
imagenet/
    images/train/<wnid>/<image>.JPEG ...   (e.g. train/n01440764/)
    images/val/<wnid>/<image>.JPEG ...     (val images sorted into wnid folders)
    classnames.txt                         (`n01440764 tench` lines; Google Drive id {CLASSNAMES_DRIVE_ID})
"""

    def __init__(self, cfg):
        self.dataset_dir = osp.join(dataset_root(cfg), self.folder)
        self.image_dir = osp.join(self.dataset_dir, "images")
        for path in (self.dataset_dir, osp.join(self.image_dir, "train"), osp.join(self.image_dir, "val")):
            require(path, "ImageNet", self.layout)
        classnames_file = osp.join(self.dataset_dir, "classnames.txt")
        fetch_or_fail(classnames_file, CLASSNAMES_DRIVE_ID, "ImageNet", self.layout)
        classnames = read_classnames(classnames_file)

        test = self.read_folder("val", classnames)
        train = self.read_train(cfg, classnames)
        train, test = subsample_classes(train, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=test, test=test)

    def read_train(self, cfg, classnames):
        """The full train set, or its K-shot sample (cached per seed; ImageNet samples train only)."""
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots < 1:
            return self.read_folder("train", classnames)
        cache = few_shot_cache_path(self.dataset_dir, cfg)
        if cache is not None and osp.isfile(cache):
            return load_few_shot(cache, self.image_dir, "ImageNet", self.layout)["train"]
        train = self.generate_fewshot_dataset(self.read_folder("train", classnames), num_shots=num_shots)
        if cache is not None:
            save_few_shot(cache, self.image_dir, train=train)
        return train

    def read_folder(self, split, classnames):
        """Datums of `images/<split>/<wnid>/`, one folder per line of classnames.txt, labels in file order."""
        split_dir = osp.join(self.image_dir, split)
        folders = set(list_folders(split_dir))
        if not folders and list_images(split_dir):
            raise dataset_error(
                "ImageNet",
                f"{split_dir} holds images directly",
                self.layout,
                "Move each image into a folder named after its wnid (the ILSVRC2012 val ground truth), "
                "e.g. with the widely used valprep.sh script.",
            )
        unlisted = sorted(folders - set(classnames))
        if unlisted:
            raise dataset_error(
                "ImageNet",
                f"{len(unlisted)} folders of {split_dir} are not in classnames.txt, e.g. {unlisted[0]}",
                self.layout,
                "classnames.txt must list every class folder (use the official 1000-class file).",
            )
        items = []
        for label, (wnid, classname) in enumerate(classnames.items()):
            folder = osp.join(split_dir, wnid)
            if wnid not in folders:
                raise missing(
                    "ImageNet", folder, self.layout, f"classnames.txt lists {wnid} but {split_dir} has no such folder."
                )
            items.extend(
                Datum(impath=osp.join(folder, name), label=label, classname=classname) for name in list_images(folder)
            )
        return items


class ImageNetVariant(DatasetBase):
    """A test-only ImageNet variant: train_x and test are the same list, there is no val set.

    NUM_SHOTS does not apply; SUBSAMPLE_CLASSES does. Class names come from `classnames.txt` in the
    variant's folder (CoOp's layout: a copy of ImageNet's) or else from `imagenet/classnames.txt`.
    """

    folder = ""
    image_folder = ""
    layout = ""

    def __init__(self, cfg):
        root = dataset_root(cfg)
        name = type(self).__name__
        self.dataset_dir = osp.join(root, self.folder)
        self.image_dir = osp.join(self.dataset_dir, self.image_folder)
        require(self.dataset_dir, name, self.layout)
        require(self.image_dir, name, self.layout)
        data = self.read_items(read_classnames(self.find_classnames(root)))
        if not data:
            raise dataset_error(name, f"no images found in {self.image_dir}", self.layout)
        (data,) = subsample_classes(data, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=data, test=data)

    def find_classnames(self, root):
        """The variant's classnames.txt, or ImageNet's; download the official file when neither exists."""
        own = osp.join(self.dataset_dir, "classnames.txt")
        for path in (own, osp.join(root, ImageNet.folder, "classnames.txt")):
            if osp.isfile(path):
                return path
        fetch_or_fail(
            own, CLASSNAMES_DRIVE_ID, type(self).__name__, self.layout, "Or copy $DATA/imagenet/classnames.txt there."
        )
        return own

    def read_items(self, classnames):
        """Datums of the variant (by default sorted `<wnid>/` folders labelled 0..)."""
        return read_wnid_folders(type(self).__name__, self.layout, self.image_dir, classnames)
