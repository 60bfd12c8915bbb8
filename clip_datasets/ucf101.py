"""UCF101 (Soomro et al., 2012): 101 actions as middle video frames, CoOp's split.

The frame folders and class names split the list files' CamelCase action names with
underscores (`ApplyEyeMakeup` -> `Apply_Eye_Makeup`); the frame file names keep CamelCase.
"""

import os.path as osp
import re

from dassl_compat import DATASET_REGISTRY, Datum

from .common import SplitFileBenchmark, require, split_trainval

MIDFRAMES_DRIVE_ID = "10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O"


def underscore_words(action):
    """`ApplyEyeMakeup` -> `Apply_Eye_Makeup` (a new word at every capital letter)."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(SplitFileBenchmark):
    folder = "ucf101"
    image_folder = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
    split_drive_id = "1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y"
    layout = f"""\
ucf101/
    UCF-101-midframes/Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg ...
        (UCF-101-midframes.zip, Google Drive id {MIDFRAMES_DRIVE_ID})
    ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt   (only to generate a split)
    split_zhou_UCF101.json
"""

    def generate_split(self, rng):
        list_dir = osp.join(self.dataset_dir, "ucfTrainTestlist")
        class_file = osp.join(list_dir, "classInd.txt")
        require(class_file, "UCF101", self.layout)
        label_of = {}
        with open(class_file) as f:
            for line in f:
                if line.strip():
                    class_id, action = line.split()
                    label_of[action] = int(class_id) - 1
        trainval = self.read_list(osp.join(list_dir, "trainlist01.txt"), label_of)
        test = self.read_list(osp.join(list_dir, "testlist01.txt"), label_of)
        train, val = split_trainval(trainval, rng)
        return train, val, test

    def read_list(self, path, label_of):
        """Datums of a list file (`ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi [class id]` lines)."""
        require(path, "UCF101", self.layout)
        items = []
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                action, video = line.split()[0].split("/")
                folder = underscore_words(action)
                impath = osp.join(self.image_dir, folder, osp.splitext(video)[0] + ".jpg")
                items.append(Datum(impath=impath, label=label_of[action], classname=folder))
        return items
