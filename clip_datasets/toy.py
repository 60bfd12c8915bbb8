"""The procedural toy datasets (`dpt_toyworld.benchmarks`) as registered folder datasets.

ToyFog and ToyDusk read `<DATASET.ROOT>/toy_fog/` and `<DATASET.ROOT>/toy_dusk/` like any
`ImageFolder` (train/val/test class folders), and generate them there on first use: the images are a
pure function of the dataset spec and seed 0, so every machine gets the same files.
`python -m dpt_tools.make_toy_data --root $DATA` generates them ahead of time.
"""
import os.path as osp

from dassl_compat import DATASET_REGISTRY
from dpt_models.errors import UserError
from dpt_toyworld.benchmarks import (
    GENERATION_FILE,
    TOY_DUSK,
    TOY_FOG,
    generation_record,
    read_generation_record,
    write_toy_dataset,
)

from .common import missing
from .folder import ImageFolder

TOY_DATA_SEED = 0


class ToyDataset(ImageFolder):
    """A toy dataset: an ImageFolder that writes its own images when its folder is missing."""

    spec = None  # the dpt_toyworld.benchmarks.ToyDatasetSpec it reads

    def prepare(self):
        if osp.isdir(self.dataset_dir):
            self.check_generation()
            return
        root = osp.dirname(self.dataset_dir)
        print(f"{self.spec.name} not found at {self.dataset_dir}: generating it (deterministic, seed {TOY_DATA_SEED})")
        try:
            write_toy_dataset(self.spec, root, seed=TOY_DATA_SEED)
        except OSError as error:
            raise missing(self.spec.name, self.dataset_dir, self.layout, f"Generating it failed ({error}). "
                          + self.missing_hint()) from error

    def check_generation(self):
        """A folder generated from another spec, seed or dpt_toyworld version is an error, not a silent mix."""
        found = read_generation_record(self.dataset_dir)
        if found != generation_record(self.spec, TOY_DATA_SEED):
            what = "has no readable " + GENERATION_FILE if found is None else "was generated from another spec or seed"
            raise UserError(
                f"{self.dataset_dir} {what}: it does not hold this version of {self.spec.name}. "
                f"Delete the folder; it is generated again on first use."
            )

    def missing_hint(self):
        root = osp.dirname(self.dataset_dir)
        return f"Generate it with: python -m dpt_tools.make_toy_data --root {root}"


@DATASET_REGISTRY.register()
class ToyFog(ToyDataset):
    """16 classes "<size> <colour>" (small/large x 8 colours), any shape and pattern, seen through fog."""

    folder = TOY_FOG.dataset_dir
    spec = TOY_FOG


@DATASET_REGISTRY.register()
class ToyDusk(ToyDataset):
    """The 16 classes of ToyFog, any shape and pattern, seen at dusk (dim)."""

    folder = TOY_DUSK.dataset_dir
    spec = TOY_DUSK
