"""What the benchmark readers share: split files, the few-shot cache, base/new classes, clear errors.

A benchmark's split file `split_zhou_<Name>.json` holds `{"train": [[rel_path, label, classname], ...],
"val": ..., "test": ...}` with paths relative to the dataset's image folder. The few-shot cache
`<dataset_dir>/split_fewshot/shot_<K>-seed_<seed>.json` has the same format (train and val only)
plus the fingerprint of the dataset it was drawn from (classes and file counts; for ImageNet the
class folders' modification times, as listing its train set is slow), so it is plain data, readable
by hand, survives moving the data folder, and is sampled again when the data change.

Missing files raise `DatasetNotFoundError`, whose message names the dataset, the missing path, the
expected layout and what to do; other bad data (a malformed split file, an empty class folder,
unreadable images) raises a `UserError` naming the file. Image files are checked cheaply before
training: the first image of every class in every split exists, and every image of the few-shot
sample and of the test split opens as an image (a header check, `check_image_files`).
"""

import json
import math
import os
import os.path as osp
import random
from collections import Counter

from PIL import Image, UnidentifiedImageError

from dassl_compat import DatasetBase, Datum, read_json, write_json
from dpt_models.errors import UserError

DRIVE_URL = "https://drive.google.com/file/d/{}/view"


class DatasetNotFoundError(UserError, FileNotFoundError):
    """A dataset folder or file is missing or misplaced; the message says which, where it goes and how to get it."""


def dataset_root(cfg):
    """DATASET.ROOT as an absolute path, with a clear error when it is unset."""
    if not cfg.DATASET.ROOT:
        raise DatasetNotFoundError(
            "DATASET.ROOT is empty: pass --root $DATA (the folder that holds all datasets, see DATASETS.md)"
        )
    return osp.abspath(osp.expanduser(cfg.DATASET.ROOT))


def dataset_error(dataset, problem, layout, hint=""):
    """The error for a problem with the files of `dataset`, showing the layout they should be in."""
    lines = [f"{dataset}: {problem}", "Expected layout under DATASET.ROOT:", layout.rstrip()]
    if hint:
        lines.append(hint)
    lines.append(f"See DATASETS.md, section {dataset}, for how to download and lay it out.")
    return DatasetNotFoundError("\n".join(lines))


def missing(dataset, path, layout, hint=""):
    """The error for a missing file or folder of `dataset`."""
    return dataset_error(dataset, f"not found: {path}", layout, hint)


def require(path, dataset, layout, hint=""):
    """Raise the dataset's missing-file error unless `path` (a file or folder) exists."""
    if not osp.exists(path):
        raise missing(dataset, path, layout, hint)


def download_from_drive(drive_id, path):
    """Try to download Google Drive file `drive_id` to `path`; True on success, False otherwise.

    Offline machines, quotas and changed links all end here as False (a partial file is removed),
    so that the caller can raise one clear error with the manual download instructions.
    """
    try:
        import gdown

        print(f"Downloading {osp.basename(path)} from Google Drive (id {drive_id})")
        result = gdown.download(id=drive_id, output=path, quiet=True)
    except Exception as error:  # any failure means "download it by hand"
        print(f"Download failed: {type(error).__name__}: {error}")
        result = None
    if result is None or not osp.isfile(path):
        if osp.exists(path):
            os.remove(path)
        return False
    return True


def fetch_or_fail(path, drive_id, dataset, layout, hint=""):
    """Make sure the auxiliary file `path` (split file, class names) exists: download it or raise."""
    if osp.isfile(path):
        return
    if drive_id and download_from_drive(drive_id, path):
        return
    source = f"Download it from {DRIVE_URL.format(drive_id)} and put it at {path}." if drive_id else ""
    raise missing(dataset, path, layout, " ".join(s for s in (source, hint) if s))


