"""OxfordPets (Parkhi et al., 2012): 37 cat and dog breeds, CoOp's split."""

import os.path as osp

from dassl_compat import DATASET_REGISTRY, Datum

from .common import SplitFileBenchmark, require, split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(SplitFileBenchmark):
    folder = "oxford_pets"
    image_folder = "images"
    split_file = "split_zhou_OxfordPets.json"
    split_drive_id = "1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs"
    layout = """\
oxford_pets/
    images/Abyssinian_1.jpg ...
    annotations/trainval.txt, annotations/test.txt
    split_zhou_OxfordPets.json
"""

    def generate_split(self, rng):
        trainval = self.read_annotations("trainval.txt")
        test = self.read_annotations("test.txt")
        train, val = split_trainval(trainval, rng)
        return train, val, test

    def read_annotations(self, list_file):
        """Datums of an annotation list (`<image> <class id> <species> <breed id>` lines).

        The class name is the breed, read off the image name (`american_bulldog_12` -> `american_bulldog`).
        """
        path = osp.join(self.dataset_dir, "annotations", list_file)
        require(path, "OxfordPets", self.layout)
        items = []
        with open(path) as f:
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue
                imname, class_id = line.split()[:2]
                breed = imname.rsplit("_", 1)[0].lower()
                impath = osp.join(self.image_dir, imname + ".jpg")
                items.append(Datum(impath=impath, label=int(class_id) - 1, classname=breed))
        return items
