"""DescribableTextures (DTD, Cimpoi et al., 2014): 47 texture classes, CoOp's split."""

from dassl_compat import DATASET_REGISTRY

from .common import SplitFileBenchmark, split_class_folders


@DATASET_REGISTRY.register()
class DescribableTextures(SplitFileBenchmark):
    folder = "dtd"
    image_folder = "images"
    split_file = "split_zhou_DescribableTextures.json"
    split_drive_id = "1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x"
    layout = """\
dtd/
    images/<class>/<class>_0001.jpg ...
    split_zhou_DescribableTextures.json
"""

    def generate_split(self, rng):
        return split_class_folders(self.image_dir, rng)