def list_images(folder):
    """Sorted non-hidden file names in `folder` (sorted so that every machine lists the same order)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith("."))


def list_folders(folder):
    """Sorted non-hidden sub-folder names of `folder`."""
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def check_first_images(dataset, layout, entries):
    """Check that the first image of every label in `entries` ((impath, label, classname) tuples) exists."""
    seen = set()
    for impath, label, _ in entries:
        if label in seen:
            continue
        seen.add(label)
        if not osp.isfile(impath):
            raise missing(
                dataset,
                impath,
                layout,
                "An image listed in the split is missing: the image folder is incomplete or laid out differently.",
            )


MAX_LISTED_BAD_IMAGES = 5


def unreadable_image(path):
    """Why `path` is not a readable image ("" when it is one): PIL's header check, no full decode."""
    try:
        with Image.open(path) as image:
            image.verify()
    except FileNotFoundError:
        return "missing"
    except UnidentifiedImageError:
        return "not an image file"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return f"damaged: {error}"
    return ""


def check_image_files(dataset, splits):
    """A UserError when images of `splits` ({split name: Datums}) are missing or not images.

    The message gives the count of bad files and the first MAX_LISTED_BAD_IMAGES paths with the reason.
    """
    paths = sorted({item.impath for items in splits.values() for item in items})
    bad = [(path, reason) for path, reason in ((path, unreadable_image(path)) for path in paths) if reason]
    if not bad:
        return
    listed = "; ".join(f"{path} ({reason})" for path, reason in bad[:MAX_LISTED_BAD_IMAGES])
    raise UserError(
        f"{dataset}: {len(bad)} of the {len(paths)} images checked ({' + '.join(splits)}) are missing or not "
        f"readable images: {listed}{' ...' if len(bad) > MAX_LISTED_BAD_IMAGES else ''}. Replace these files "
        "(re-extract the dataset, see DATASETS.md) or remove them from the class folder or split file, then run again."
    )


def check_images_before_training(dataset, num_shots, train, val, test):
    """Header-check the images a run reads first and last: the few-shot sample (train and val, when
    NUM_SHOTS >= 1; a full train set is not checked, it can be 1.28M files) and the test split."""
    splits = {"few-shot train": train, "few-shot val": val} if num_shots >= 1 else {}
    check_image_files(dataset, {name: items for name, items in {**splits, "test": test}.items() if items})


def report_num_shots(dataset, train, num_shots):
    """Print what DATASET.NUM_SHOTS selects: all training images when <= 0; a warning naming the
    classes with fewer than NUM_SHOTS training images (they keep all of theirs)."""
    if num_shots < 1:
        print(f"DATASET.NUM_SHOTS is {num_shots} (<= 0): {dataset} trains on all {len(train):,} training images")
        return
    counts = Counter(item.label for item in train)
    names = {item.label: item.classname for item in train}
    short = sorted(label for label, count in counts.items() if count < num_shots)
    if short:
        examples = ", ".join(f"{names[label]!r} ({counts[label]})" for label in short[:3])
        print(
            f"Warning: DATASET.NUM_SHOTS is {num_shots}, but {len(short)} of {len(counts)} classes of {dataset} have "
            f"fewer training images, e.g. {examples}: those classes use all their images, so the sample is "
            f"smaller and unbalanced. Set DATASET.NUM_SHOTS {min(counts.values())} or less for {dataset} "
            "to sample the same number in every class."
        )


def to_datums(dataset, layout, entries):
    """Datums from (impath, label, classname) tuples, after checking the first image of each class."""
    check_first_images(dataset, layout, entries)
    return [Datum(impath=impath, label=int(label), classname=classname) for impath, label, classname in entries]


def to_relative(items, prefix):
    """JSON rows [rel_path, label, classname] of Datums, paths relative to `prefix`."""
    return [[osp.relpath(item.impath, prefix).replace(os.sep, "/"), item.label, item.classname] for item in items]


def from_relative(rows, prefix, rename=None):
    """(impath, label, classname) tuples from JSON rows, paths joined to `prefix`, names mapped by `rename`."""
    rename = rename or {}
    return [(osp.join(prefix, rel_path), int(label), rename.get(name, name)) for rel_path, label, name in rows]


