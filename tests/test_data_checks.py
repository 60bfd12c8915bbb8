"""Data the way users have it: ImageNet subsets, shared toy data folders, `dpt-check-data` on the toy
datasets, and what DATASET.NUM_SHOTS selects when it is <= 0 or larger than a class."""

import dataclasses
import os
import os.path as osp
import shutil
import stat

import pytest
from conftest import folder_run_args

import clip_datasets  # noqa: F401  (registers the datasets)
from clip_datasets.common import DatasetNotFoundError
from clip_datasets.imagenet import read_classnames
from clip_datasets.toy import ToyFog
from dassl_compat import build_dataset, get_cfg_default, set_random_seed
from dpt_models.errors import UserError
from dpt_tools import check_data
from dpt_toyworld.benchmarks import TOY_FOG, write_toy_dataset
from tests.dataset_fixtures import build_fgvc_aircraft, build_imagenet
from trainers.config import extend_cfg

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_TOY_FOG = dataclasses.replace(TOY_FOG, counts={"train": 1, "val": 1, "test": 1})


def build_benchmark(root, stem, num_shots=-1):
    """configs/datasets/<stem>.yaml's dataset under `root` through train.py's config path, seed 1."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(osp.join(REPO, "configs", "datasets", f"{stem}.yaml"))
    cfg.DATASET.ROOT = root
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.SEED = 1
    set_random_seed(cfg.SEED)
    return build_dataset(cfg)


def test_imagenet_reads_the_class_folders_present(tmp_path):
    """An ImageNet-100-style subset: the classes are the train folders, labelled in sorted order,
    named from the full classnames.txt (as CoOp's reader does)."""
    build_imagenet(str(tmp_path))
    images = tmp_path / "imagenet" / "images"
    classnames = read_classnames(tmp_path / "imagenet" / "classnames.txt")
    dropped = sorted(classnames)[1:4:2]
    for split in ("train", "val"):
        for wnid in dropped:
            shutil.rmtree(images / split / wnid)
    kept = [wnid for wnid in sorted(classnames) if wnid not in dropped]
    dataset = build_benchmark(str(tmp_path), "imagenet", num_shots=2)
    assert dataset.num_classes == len(kept) == len(classnames) - 2
    assert dataset.classnames == [classnames[wnid] for wnid in kept]
    for items in (dataset.train_x, dataset.test):
        assert {(osp.basename(osp.dirname(item.impath)), item.label) for item in items} == {
            (wnid, label) for label, wnid in enumerate(kept)
        }
    os.makedirs(images / "val" / dropped[0])
    with pytest.raises(DatasetNotFoundError, match=f"have no train folder, e.g. {dropped[0]}"):
        build_benchmark(str(tmp_path), "imagenet")


def test_fgvc_aircraft_list_with_an_unknown_variant_names_the_line(tmp_path):
    build_fgvc_aircraft(str(tmp_path))
    listing = tmp_path / "fgvc_aircraft" / "images_variant_test.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines + ["1234567 Boeing 999"]) + "\n")
    with pytest.raises(UserError, match=rf"images_variant_test\.txt, line {len(lines) + 1}: 'Boeing 999' is not a "
                                        "variant of variants.txt"):
        build_benchmark(str(tmp_path), "fgvc_aircraft")


def test_toy_data_folders_are_readable_by_other_users(tmp_path):
    previous = os.umask(0o022)
    try:
        target = write_toy_dataset(TINY_TOY_FOG, str(tmp_path))
    finally:
        os.umask(previous)
    for dirpath, _, filenames in os.walk(target):
        assert stat.S_IMODE(os.stat(dirpath).st_mode) == 0o755, dirpath
        for name in filenames:
            assert stat.S_IMODE(os.stat(osp.join(dirpath, name)).st_mode) == 0o644, name


def test_check_data_knows_the_toy_datasets(tmp_path, capsys, monkeypatch):
    assert check_data.main(["--root", str(tmp_path), "toy_fog"]) == 1
    out = capsys.readouterr().out
    assert "ToyFog" in out and "missing" in out and f"python -m dpt_tools.make_toy_data --root {tmp_path}" in out
    assert not (tmp_path / "toy_fog").exists()  # reported, not generated
    assert check_data.main(["--root", str(tmp_path)]) == 0
    assert "0 of 17 datasets ready" in capsys.readouterr().out
    monkeypatch.setattr(ToyFog, "spec", TINY_TOY_FOG)
    write_toy_dataset(TINY_TOY_FOG, str(tmp_path))
    assert check_data.main(["--root", str(tmp_path), "ToyFog"]) == 0
    out = capsys.readouterr().out
    assert "ToyFog               found    16 classes  train 16  val 16  test 16" in out
    assert "1 of 1 datasets ready" in out


@pytest.mark.parametrize("num_shots, expected", [
    (100, "Warning: DATASET.NUM_SHOTS is 100, but 4 of 4 classes of ImageFolder have fewer training images, "
          "e.g. 'blue bar' (6)"),
    (0, "DATASET.NUM_SHOTS is 0 (<= 0): ImageFolder trains on all 24 training images"),
    (-1, "DATASET.NUM_SHOTS is -1 (<= 0): ImageFolder trains on all 24 training images"),
])
def test_num_shots_beyond_a_class_or_not_positive_is_reported(num_shots, expected, run_train, tmp_path, data_root,
                                                              tiny_clip_file, capsys):
    run_train(["--no-train"] + folder_run_args(data_root, tiny_clip_file, tmp_path / "out",
                                               extra=("DATASET.NUM_SHOTS", str(num_shots))))
    out = capsys.readouterr().out
    assert expected in out and expected in (tmp_path / "out" / "log.txt").read_text()
    if num_shots > 0:
        assert "Set DATASET.NUM_SHOTS 6 or less" in out
