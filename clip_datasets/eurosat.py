"""EuroSAT (Helber et al., 2019): 10 land-use classes of Sentinel-2 RGB tiles, CoOp's split and class names."""

from dassl_compat import DATASET_REGISTRY

from .common import SplitFileBenchmark, split_class_folders

NEW_CLASSNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitFileBenchmark):
    folder = "eurosat"
    image_folder = "2750"
    split_file = "split_zhou_EuroSAT.json"
    split_drive_id = "1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o"
    layout = """\
eurosat/
    2750/<class>/<class>_1.jpg ...   (AnnualCrop, Forest, ..., SeaLake)
    split_zhou_EuroSAT.json
"""
    rename = NEW_CLASSNAMES

    def generate_split(self, rng):
        return split_class_folders(self.image_dir, rng, rename=NEW_CLASSNAMES)
