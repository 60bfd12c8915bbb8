"""ImageNet (Deng et al., 2009) as CoOp uses it, and the base of its test-only variants.

The classes are the wnid folders present in `images/train/`, as in CoOp's reader: a class's label
is its index among the sorted folders, its name comes from `classnames.txt` (`<wnid> <name>` lines,
CLIP's names). With all 1000 folders this is the official file's order; a subset of the folders
(ImageNet-100 style) is a dataset of those classes. `images/val/` holds the same classes (or some of
them) and is the test set (and the validation set). The full train listing (1.28M files) is only
read when there is no few-shot cache for (NUM_SHOTS, SEED).
"""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, DatasetBase, Datum

from .common import (
    check_images_before_training,
    dataset_error,
    dataset_root,
    fetch_or_fail,
    few_shot_cache_path,
    folder_fingerprint,
    list_folders,
    list_images,
    load_few_shot,
    report_num_shots,
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
        classes = self.class_folders("train", classnames)
        if len(classes) < len(classnames):
            print(f"ImageNet: {len(classes)} of the {len(classnames)} classes of classnames.txt have a train folder")
        labels = {wnid: label for label, wnid in enumerate(classes)}

        test = self.read_folder("val", labels, classnames)
        train = self.read_train(cfg, labels, classnames)
        train, test = subsample_classes(train, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        check_images_before_training("ImageNet", cfg.DATASET.NUM_SHOTS, train, [], test)
        super().__init__(train_x=train, val=test, test=test)

    def class_folders(self, split, classnames):
        """The sorted wnid folders of `images/<split>/`, each of which classnames.txt must name."""
        split_dir = osp.join(self.image_dir, split)
        folders = list_folders(split_dir)
        if not folders and list_images(split_dir):
            raise dataset_error(
                "ImageNet",
                f"{split_dir} holds images directly",
                self.layout,
                "Move each image into a folder named after its wnid (the ILSVRC2012 val ground truth), "
                "e.g. with the widely used valprep.sh script.",
            )
        if not folders:
            raise dataset_error("ImageNet", f"{split_dir} has no class folders", self.layout)
        unlisted = [folder for folder in folders if folder not in classnames]
        if unlisted:
            raise dataset_error(
                "ImageNet",
                f"{len(unlisted)} folders of {split_dir} are not in classnames.txt, e.g. {unlisted[0]}",
                self.layout,
                "classnames.txt must list every class folder (use the official 1000-class file).",
            )
        return folders

    def read_train(self, cfg, labels, classnames):
        """The full train set, or its K-shot sample (cached per seed; ImageNet samples train only)."""
        num_shots = cfg.DATASET.NUM_SHOTS
        cache = few_shot_cache_path(self.dataset_dir, cfg)
        train_dir = osp.join(self.image_dir, "train")
        fingerprint = folder_fingerprint(osp.join(train_dir, wnid) for wnid in labels)
        cached = load_few_shot(cache, self.image_dir, "ImageNet", self.layout, fingerprint) if num_shots >= 1 else None
        if cached is not None:
            return cached["train"]
        train = self.read_folder("train", labels, classnames)
        report_num_shots("ImageNet", train, num_shots)
        if num_shots < 1:
            return train
        train = self.generate_fewshot_dataset(train, num_shots=num_shots)
        if cache is not None:
            save_few_shot(cache, self.image_dir, fingerprint, train=train)
        return train

    def read_folder(self, split, labels, classnames):
        """Datums of `images/<split>/<wnid>/`, labelled by `labels` ({wnid: label} of the train folders)."""
        split_dir = osp.join(self.image_dir, split)
        folders = self.class_folders(split, classnames)
        extra = [folder for folder in folders if folder not in labels]
        if extra:
            raise dataset_error(
                "ImageNet",
                f"{len(extra)} class folders of {split_dir} have no train folder, e.g. {extra[0]}",
                self.layout,
                f"The classes are the folders of {osp.join(self.image_dir, 'train')}: add their training images "
                "or remove these folders.",
            )
        return [
            Datum(impath=osp.join(split_dir, wnid, name), label=labels[wnid], classname=classnames[wnid])
            for wnid in folders
            for name in list_images(osp.join(split_dir, wnid))
        ]


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
        check_images_before_training(name, cfg.DATASET.NUM_SHOTS, [], [], data)
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
