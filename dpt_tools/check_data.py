"""Check that the benchmarks under a data root are in place: `dpt-check-data --root $DATA [NAME ...]`.

For each dataset it prints whether it was found, its number of classes and images per split,
how many listed images are missing on disk, and, when something is wrong, what to fix (the
reader's own error: the missing path, the expected layout, where to download). Datasets can be
named by DATASET.NAME (OxfordPets) or config stem (oxford_pets); the default is all 17 (the 15
benchmarks and the two toy datasets). Every image of the test split gets a header check.

A missing split file is downloaded from Google Drive when possible, as a training run would do; a
missing toy dataset is reported, not generated (`python -m dpt_tools.make_toy_data --root $DATA` makes it).
Exit status 1 when a named dataset is missing or broken, or (without names) when a dataset that
is present is broken; 2 when the command itself is wrong (no such --root, an unknown name).
"""

import argparse
import contextlib
import io
import os.path as osp
import sys

from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools.config_files import shipped_config_root

CONFIG_DIR = osp.join(shipped_config_root(), "datasets")

BENCHMARKS = {
    "imagenet": "ImageNet",
    "caltech101": "Caltech101",
    "oxford_pets": "OxfordPets",
    "stanford_cars": "StanfordCars",
    "oxford_flowers": "OxfordFlowers",
    "food101": "Food101",
    "fgvc_aircraft": "FGVCAircraft",
    "sun397": "SUN397",
    "dtd": "DescribableTextures",
    "eurosat": "EuroSAT",
    "ucf101": "UCF101",
    "imagenetv2": "ImageNetV2",
    "imagenet_sketch": "ImageNetSketch",
    "imagenet_a": "ImageNetA",
    "imagenet_r": "ImageNetR",
    "toy_fog": "ToyFog",
    "toy_dusk": "ToyDusk",
}


def resolve(names):
    """Config stems for `names` (stems or DATASET.NAMEs, any case); all benchmarks when empty."""
    if not names:
        return list(BENCHMARKS)
    lookup = {key.lower(): stem for stem, name in BENCHMARKS.items() for key in (stem, name)}
    unknown = [n for n in names if n.lower() not in lookup]
    if unknown:
        raise UserError(
            f"Unknown dataset(s): {', '.join(unknown)}. Known: {', '.join(BENCHMARKS.values())} "
            f"(or their config names: {', '.join(BENCHMARKS)})."
        )
    return [lookup[n.lower()] for n in names]


def build(root, stem):
    """Build a benchmark as train.py would (all shots, all classes), its log lines kept quiet."""
    import clip_datasets  # noqa: F401  (registers the datasets)
    from dassl_compat import build_dataset, get_cfg_default
    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(osp.join(CONFIG_DIR, f"{stem}.yaml"))
    cfg.DATASET.ROOT = root
    with contextlib.redirect_stdout(io.StringIO()):
        return build_dataset(cfg)


def check(root, stem):
    """Print one dataset's report; return "ok", "missing" (folder absent) or "broken"."""
    from clip_datasets.toy import ToyDataset
    from dassl_compat import DATASET_REGISTRY

    name = BENCHMARKS[stem]
    reader = DATASET_REGISTRY.get(name)
    folder_found = osp.isdir(osp.join(root, reader.folder))
    if issubclass(reader, ToyDataset) and not folder_found:  # building it would generate it
        print(f"{name:20s} missing")
        print(f"    not found: {osp.join(root, reader.folder)}. Generate it with: "
              f"python -m dpt_tools.make_toy_data --root {root} (or let the first run generate it)")
        return "missing"
    try:
        dataset = build(root, stem)
    except UserError as error:
        status = "broken" if folder_found else "missing"
        print(f"{name:20s} {status}")
        print("    " + str(error).replace("\n", "\n    "))
        return status
    except Exception as error:  # any other reader failure: report it as broken, with its message
        print(f"{name:20s} broken: {type(error).__name__}: {error}")
        return "broken"

    splits = [("train", dataset.train_x), ("val", dataset.val), ("test", dataset.test)]
    sizes = "  ".join(
        f"{key} {len(items):,}" for key, items in splits if items and not (key == "train" and items is dataset.test)
    )
    print(f"{name:20s} found    {dataset.num_classes:,} classes  {sizes}")
    images = {item.impath for _, items in splits if items for item in items}
    absent = sorted(path for path in images if not osp.isfile(path))
    if absent:
        print(f"    {len(absent):,} of {len(images):,} images missing, e.g. {absent[0]}")
        print(
            "    Fix: re-extract the image archive (see DATASETS.md) or replace the split file with the official one."
        )
        return "broken"
    return "ok"


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True, help="the data root ($DATA) that holds the dataset folders")
    parser.add_argument("names", nargs="*", help="datasets to check (DATASET.NAME or config stem); default: all")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    with exit_on_user_error(args.debug):
        return check_root(osp.abspath(osp.expanduser(args.root)), args.names)


def check_root(root, names):
    """Report the datasets `names` (all when empty) under `root`; the exit status (0 ok, 1 to fix)."""
    if not osp.isdir(root):
        raise UserError(
            f"--root {root}: no such folder. Point --root at the folder that holds the dataset folders ($DATA, "
            f"see DATASETS.md); python -m dpt_tools.make_toy_data --root {root} creates it with the toy datasets."
        )
    stems = resolve(names)

    print(f"Data root: {root}")
    statuses = {stem: check(root, stem) for stem in stems}
    failed = [s for s, status in statuses.items() if status == "broken" or (names and status == "missing")]
    found = sum(status == "ok" for status in statuses.values())
    print(
        f"{found} of {len(stems)} datasets ready"
        + (f"; to fix: {', '.join(BENCHMARKS[s] for s in failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
