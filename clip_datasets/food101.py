"""Food101 (Bossard et al., 2014): 101 dishes, CoOp's split."""

from dassl_compat import DATASET_REGISTRY

from .common import SplitFileBenchmark, split_class_folders


@DATASET_REGISTRY.register()
class Food101(SplitFileBenchmark):
    folder = "food-101"
    image_folder = "images"
    split_file = "split_zhou_Food101.json"
    split_drive_id = "1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl"
    layout = """\
food-101/
    images/<class>/<id>.jpg ...
    split_zhou_Food101.json
"""

    def generate_split(self, rng):
        return split_class_folders(self.image_dir, rng)
