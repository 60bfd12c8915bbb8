"""Miniature copies of the on-disk layout of every benchmark, for the dataset reader tests.

Each `build_<stem>(root)` writes tiny 8x8 JPEGs plus the real annotation files (txt, .mat, json)
and split file of one dataset under `root`, and returns a `Miniature` describing what the reader
must return: class names by label and, per split, the (path relative to the dataset folder,
label) pairs in reader order.

Split files list classes in label order except Food101's, which starts with label 2, so that
"labels in order of first appearance" differs from "sorted labels". Class 1 has only 3 train
images everywhere, fewer than the tests' K = 5, so the "keep all, no random call" case is hit.
"""

import io
import json
import os
import os.path as osp
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy.io import savemat

TRAIN_PER_CLASS = (6, 3, 6, 6, 6)
VAL_PER_CLASS = 5
TEST_PER_CLASS = 2


@dataclass
class Miniature:
    name: str  # DATASET.NAME
    stem: str  # configs/datasets/<stem>.yaml
    dataset_dir: str
    classnames: list  # by label
    expected: dict  # split -> [(path relative to dataset_dir, label)] in reader order
    split_file: str = ""  # absolute path of split_zhou_<Name>.json ("" when the dataset has none)
    split_prefix: str = ""  # folder (relative to dataset_dir) that split paths start from
    trainval_lists: bool = False  # the raw data defines test and train+val (else one pool per class)
    test_only: bool = False


_JPEG = None


def write_image(path):
    """Write a tiny JPEG (the content never matters to the readers)."""
    global _JPEG
    if _JPEG is None:
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (120, 60, 30)).save(buffer, format="JPEG")
        _JPEG = buffer.getvalue()
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(_JPEG)


def write_text(path, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def write_json_file(path, obj):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def assign_splits(paths_by_label, label_order=None):
    """Cut each label's image list into train / val / test (TRAIN_PER_CLASS, VAL_PER_CLASS, the rest)."""
    split = {"train": [], "val": [], "test": []}
    for label in label_order or sorted(paths_by_label):
        paths = paths_by_label[label]
        n_train = TRAIN_PER_CLASS[label]
        split["train"] += [(p, label) for p in paths[:n_train]]
        split["val"] += [(p, label) for p in paths[n_train : n_train + VAL_PER_CLASS]]
        split["test"] += [(p, label) for p in paths[n_train + VAL_PER_CLASS :]]
    return split


def images_per_class(label):
    return TRAIN_PER_CLASS[label] + VAL_PER_CLASS + TEST_PER_CLASS


def write_split_file(path, split, prefix, classnames):
    """A split_zhou JSON from `split` (paths relative to the dataset folder) with paths relative to `prefix`."""
    rows = {
        key: [[osp.relpath(p, prefix) if prefix else p, label, classnames[label]] for p, label in items]
        for key, items in split.items()
    }
    write_json_file(path, rows)


def _class_folder_dataset(
    root, name, stem, folder, image_folder, folders, classnames, split_names=None, label_order=None
):
    """Datasets stored as <image_folder>/<class>/<image> (Caltech101, DTD, Food101, EuroSAT)."""
    dataset_dir = osp.join(root, folder)
    paths_by_label = {}
    for label, class_folder in enumerate(folders):
        rel = [f"{image_folder}/{class_folder}/{class_folder}_{i:04d}.jpg" for i in range(images_per_class(label))]
        for p in rel:
            write_image(osp.join(dataset_dir, p))
        paths_by_label[label] = rel
    split = assign_splits(paths_by_label, label_order)
    split_file = osp.join(dataset_dir, f"split_zhou_{name}.json")
    write_split_file(split_file, split, image_folder, split_names or classnames)
    return Miniature(name, stem, dataset_dir, classnames, split, split_file, image_folder)


def build_caltech101(root):
    dataset_dir = osp.join(root, "caltech-101")
    for ignored in ("BACKGROUND_Google", "Faces_easy"):
        for i in range(3):
            write_image(osp.join(dataset_dir, "101_ObjectCategories", ignored, f"image_{i:04d}.jpg"))
    folders = ["Faces", "Leopards", "Motorbikes", "accordion", "airplanes"]
    classnames = ["face", "leopard", "motorbike", "accordion", "airplane"]
    return _class_folder_dataset(
        root, "Caltech101", "caltech101", "caltech-101", "101_ObjectCategories", folders, classnames
    )


def build_dtd(root):
    folders = ["banded", "blotchy", "braided", "bubbly", "bumpy"]
    return _class_folder_dataset(root, "DescribableTextures", "dtd", "dtd", "images", folders, folders)


def build_food101(root):
    folders = ["apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare"]
    return _class_folder_dataset(
        root, "Food101", "food101", "food-101", "images", folders, folders, label_order=[2, 0, 1, 3, 4]
    )


def build_eurosat(root):
    folders = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "SeaLake"]
    classnames = ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land", "Highway or Road", "Sea or Lake"]
    # The split file keeps the folder names: the reader maps them to the descriptive names.
    return _class_folder_dataset(
        root, "EuroSAT", "eurosat", "eurosat", "2750", folders, classnames, split_names=folders
    )