def read_split_file(path, keys, fix):
    """{key: rows} of a JSON split file holding `keys` with [rel_path, label, classname] rows.

    A file that is not JSON, or not in that format, is a UserError naming it, ending with `fix`.
    """
    try:
        with open(path) as file:
            split = json.load(file)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}). {fix}"
        ) from error
    for key in keys:
        rows = split.get(key) if isinstance(split, dict) else None
        if not isinstance(rows, list) or not all(isinstance(row, list) and len(row) == 3 for row in rows):
            raise UserError(
                f"{path} has no {key!r} list of [image path, label, class name] rows. {fix}"
            )
    check_split_labels(path, split, keys, fix)
    return split


def check_split_labels(path, split, keys, fix):
    """A UserError naming the first row of split file `path` whose label is not one of the training classes'
    (the labels of 'train' must number its classes 0..N-1; the model has N outputs)."""
    train_labels = {row[1] for row in split["train"]}
    n_classes = len(train_labels)
    if train_labels != set(range(n_classes)):  # also catches a label that is not an integer
        odd = next(row for row in split["train"] if row[1] not in range(n_classes))
        raise UserError(
            f"{path}: the 'train' list has {n_classes} classes, but labels other than 0..{n_classes - 1} "
            f"(e.g. {odd[1]!r} for {odd[0]}). Labels must number the classes 0..N-1. {fix}"
        )
    for key in keys:
        for image, label, _ in split[key]:
            if label not in train_labels:
                raise UserError(
                    f"{path}: the {key!r} list labels {image} {label!r}, but the 'train' list has labels "
                    f"0..{n_classes - 1} only (a class the model would not have). {fix}"
                )


def read_split(path, prefix, dataset, layout, rename=None):
    """train, val, test Datums of a split file whose paths are relative to `prefix`."""
    print(f"Reading split from {path}")
    keys = ("train", "val", "test")
    split = read_split_file(path, keys, "Replace it with the official split file (see DATASETS.md) or delete it.")
    return tuple(to_datums(dataset, layout, from_relative(split[key], prefix, rename)) for key in keys)


def write_split(train, val, test, path, prefix):
    """Save train, val, test Datums as a split file with paths relative to `prefix`."""
    write_json(
        {"train": to_relative(train, prefix), "val": to_relative(val, prefix), "test": to_relative(test, prefix)}, path
    )
    print(f"Saved split to {path}")


def split_trainval(trainval, rng, p_val=0.2):
    """Split train+val per label (first-appearance order): round(n * p_val) shuffled items to val, the rest to train."""
    by_label = {}
    for item in trainval:
        by_label.setdefault(item.label, []).append(item)
    train, val = [], []
    for label, items in by_label.items():
        n_val = round(len(items) * p_val)
        if n_val < 1:
            raise UserError(
                f"label {label} has {len(items)} train+val images, too few to hold out a validation image: "
                "give it at least 3 images"
            )
        rng.shuffle(items)
        val.extend(items[:n_val])
        train.extend(items[n_val:])
    return train, val


def split_class_folders(image_dir, rng, p_train=0.5, p_val=0.2, ignored=(), rename=None):
    """Split an `image_dir/<class>/<image>` tree per class: p_train train, p_val val, the rest test.

    Classes are the sorted folder names (minus `ignored`), labelled 0.. in that order and named
    through `rename`; images are sorted, then shuffled by `rng` before the cut.
    """
    rename = rename or {}
    train, val, test = [], [], []
    classes = [c for c in list_folders(image_dir) if c not in ignored]
    for label, folder in enumerate(classes):
        impaths = [osp.join(image_dir, folder, name) for name in list_images(osp.join(image_dir, folder))]
        rng.shuffle(impaths)
        n_train = round(len(impaths) * p_train)
        n_val = round(len(impaths) * p_val)
        if n_train < 1 or n_val < 1 or len(impaths) - n_train - n_val < 1:
            raise UserError(
                f"class folder {osp.join(image_dir, folder)} has {len(impaths)} images, too few for a "
                "train/val/test split: give every class at least 4 images, or remove the folder"
            )
        classname = rename.get(folder, folder)
        cut = (
            (train, impaths[:n_train]),
            (val, impaths[n_train : n_train + n_val]),
            (test, impaths[n_train + n_val :]),
        )
        for split, paths in cut:
            split.extend(Datum(impath=path, label=label, classname=classname) for path in paths)
    return train, val, test


