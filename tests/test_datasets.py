"""The 15 benchmark readers on miniature copies of their real on-disk layouts (tests/dataset_fixtures.py).

Every dataset is built through the config path train.py uses (defaults, extend_cfg, the dataset
yaml, ROOT / NUM_SHOTS / SUBSAMPLE_CLASSES / SEED) and checked for class names, labels, split
contents and order, CoOp's few-shot rule, the few-shot cache, base/new classes, generated splits
and the errors for missing files.
"""

import math
import os
import os.path as osp
import random
import shutil

import pytest

import clip_datasets  # noqa: F401  (registers the datasets)
from clip_datasets.common import DatasetNotFoundError
from dassl_compat import DATASET_REGISTRY, build_dataset, get_cfg_default, read_json, set_random_seed
from dpt_tools import check_data
from tests.dataset_fixtures import BUILDERS
from trainers.config import extend_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
K = 5
ALL = sorted(BUILDERS)
FEW_SHOT = [stem for stem in ALL if stem not in ("imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r")]
WITH_SPLIT_FILE = [stem for stem in FEW_SHOT if stem not in ("imagenet", "fgvc_aircraft")]
IMAGENET_FAMILY = ["imagenet", "imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]


def make_cfg(root, stem, num_shots=-1, subsample="all", seed=1, generate_split=False):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(osp.join(REPO, "configs", "datasets", f"{stem}.yaml"))
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.DATASET.GENERATE_SPLIT = generate_split
    cfg.SEED = seed
    return cfg


def build(root, stem, **kwargs):
    """Seed Python's `random` with SEED, then build the dataset, as train.py does."""
    cfg = make_cfg(root, stem, **kwargs)
    if cfg.SEED >= 0:
        set_random_seed(cfg.SEED)
    return build_dataset(cfg)


def rows(items, dataset_dir):
    return [(osp.relpath(item.impath, dataset_dir), item.label, item.classname) for item in items]


def named(pairs, classnames):
    return [(path, label, classnames[label]) for path, label in pairs]


def coop_few_shot(items, num_shots):
    """CoOp's rule, written out: labels in first-appearance order, random.sample when there are enough."""
    by_label = {}
    for item in items:
        by_label.setdefault(item[1], []).append(item)
    out = []
    for group in by_label.values():
        out += random.sample(group, num_shots) if len(group) >= num_shots else group
    return out


def base_new(items, subsample, num_classes):
    half = math.ceil(num_classes / 2)
    keep = range(half) if subsample == "base" else range(half, num_classes)
    return [(path, keep.index(label), name) for path, label, name in items if label in keep]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No test touches the network: every Google Drive download fails as it does offline."""
    calls = []

    def fail(id=None, output=None, **_):
        calls.append((id, output))
        raise ConnectionError("offline (test)")

    monkeypatch.setattr("gdown.download", fail)
    return calls


@pytest.fixture
def mini(request, tmp_path):
    return BUILDERS[request.param](str(tmp_path / "data"))


def test_every_dataset_is_registered_under_its_yaml_name():
    for stem in ALL:
        cfg = make_cfg("/unused", stem)
        assert cfg.DATASET.NAME in DATASET_REGISTRY, stem
    names = {make_cfg("/unused", stem).DATASET.NAME for stem in ALL}
    assert names == {
        "ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers", "Food101", "FGVCAircraft",
        "SUN397", "DescribableTextures", "EuroSAT", "UCF101", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR",
    }  # fmt: skip


@pytest.mark.parametrize("mini", ALL, indirect=True)
def test_full_splits_classes_and_labels(mini):
    ds = build(osp.dirname(mini.dataset_dir), mini.stem)
    assert ds.classnames == mini.classnames
    assert ds.num_classes == len(mini.classnames)
    assert rows(ds.test, mini.dataset_dir) == named(mini.expected["test"], mini.classnames)
    if mini.test_only:
        assert ds.train_x == ds.test and not ds.val
    else:
        assert rows(ds.train_x, mini.dataset_dir) == named(mini.expected["train"], mini.classnames)
        assert rows(ds.val, mini.dataset_dir) == named(mini.expected["val"], mini.classnames)
    assert all(osp.isabs(item.impath) for item in ds.test)


@pytest.mark.parametrize("mini", FEW_SHOT, indirect=True)
def test_few_shot_follows_coops_rule_and_is_cached(mini, capsys):
    root = osp.dirname(mini.dataset_dir)
    full = build(root, mini.stem)
    random.seed(1)
    expected_train = coop_few_shot(rows(full.train_x, mini.dataset_dir), K)
    expected_val = coop_few_shot(rows(full.val, mini.dataset_dir), min(K, 4)) if mini.stem != "imagenet" else None

    first = build(root, mini.stem, num_shots=K, seed=1)
    assert rows(first.train_x, mini.dataset_dir) == expected_train
    per_class = [sum(item.label == label for item in first.train_x) for label in range(first.num_classes)]
    assert per_class == [min(K, n) for n in (6, 3, 6, 6, 6)]
    if mini.stem == "imagenet":  # ImageNet samples train only; val is the full test set
        assert first.val == first.test and len(first.test) == len(mini.expected["test"])
    else:
        assert rows(first.val, mini.dataset_dir) == expected_val
        assert all(sum(item.label == label for item in first.val) == 4 for label in range(first.num_classes))
    assert rows(first.test, mini.dataset_dir) == rows(full.test, mini.dataset_dir)

    cache = osp.join(mini.dataset_dir, "split_fewshot", f"shot_{K}-seed_1.json")
    saved = read_json(cache)
    assert sorted(saved) == (["fingerprint", "train"] if mini.stem == "imagenet" else ["fingerprint", "train", "val"])
    assert all(not osp.isabs(path) for path, _, _ in saved["train"])

    capsys.readouterr()
    again = build(root, mini.stem, num_shots=K, seed=1)
    assert "Loading preprocessed few-shot data" in capsys.readouterr().out
    assert rows(again.train_x, mini.dataset_dir) == rows(first.train_x, mini.dataset_dir)
    assert rows(again.val, mini.dataset_dir) == rows(first.val, mini.dataset_dir)

    other_seed = build(root, mini.stem, num_shots=K, seed=2)
    assert rows(other_seed.train_x, mini.dataset_dir) != rows(first.train_x, mini.dataset_dir)
    assert osp.isfile(osp.join(mini.dataset_dir, "split_fewshot", f"shot_{K}-seed_2.json"))


@pytest.mark.parametrize("mini", ALL, indirect=True)
@pytest.mark.parametrize("subsample", ["base", "new"])
def test_base_new_halves_after_few_shot(mini, subsample):
    root = osp.dirname(mini.dataset_dir)
    num_shots = -1 if mini.test_only else K
    full = build(root, mini.stem)
    n = full.num_classes
    random.seed(3)
    expected_train = (
        rows(full.train_x, mini.dataset_dir)
        if mini.test_only
        else coop_few_shot(rows(full.train_x, mini.dataset_dir), K)
    )

    ds = build(root, mini.stem, num_shots=num_shots, subsample=subsample, seed=3)
    half = math.ceil(n / 2)
    kept_names = mini.classnames[:half] if subsample == "base" else mini.classnames[half:]
    assert ds.classnames == kept_names
    assert ds.num_classes == len(kept_names)
    assert rows(ds.train_x, mini.dataset_dir) == base_new(expected_train, subsample, n)
    assert rows(ds.test, mini.dataset_dir) == base_new(rows(full.test, mini.dataset_dir), subsample, n)
    assert {item.label for item in ds.test} == set(range(len(kept_names)))


@pytest.mark.parametrize("mini", ["oxford_pets", "imagenet"], indirect=True)
def test_few_shot_cache_survives_moving_the_data_folder(mini, tmp_path, capsys):
    root = osp.dirname(mini.dataset_dir)
    first = build(root, mini.stem, num_shots=K, seed=1)
    moved = str(tmp_path / "moved")
    shutil.move(root, moved)
    capsys.readouterr()
    again = build(moved, mini.stem, num_shots=K, seed=1)
    assert "Loading preprocessed few-shot data" in capsys.readouterr().out
    new_dir = osp.join(moved, osp.basename(mini.dataset_dir))
    assert rows(again.train_x, new_dir) == rows(first.train_x, mini.dataset_dir)
    assert all(osp.isfile(item.impath) for item in again.train_x)


@pytest.mark.parametrize("mini", ["dtd"], indirect=True)
def test_negative_seed_samples_without_caching(mini):
    ds = build(osp.dirname(mini.dataset_dir), mini.stem, num_shots=K, seed=-1)
    assert len(ds.train_x) == 23
    cache_dir = osp.join(mini.dataset_dir, "split_fewshot")
    assert not osp.isdir(cache_dir) or not os.listdir(cache_dir)


@pytest.mark.parametrize("mini", ALL, indirect=True)
def test_missing_image_folder_is_a_clear_error(mini):
    image_dir = osp.join(mini.dataset_dir, mini.expected["test"][0][0].split("/")[0])
    shutil.rmtree(image_dir)
    with pytest.raises(DatasetNotFoundError) as error:
        build(osp.dirname(mini.dataset_dir), mini.stem)
    message = str(error.value)
    assert message.startswith(make_cfg("/unused", mini.stem).DATASET.NAME + ":")
    assert image_dir in message and "DATASETS.md" in message and "Expected layout" in message


@pytest.mark.parametrize("mini", ALL, indirect=True)
def test_missing_dataset_folder_is_a_clear_error(mini):
    shutil.rmtree(mini.dataset_dir)
    with pytest.raises(DatasetNotFoundError, match="not found: " + mini.dataset_dir):
        build(osp.dirname(mini.dataset_dir), mini.stem)


@pytest.mark.parametrize("mini", WITH_SPLIT_FILE, indirect=True)
def test_missing_split_file_tries_the_official_download_then_says_where_to_get_it(mini, offline):
    os.remove(mini.split_file)
    with pytest.raises(DatasetNotFoundError) as error:
        build(osp.dirname(mini.dataset_dir), mini.stem)
    drive_id, output = offline[0]
    assert output == mini.split_file
    message = str(error.value)
    assert mini.split_file in message
    assert f"https://drive.google.com/file/d/{drive_id}/view" in message
    assert "DATASET.GENERATE_SPLIT" in message
    assert not osp.exists(mini.split_file)


@pytest.mark.parametrize("mini", WITH_SPLIT_FILE, indirect=True)
def test_generated_split_from_raw_data(mini, offline):
    os.remove(mini.split_file)
    root = osp.dirname(mini.dataset_dir)
    ds = build(root, mini.stem, generate_split=True, num_shots=K, seed=1)
    assert offline[0][1] == mini.split_file  # the official file was tried first
    saved = read_json(mini.split_file)
    assert all(not osp.isabs(path) for key in ("train", "val", "test") for path, _, _ in saved[key])

    full = build(root, mini.stem)
    assert full.classnames == mini.classnames
    splits = {
        key: rows(items, mini.dataset_dir)
        for key, items in (("train", full.train_x), ("val", full.val), ("test", full.test))
    }
    everything = sorted(row for key in splits for row in splits[key])
    assert everything == sorted(
        named(mini.expected["train"] + mini.expected["val"] + mini.expected["test"], mini.classnames)
    )
    for label in range(full.num_classes):
        count = {key: sum(row[1] == label for row in items) for key, items in splits.items()}
        if mini.trainval_lists:  # the official test list, and 20% of train+val held out
            assert count["val"] == round((count["train"] + count["val"]) * 0.2)
        else:  # 50% train, 20% val, 30% test of each class
            total = sum(count.values())
            assert (count["train"], count["val"]) == (round(total * 0.5), round(total * 0.2))
    if mini.trainval_lists:
        assert sorted(splits["test"]) == sorted(named(mini.expected["test"], mini.classnames))

    # Generating the split does not draw from the run's `random`: the sample equals a later run's.
    shutil.rmtree(osp.join(mini.dataset_dir, "split_fewshot"))
    again = build(root, mini.stem, num_shots=K, seed=1)
    assert rows(again.train_x, mini.dataset_dir) == rows(ds.train_x, mini.dataset_dir)


@pytest.mark.parametrize("mini", ["oxford_pets", "fgvc_aircraft", "imagenet"], indirect=True)
def test_missing_image_file_is_named(mini):
    missing_rel = mini.expected["test"][0][0]
    os.remove(osp.join(mini.dataset_dir, missing_rel))
    if mini.stem == "imagenet":  # folder listings only hold what exists
        ds = build(osp.dirname(mini.dataset_dir), mini.stem)
        assert len(ds.test) == len(mini.expected["test"]) - 1
        return
    with pytest.raises(DatasetNotFoundError, match="not found: " + osp.join(mini.dataset_dir, missing_rel)):
        build(osp.dirname(mini.dataset_dir), mini.stem)


@pytest.mark.parametrize("mini", IMAGENET_FAMILY, indirect=True)
def test_missing_classnames_txt(mini, offline):
    for path in (
        osp.join(mini.dataset_dir, "classnames.txt"),
        osp.join(osp.dirname(mini.dataset_dir), "imagenet", "classnames.txt"),
    ):
        if osp.exists(path):
            os.remove(path)
    with pytest.raises(DatasetNotFoundError, match="classnames.txt") as error:
        build(osp.dirname(mini.dataset_dir), mini.stem)
    assert offline and "1-61f_ol79pViBFDG_IDlUQSwoLcn2XXF" in str(error.value)


@pytest.mark.parametrize("mini", ["imagenet"], indirect=True)
def test_imagenet_layout_errors(mini):
    root = osp.dirname(mini.dataset_dir)
    val = osp.join(mini.dataset_dir, "images", "val")
    wnid = sorted(os.listdir(val))[0]
    shutil.rmtree(osp.join(val, wnid))
    assert wnid not in {osp.basename(osp.dirname(item.impath)) for item in build(root, mini.stem).test}
    os.makedirs(osp.join(val, wnid))
    os.makedirs(osp.join(val, "n99999999"))
    with pytest.raises(DatasetNotFoundError, match="not in classnames.txt, e.g. n99999999"):
        build(root, mini.stem)
    shutil.rmtree(val)
    os.makedirs(val)
    open(osp.join(val, "ILSVRC2012_val_00000001.JPEG"), "wb").close()
    with pytest.raises(DatasetNotFoundError, match="holds images directly"):
        build(root, mini.stem)


@pytest.mark.parametrize("mini", ["imagenetv2"], indirect=True)
def test_imagenetv2_needs_one_folder_per_class(mini):
    with open(osp.join(mini.dataset_dir, "classnames.txt"), "a") as f:
        f.write("n01496331 electric ray\n")
    with pytest.raises(DatasetNotFoundError, match="expected folders 0..5"):
        build(osp.dirname(mini.dataset_dir), mini.stem)


@pytest.mark.parametrize("mini", ["oxford_pets"], indirect=True)
def test_check_data_reports_found_and_missing(mini, capsys):
    root = osp.dirname(mini.dataset_dir)
    assert check_data.main(["--root", root, "OxfordPets"]) == 0
    out = capsys.readouterr().out
    assert "OxfordPets" in out and "found" in out and "5 classes" in out
    assert "train 27" in out and "val 25" in out and "test 10" in out

    assert check_data.main(["--root", root, "dtd"]) != 0
    out = capsys.readouterr().out
    assert "DescribableTextures" in out and "missing" in out and "dtd" in out

    os.remove(osp.join(mini.dataset_dir, mini.expected["train"][1][0]))
    assert check_data.main(["--root", root, "oxford_pets"]) != 0
    assert "1 of 62 images missing" in capsys.readouterr().out

    assert check_data.main(["--root", root]) != 0  # every dataset: the broken OxfordPets fails the run


@pytest.mark.parametrize("mini", ["oxford_pets"], indirect=True)
def test_coop_base_to_new_through_train_py(mini, run_train, tiny_clip_file, tmp_path):
    """The base-to-new protocol on a benchmark reader: train on base classes, evaluate on new ones."""

    def args(output_dir, *extra_args, subsample):
        return [
            "--root", osp.dirname(mini.dataset_dir),
            "--trainer", "CoOp",
            "--dataset-config-file", osp.join(REPO, "configs", "datasets", "oxford_pets.yaml"),
            "--seed", "1",
            "--output-dir", str(output_dir),
            *extra_args,
            "MODEL.BACKBONE.NAME", "tiny",
            "MODEL.BACKBONE.PATH", tiny_clip_file,
            "INPUT.SIZE", "(32, 32)",
            "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "OPTIM.NAME", "sgd",
            "OPTIM.MAX_EPOCH", "1",
            "TRAINER.COOP.PREC", "fp32",
            "DATASET.NUM_SHOTS", "4",
            "DATASET.SUBSAMPLE_CLASSES", subsample,
        ]  # fmt: skip

    base_out, new_out = tmp_path / "base", tmp_path / "new"
    run_train(args(base_out, subsample="base"))
    run_train(args(new_out, "--eval-only", "--model-dir", str(base_out), "--load-epoch", "1", subsample="new"))
    base_log, new_log = (base_out / "log.txt").read_text(), (new_out / "log.txt").read_text()
    assert "# classes  3" in base_log and "* accuracy:" in base_log
    assert "# classes  2" in new_log and "* total: 4" in new_log and "* accuracy:" in new_log