def build_oxford_pets(root):
    dataset_dir = osp.join(root, "oxford_pets")
    breeds = ["Abyssinian", "american_bulldog", "basset_hound", "Bengal", "Egyptian_Mau"]
    paths_by_label = {}
    for label, breed in enumerate(breeds):
        paths_by_label[label] = [f"images/{breed}_{i + 1}.jpg" for i in range(images_per_class(label))]
        for p in paths_by_label[label]:
            write_image(osp.join(dataset_dir, p))
    split = assign_splits(paths_by_label)

    def annotation_lines(items):
        return [
            f"{osp.splitext(osp.basename(p))[0]} {label + 1} {1 if breeds[label][0].isupper() else 2} 1"
            for p, label in items
        ]

    write_text(osp.join(dataset_dir, "annotations", "trainval.txt"), annotation_lines(split["train"] + split["val"]))
    write_text(osp.join(dataset_dir, "annotations", "test.txt"), annotation_lines(split["test"]))
    classnames = [b.lower() for b in breeds]
    split_file = osp.join(dataset_dir, "split_zhou_OxfordPets.json")
    write_split_file(split_file, split, "images", classnames)
    return Miniature(
        "OxfordPets", "oxford_pets", dataset_dir, classnames, split, split_file, "images", trainval_lists=True
    )


def _mat_annotations(records):
    """A devkit-style 1xN struct array with `fname` and `class` fields."""
    array = np.empty((1, len(records)), dtype=[("fname", "O"), ("class", "O")])
    for i, (fname, class_id) in enumerate(records):
        array[0, i] = (np.array([fname]), np.array([[class_id]], dtype=np.uint8))
    return array