def few_shot_cache_path(dataset_dir, cfg):
    """Where the K-shot sample of seed `cfg.SEED` is cached; None when the seed is negative (no fixed seed)."""
    if cfg.SEED < 0:
        return None
    return osp.join(dataset_dir, "split_fewshot", f"shot_{cfg.DATASET.NUM_SHOTS}-seed_{cfg.SEED}.json")


def dataset_fingerprint(**splits):
    """What a few-shot sample was drawn from: every class of the full splits with its file counts.

    {"classes": [[label, classname, count in the first split, count in the next, ...], ...],
    "splits": [split names]}; a class folder added, removed or grown changes it.
    """
    counts = {}
    for index, items in enumerate(splits.values()):
        for item in items:
            row = counts.setdefault(item.label, [item.label, item.classname] + [0] * len(splits))
            row[2 + index] += 1
    return {"splits": list(splits), "classes": [counts[label] for label in sorted(counts)]}


def folder_fingerprint(folders):
    """A cheap fingerprint where listing every file is slow (ImageNet's 1.28M training images): the
    class folders' names and modification times (a file added to or removed from a folder changes it)."""
    return {"folders": [[osp.basename(folder), os.stat(folder).st_mtime_ns] for folder in folders]}


def describe_change(cached, current):
    """A short account of how two dataset fingerprints differ."""
    if "classes" not in cached or "classes" not in current:
        then, now = len(cached.get("folders", [])), len(current.get("folders", []))
        return f"{then} class folders then, {now} now, or files added or removed in them"

    def summary(fingerprint):
        totals = [sum(row[2 + i] for row in fingerprint["classes"]) for i in range(len(fingerprint["splits"]))]
        files = ", ".join(f"{n} {split}" for split, n in zip(fingerprint["splits"], totals))
        return f"{len(fingerprint['classes'])} classes, {files} images"

    return f"{summary(cached)} then, {summary(current)} now"


def load_few_shot(path, prefix, dataset, layout, fingerprint):
    """The cached few-shot splits as {"train": [Datum], "val": [Datum]} (val absent for ImageNet).

    None when there is no cache, or when it was drawn from another version of the dataset than
    `fingerprint` (`dataset_fingerprint` of the full splits): then it is sampled again, with a note.
    """
    if path is None or not osp.isfile(path):
        return None
    cached = read_json(path)
    recorded = cached.pop("fingerprint", None)
    if recorded != fingerprint:
        change = describe_change(recorded, fingerprint) if recorded else "it records no dataset fingerprint"
        print(f"Note: the few-shot cache {path} was sampled from another version of the dataset ({change}): "
              "sampling again and replacing it")
        return None
    print(f"Loading preprocessed few-shot data from {path}")
    return {key: to_datums(dataset, layout, from_relative(rows, prefix)) for key, rows in cached.items()}


def save_few_shot(path, prefix, fingerprint, **splits):
    """Cache few-shot splits with the fingerprint of the dataset they were drawn from; a read-only
    data folder only costs the cache, not the run."""
    rows = {key: to_relative(items, prefix) for key, items in splits.items()}
    try:
        write_json({"fingerprint": fingerprint, **rows}, path)
    except OSError as error:
        print(f"Could not cache the few-shot split at {path} ({error}); it will be sampled again next time")
        return
    print(f"Saving preprocessed few-shot data to {path}")


def sample_few_shot(dataset, cfg, train, val, prefix, layout):
    """CoOp's few-shot protocol: K per class from train, min(K, 4) from val, cached per (K, seed).

    Sampling uses Python's global `random`, which train.py seeds with SEED before building the
    dataset, through `DatasetBase.generate_fewshot_dataset` (CoOp's rule), so a seed selects the
    same images as CoOp given the same split file. NUM_SHOTS < 1 keeps the full splits. The cache
    is used only while the dataset's classes and file counts are those it was drawn from.
    """
    num_shots = cfg.DATASET.NUM_SHOTS
    name = type(dataset).__name__
    report_num_shots(name, train, num_shots)
    if num_shots < 1:
        return train, val
    cache = few_shot_cache_path(dataset.dataset_dir, cfg)
    fingerprint = dataset_fingerprint(train=train, val=val)
    data = load_few_shot(cache, prefix, name, layout, fingerprint)
    if data is not None:
        return data["train"], data["val"]
    train = dataset.generate_fewshot_dataset(train, num_shots=num_shots)
    val = dataset.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
    if cache is not None:
        save_few_shot(cache, prefix, fingerprint, train=train, val=val)
    return train, val


