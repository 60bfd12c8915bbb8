"""FGVCAircraft (Maji et al., 2013): 100 aircraft variants, the official train/val/test lists (no split file)."""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, DatasetBase
from dpt_models.errors import UserError

from .common import (
    check_images_before_training,
    dataset_root,
    require,
    sample_few_shot,
    subsample_classes,
    to_datums,
)


@DATASET_REGISTRY.register()
class FGVCAircraft(DatasetBase):
    folder = "fgvc_aircraft"
    layout = """\
fgvc_aircraft/          (the data/ folder of fgvc-aircraft-2013b.tar.gz, renamed)
    images/1025794.jpg ...
    variants.txt
    images_variant_train.txt, images_variant_val.txt, images_variant_test.txt
"""

    def __init__(self, cfg):
        self.dataset_dir = osp.join(dataset_root(cfg), self.folder)
        self.image_dir = osp.join(self.dataset_dir, "images")
        require(self.dataset_dir, "FGVCAircraft", self.layout)
        require(self.image_dir, "FGVCAircraft", self.layout)

        variants_file = osp.join(self.dataset_dir, "variants.txt")
        require(variants_file, "FGVCAircraft", self.layout)
        with open(variants_file) as f:
            variants = [line.strip() for line in f if line.strip()]
        label_of = {variant: label for label, variant in enumerate(variants)}

        train, val, test = (
            self.read_list(f"images_variant_{split}.txt", label_of) for split in ("train", "val", "test")
        )
        train, val = sample_few_shot(self, cfg, train, val, self.image_dir, self.layout)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        check_images_before_training("FGVCAircraft", cfg.DATASET.NUM_SHOTS, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_list(self, list_file, label_of):
        """Datums of an `images_variant_*.txt` list (`<image id> <variant name>` lines)."""
        path = osp.join(self.dataset_dir, list_file)
        require(path, "FGVCAircraft", self.layout)
        entries = []
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    image_id, _, variant = line.strip().partition(" ")
                    if variant not in label_of:
                        raise UserError(
                            f"{path}, line {number}: {variant!r} is not a variant of variants.txt. Use the lists "
                            "and variants.txt of one fgvc-aircraft-2013b download (see DATASETS.md)."
                        )
                    entries.append((osp.join(self.image_dir, image_id + ".jpg"), label_of[variant], variant))
        return to_datums("FGVCAircraft", self.layout, entries)