def build_stanford_cars(root):
    dataset_dir = osp.join(root, "stanford_cars")
    raw_names = [
        "AM General Hummer SUV 2000",
        "Acura RL Sedan 2012",
        "Aston Martin V8 Vantage Convertible 2012",
        "BMW M3 Coupe 2012",
        "Tesla Model S Sedan 2012",
    ]
    trainval_records, test_records, paths_by_label = [], [], {}
    train_id = test_id = 0
    for label in range(len(raw_names)):
        n_trainval = TRAIN_PER_CLASS[label] + VAL_PER_CLASS
        paths = []
        for i in range(images_per_class(label)):
            if i < n_trainval:
                train_id += 1
                fname = f"{train_id:05d}.jpg"
                paths.append(f"cars_train/{fname}")
                trainval_records.append((fname, label + 1))
            else:
                test_id += 1
                fname = f"{test_id:05d}.jpg"
                paths.append(f"cars_test/{fname}")
                test_records.append((fname, label + 1))
            write_image(osp.join(dataset_dir, paths[-1]))
        paths_by_label[label] = paths
    class_names = np.empty((1, len(raw_names)), dtype="O")
    for i, name in enumerate(raw_names):
        class_names[0, i] = np.array([name])
    os.makedirs(osp.join(dataset_dir, "devkit"))
    savemat(osp.join(dataset_dir, "devkit", "cars_meta.mat"), {"class_names": class_names})
    savemat(
        osp.join(dataset_dir, "devkit", "cars_train_annos.mat"), {"annotations": _mat_annotations(trainval_records)}
    )
    savemat(osp.join(dataset_dir, "cars_test_annos_withlabels.mat"), {"annotations": _mat_annotations(test_records)})
    classnames = [
        "2000 AM General Hummer SUV",
        "2012 Acura RL Sedan",
        "2012 Aston Martin V8 Vantage Convertible",
        "2012 BMW M3 Coupe",
        "2012 Tesla Model S Sedan",
    ]
    split = assign_splits(paths_by_label)
    split_file = osp.join(dataset_dir, "split_zhou_StanfordCars.json")
    write_split_file(split_file, split, "", classnames)
    return Miniature(
        "StanfordCars", "stanford_cars", dataset_dir, classnames, split, split_file, "", trainval_lists=True
    )