def subsample_classes(*sources, subsample="all"):
    """Keep the base (first ceil(n/2) sorted labels of the first source) or new (the rest) classes.

    The kept labels are renumbered 0..k-1 in sorted order in every source; "all" keeps everything.
    """
    if subsample not in ("all", "base", "new"):
        raise UserError(f"DATASET.SUBSAMPLE_CLASSES must be 'all', 'base' or 'new', got {subsample!r}")
    if subsample == "all":
        return sources
    labels = sorted({item.label for item in sources[0]})
    half = math.ceil(len(labels) / 2)
    selected = labels[:half] if subsample == "base" else labels[half:]
    relabel = {label: new for new, label in enumerate(selected)}
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    return tuple(
        [
            Datum(impath=item.impath, label=relabel[item.label], domain=item.domain, classname=item.classname)
            for item in source
            if item.label in relabel
        ]
        for source in sources
    )


class SplitFileBenchmark(DatasetBase):
    """A few-shot benchmark with a split file: read (or obtain) it, sample K shots, keep base/new classes.

    Subclasses set the class attributes below and implement `generate_split`, which builds the
    split from the raw download when DATASET.GENERATE_SPLIT is set and the split file is missing.
    """

    folder = ""  # the dataset's folder under DATASET.ROOT
    image_folder = ""  # the folder (inside `folder`) that split paths are relative to; "" for `folder` itself
    split_file = ""  # split_zhou_<Name>.json
    split_drive_id = ""  # Google Drive id of the official split file
    layout = ""  # the expected tree, shown in errors and by dpt_tools/check_data.py
    rename = {}  # class-name corrections applied to the names read from the split file

    def __init__(self, cfg):
        root = dataset_root(cfg)
        name = type(self).__name__
        self.dataset_dir = osp.join(root, self.folder)
        self.image_dir = osp.normpath(osp.join(self.dataset_dir, self.image_folder))
        self.split_path = osp.join(self.dataset_dir, self.split_file)
        require(self.dataset_dir, name, self.layout)
        require(self.image_dir, name, self.layout)

        train, val, test = self.read_or_obtain_split(cfg)
        train, val = sample_few_shot(self, cfg, train, val, self.image_dir, self.layout)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        check_images_before_training(name, cfg.DATASET.NUM_SHOTS, train, val, test)
        super().__init__(train_x=train, val=val, test=test)

    def read_or_obtain_split(self, cfg):
        """Read the split file; when it is missing, download the official one, or (opt-in) generate one, or raise."""
        name = type(self).__name__
        if not osp.isfile(self.split_path):
            downloaded = download_from_drive(self.split_drive_id, self.split_path)
            if not downloaded and cfg.DATASET.get("GENERATE_SPLIT", False):
                print(f"Generating {self.split_file} from the raw data (DATASET.GENERATE_SPLIT)")
                # A private generator: the split does not depend on, nor disturb, the run's seeded `random`.
                train, val, test = self.generate_split(random.Random(0))
                write_split(train, val, test, self.split_path, self.image_dir)
            elif not downloaded:
                raise missing(
                    name,
                    self.split_path,
                    self.layout,
                    f"Download it from {DRIVE_URL.format(self.split_drive_id)} and put it at {self.split_path}. "
                    "Or set DATASET.GENERATE_SPLIT True to build a split from the raw data "
                    "(it will differ from the official one, so results are not comparable with papers).",
                )
        return read_split(self.split_path, self.image_dir, name, self.layout, self.rename)

    def generate_split(self, rng):
        """train, val, test Datums built from the raw download, shuffling with `rng`."""
        raise NotImplementedError