def build_oxford_flowers(root):
    dataset_dir = osp.join(root, "oxford_flowers")
    classnames = ["pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea", "english marigold"]
    # Images interleave the classes, as in imagelabels.mat.
    labels, paths_by_label = [], {label: [] for label in range(len(classnames))}
    remaining = {label: images_per_class(label) for label in paths_by_label}
    while any(remaining.values()):
        for label in paths_by_label:
            if remaining[label]:
                remaining[label] -= 1
                labels.append(label + 1)
                paths_by_label[label].append(f"jpg/image_{len(labels):05d}.jpg")
                write_image(osp.join(dataset_dir, paths_by_label[label][-1]))
    savemat(osp.join(dataset_dir, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    write_json_file(osp.join(dataset_dir, "cat_to_name.json"), {str(i + 1): n for i, n in enumerate(classnames)})
    split = assign_splits(paths_by_label)
    split_file = osp.join(dataset_dir, "split_zhou_OxfordFlowers.json")
    write_split_file(split_file, split, "jpg", classnames)
    return Miniature("OxfordFlowers", "oxford_flowers", dataset_dir, classnames, split, split_file, "jpg")


def build_sun397(root):
    dataset_dir = osp.join(root, "sun397")
    categories = ["a/abbey", "b/bakery/shop", "i/inn/indoor", "o/outhouse/outdoor", "z/zen_garden"]
    classnames = ["abbey", "shop bakery", "indoor inn", "outdoor outhouse", "zen_garden"]
    paths_by_label = {}
    for label, category in enumerate(categories):
        paths_by_label[label] = [f"SUN397/{category}/sun_{label}{i:03d}.jpg" for i in range(images_per_class(label))]
        for p in paths_by_label[label]:
            write_image(osp.join(dataset_dir, p))
    split = assign_splits(paths_by_label)
    write_text(osp.join(dataset_dir, "ClassName.txt"), ["/" + c for c in categories])
    write_text(osp.join(dataset_dir, "Training_01.txt"), [p[len("SUN397") :] for p, _ in split["train"] + split["val"]])
    write_text(osp.join(dataset_dir, "Testing_01.txt"), [p[len("SUN397") :] for p, _ in split["test"]])
    split_file = osp.join(dataset_dir, "split_zhou_SUN397.json")
    write_split_file(split_file, split, "SUN397", classnames)
    return Miniature("SUN397", "sun397", dataset_dir, classnames, split, split_file, "SUN397", trainval_lists=True)


def build_ucf101(root):
    dataset_dir = osp.join(root, "ucf101")
    actions = ["ApplyEyeMakeup", "ApplyLipstick", "Archery", "BabyCrawling", "YoYo"]
    classnames = ["Apply_Eye_Makeup", "Apply_Lipstick", "Archery", "Baby_Crawling", "Yo_Yo"]
    paths_by_label, videos = {}, {}
    for label, (action, folder) in enumerate(zip(actions, classnames)):
        names = [f"v_{action}_g{i + 1:02d}_c01" for i in range(images_per_class(label))]
        paths_by_label[label] = [f"UCF-101-midframes/{folder}/{n}.jpg" for n in names]
        for p, n in zip(paths_by_label[label], names):
            write_image(osp.join(dataset_dir, p))
            videos[p] = f"{action}/{n}.avi"
    split = assign_splits(paths_by_label)
    lists = osp.join(dataset_dir, "ucfTrainTestlist")
    write_text(osp.join(lists, "classInd.txt"), [f"{i + 1} {a}" for i, a in enumerate(actions)])
    write_text(
        osp.join(lists, "trainlist01.txt"), [f"{videos[p]} {label + 1}" for p, label in split["train"] + split["val"]]
    )
    write_text(osp.join(lists, "testlist01.txt"), [videos[p] for p, _ in split["test"]])
    split_file = osp.join(dataset_dir, "split_zhou_UCF101.json")
    write_split_file(split_file, split, "UCF-101-midframes", classnames)
    return Miniature(
        "UCF101", "ucf101", dataset_dir, classnames, split, split_file, "UCF-101-midframes", trainval_lists=True
    )


def build_fgvc_aircraft(root):
    dataset_dir = osp.join(root, "fgvc_aircraft")
    variants = ["707-320", "A300B4", "Cessna 172", "F-16A/B", "Tu-154"]
    paths_by_label, image_id = {}, 1000000
    for label in range(len(variants)):
        paths_by_label[label] = []
        for _ in range(images_per_class(label)):
            image_id += 7
            paths_by_label[label].append(f"images/{image_id:07d}.jpg")
            write_image(osp.join(dataset_dir, paths_by_label[label][-1]))
    split = assign_splits(paths_by_label)
    write_text(osp.join(dataset_dir, "variants.txt"), variants)
    for key, items in split.items():
        lines = [f"{osp.splitext(osp.basename(p))[0]} {variants[label]}" for p, label in items]
        write_text(osp.join(dataset_dir, f"images_variant_{key}.txt"), lines)
    return Miniature("FGVCAircraft", "fgvc_aircraft", dataset_dir, variants, split, split_prefix="images")


IMAGENET_CLASSES = [
    ("n01440764", "tench"),
    ("n01443537", "goldfish"),
    ("n01484850", "great white shark"),
    ("n01491361", "tiger shark"),
    ("n01494475", "hammerhead shark"),
    ("n01496331", "electric ray"),
    ("n01498041", "stingray"),
    ("n01514668", "rooster"),
]


def write_classnames(path, classes):
    write_text(path, [f"{wnid} {name}" for wnid, name in classes])


def build_imagenet(root):
    """Five classes: the reader works with whatever wnids classnames.txt lists."""
    dataset_dir = osp.join(root, "imagenet")
    classes = IMAGENET_CLASSES[:5]
    write_classnames(osp.join(dataset_dir, "classnames.txt"), classes)
    split = {"train": [], "test": []}
    for label, (wnid, _) in enumerate(classes):
        train = [f"images/train/{wnid}/{wnid}_{i}.JPEG" for i in (10, 2, 7, 1, 30, 4)[: TRAIN_PER_CLASS[label]]]
        test = [f"images/val/{wnid}/ILSVRC2012_val_{label * 10 + i:08d}.JPEG" for i in range(TEST_PER_CLASS)]
        for p in train + test:
            write_image(osp.join(dataset_dir, p))
        split["train"] += [(p, label) for p in sorted(train)]
        split["test"] += [(p, label) for p in test]
    split["val"] = split["test"]
    return Miniature("ImageNet", "imagenet", dataset_dir, [n for _, n in classes], split, split_prefix="images")


def _variant(root, name, stem, folder, image_folder, wnids, own_classnames=True, extra_files=()):
    """A test-only variant with `<image_folder>/<wnid>/` folders (Sketch, A, R)."""
    dataset_dir = osp.join(root, folder)
    names = dict(IMAGENET_CLASSES)
    if own_classnames:
        write_classnames(osp.join(dataset_dir, "classnames.txt"), IMAGENET_CLASSES)
    else:
        write_classnames(osp.join(root, "imagenet", "classnames.txt"), IMAGENET_CLASSES)
    test = []
    for label, wnid in enumerate(sorted(wnids)):
        count = TEST_PER_CLASS + label % 2
        paths = sorted(f"{image_folder}/{wnid}/{name.lower()}_{i}.jpg" for i in range(count))
        for p in paths:
            write_image(osp.join(dataset_dir, p))
        test += [(p, label) for p in paths]
    for extra in extra_files:
        write_text(osp.join(dataset_dir, image_folder, extra), ["not a class"])
    return Miniature(name, stem, dataset_dir, [names[w] for w in sorted(wnids)], {"test": test}, test_only=True)


def build_imagenet_sketch(root):
    wnids = [w for w, _ in IMAGENET_CLASSES[:5]]
    return _variant(root, "ImageNetSketch", "imagenet_sketch", "imagenet-sketch", "images", wnids)


def build_imagenet_a(root):
    """A subset of the wnids of classnames.txt, listed out of order, plus ImageNet-A's README.txt."""
    wnids = ["n01514668", "n01498041", "n01443537", "n01491361", "n01494475"]
    return _variant(
        root, "ImageNetA", "imagenet_a", "imagenet-adversarial", "imagenet-a", wnids, extra_files=["README.txt"]
    )


def build_imagenet_r(root):
    """No classnames.txt of its own: the reader falls back to imagenet/classnames.txt."""
    wnids = ["n01440764", "n01484850", "n01496331", "n01498041", "n01514668"]
    return _variant(
        root,
        "ImageNetR",
        "imagenet_r",
        "imagenet-rendition",
        "imagenet-r",
        wnids,
        own_classnames=False,
        extra_files=["README.txt"],
    )


def build_imagenetv2(root):
    dataset_dir = osp.join(root, "imagenetv2")
    image_folder = "imagenetv2-matched-frequency-format-val"
    classes = IMAGENET_CLASSES[:5]
    write_classnames(osp.join(dataset_dir, "classnames.txt"), classes)
    test = []
    for label in range(len(classes)):
        paths = sorted(f"{image_folder}/{label}/{label:02d}{i}a7f.jpeg" for i in range(TEST_PER_CLASS + label % 2))
        for p in paths:
            write_image(osp.join(dataset_dir, p))
        test += [(p, label) for p in paths]
    return Miniature("ImageNetV2", "imagenetv2", dataset_dir, [n for _, n in classes], {"test": test}, test_only=True)


BUILDERS = {
    "imagenet": build_imagenet,
    "caltech101": build_caltech101,
    "oxford_pets": build_oxford_pets,
    "stanford_cars": build_stanford_cars,
    "oxford_flowers": build_oxford_flowers,
    "food101": build_food101,
    "fgvc_aircraft": build_fgvc_aircraft,
    "sun397": build_sun397,
    "dtd": build_dtd,
    "eurosat": build_eurosat,
    "ucf101": build_ucf101,
    "imagenetv2": build_imagenetv2,
    "imagenet_sketch": build_imagenet_sketch,
    "imagenet_a": build_imagenet_a,
    "imagenet_r": build_imagenet_r,
}
