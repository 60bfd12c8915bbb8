"""Integrity rules, each through train.py's main: the test split decides nothing, a training run that cannot
learn is refused unless TRAIN.ALLOW_NO_LEARNING asks for it, another trainer's config section is an error,
weights load only under the backbone and weight-shaping options they were trained with (unless
--allow-mismatch), and high-bit-depth images are scaled to 8 bits, not clipped.

Every refusal exits with status 2, names the key or file and the fix, and leaves the earlier output as it was.
"""
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import folder_run_args, write_image_folder
from PIL import Image

from dassl_compat.errors import EXIT_USER_ERROR
from dassl_compat.images import to_rgb8
from dassl_compat.lite.data import read_image
from dpt_models.clip_backbone import save_tiny_clip
from dpt_tools import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root, tiny_clip_file):
    """The output folder of a finished 2-epoch CoOp run on `colours`."""
    out = tmp_path_factory.mktemp("trained") / "coop"
    train.main(folder_run_args(data_root, tiny_clip_file, out))
    assert osp.isfile(out / "prompt_learner" / "model.pth.tar-2")
    return out


def files_of(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(osp.join(dirpath, name), "rb") as file:
                found[osp.relpath(osp.join(dirpath, name), folder)] = file.read()
    return found


def refused(argv, capsys, phrases, unchanged):
    """train.py exits 2 with a message holding every phrase (regex); the files in `unchanged` stay as they were
    (the failed run may add its own log.txt-<time>)."""
    before = files_of(unchanged)
    with pytest.raises(SystemExit) as exit_info:
        train.main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == EXIT_USER_ERROR, err
    assert "Traceback" not in err
    for phrase in phrases:
        assert re.search(phrase, err), f"{phrase!r} not in: {err}"
    after = files_of(unchanged)
    assert {name: after.get(name) for name in before} == before
    assert all(re.fullmatch(r"log\.txt-[-\d]+", name) for name in set(after) - set(before)), sorted(after)
    return err


def copy_of(folder, tmp_path):
    return shutil.copytree(folder, tmp_path / "earlier")


def test_the_test_split_decides_nothing(tmp_path, tiny_clip_file, capsys):
    data = str(tmp_path / "data")
    write_image_folder(osp.join(data, "noval"), per_split=(("train", 4), ("test", 2)))

    def args(*extra):
        return folder_run_args(data, tiny_clip_file, tmp_path / "out", extra=("DATASET.FOLDER", "noval", *extra))

    train.main(args())  # an earlier run in the folder
    out = tmp_path / "out"
    refused(args("TEST.FINAL_MODEL", "best_val"), capsys,
            ["TEST.FINAL_MODEL best_val", "has no validation split", "chosen on the test split",
             "Use TEST.FINAL_MODEL last_step", "a val/ folder"], out)
    refused(args("TEST.SPLIT", "val"), capsys,
            ["TEST.SPLIT val", "has none", "Use TEST.SPLIT test", "a val/ folder"], out)
    refused(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"] + args("TEST.SPLIT", "val"), capsys,
            ["TEST.SPLIT val"], out)


def test_a_run_that_cannot_learn_is_refused_unless_asked_for(tmp_path, data_root, tiny_clip_file, trained, capsys):
    earlier = copy_of(trained, tmp_path)

    def args(*extra, output=earlier):
        return folder_run_args(data_root, tiny_clip_file, output, extra=extra)

    allow = r"TRAIN\.ALLOW_NO_LEARNING True"
    refused(args("OPTIM.MAX_EPOCH", "0"), capsys, ["OPTIM.MAX_EPOCH is 0", "Set OPTIM.MAX_EPOCH to 1 or more", allow],
            earlier)
    refused(args("OPTIM.MAX_EPOCH", "1"), capsys,  # folder_run_args: OPTIM.WARMUP_EPOCH 1
            ["warms up for 1 epochs", "OPTIM.MAX_EPOCH is 1", "Set OPTIM.MAX_EPOCH above 1", allow], earlier)
    dpt = folder_run_args(data_root, tiny_clip_file, earlier, trainer="DPT",
                          extra=("TRAINER.DPT.BOTTOMLIMIT", "2", "TRAINER.DPT.TEXT_WARMUP_EPOCH", "2"))
    refused(dpt, capsys, ["module prompt_learner warms up for 2 epochs", allow], earlier)  # DPT's own warmup key
    refused(args("TRAINER.COOP.N_CTX", "0"), capsys, ["N_CTX"], earlier)

    short = train.main(args("OPTIM.MAX_EPOCH", "1", "TRAIN.ALLOW_NO_LEARNING", "True", output=tmp_path / "smoke"))
    assert short.epoch == 0 and osp.isfile(tmp_path / "smoke" / "prompt_learner" / "model.pth.tar-1")
    zero_shot = folder_run_args(data_root, tiny_clip_file, tmp_path / "zs", trainer="ZeroshotCLIP",
                                extra=("OPTIM.MAX_EPOCH", "0"))
    assert 0 <= train.main(["--eval-only"] + zero_shot) <= 100  # evaluation trains nothing: no rule applies


def test_a_config_section_of_another_trainer_is_an_error(tmp_path, data_root, tiny_clip_file, trained, capsys):
    earlier = copy_of(trained, tmp_path)
    refused(["--config-file", "DPT/toy"] + folder_run_args(data_root, tiny_clip_file, earlier), capsys,
            [r"sets TRAINER\.DPT\.\w+", "which CoOp does not read", r"reads TRAINER\.COOP", "configs/trainers/CoOp/",
             "--trainer DPT"], earlier)
    refused(folder_run_args(data_root, tiny_clip_file, earlier, extra=("TRAINER.VPT.N_CTX", "4")), capsys,
            [r"TRAINER\.VPT\.N_CTX: options of VPT"], earlier)


def test_weights_load_only_under_their_backbone_and_shaping_options(tmp_path, data_root, tiny_clip_file, trained,
                                                                     capsys):
    model_dir = copy_of(trained, tmp_path)

    def eval_args(*extra, clip=tiny_clip_file, flags=()):
        return ["--eval-only", "--model-dir", str(model_dir), "--load-epoch", "2", *flags] + folder_run_args(
            data_root, clip, tmp_path / "eval", extra=extra)

    other_clip = save_tiny_clip(str(tmp_path / "other" / "tiny_vit.pt"), seed=1)
    refused(eval_args(clip=other_clip), capsys,
            ["backbone_weights", "trained under other settings", "--allow-mismatch"], model_dir)
    assert 0 <= train.main(eval_args(clip=other_clip, flags=["--allow-mismatch"])) <= 100

    middle = ("TRAINER.COOP.CLASS_TOKEN_POSITION", "middle")
    err = refused(eval_args(*middle), capsys,
                  [r"TRAINER\.COOP\.CLASS_TOKEN_POSITION: 'end' there, 'middle' in this run", "config.yaml",
                   "--allow-mismatch"], model_dir)
    assert str(model_dir) in err
    os.remove(model_dir / "config.yaml")  # the checkpoint's own record refuses it too
    refused(eval_args(*middle), capsys, [r"model\.pth\.tar-2", "TRAINER.COOP.CLASS_TOKEN_POSITION"], model_dir)

    # A checkpoint without the record (CoOp's, Dassl's, an older version's) loads unchecked.
    path = model_dir / "prompt_learner" / "model.pth.tar-2"
    checkpoint = torch.load(path, weights_only=True)
    del checkpoint["meta"]["weights"]
    torch.save(checkpoint, path)
    assert 0 <= train.main(eval_args(*middle)) <= 100


def test_high_bit_depth_images_are_scaled_not_clipped(tmp_path, tiny_clip_file):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (4, 32, 32), dtype=np.uint16)  # one 8-bit grey image per class
    root8, root16 = tmp_path / "data" / "grey8", tmp_path / "data" / "grey16"
    for label, pixels in enumerate(grey):
        for root, image in ((root8, Image.fromarray(pixels.astype(np.uint8))), (root16, Image.fromarray(pixels * 257))):
            for split in ("train", "val", "test"):
                os.makedirs(root / split / f"class{label}", exist_ok=True)
                image.save(root / split / f"class{label}" / "0.png")
    sixteen = root16 / "test" / "class0" / "0.png"
    assert Image.open(sixteen).mode == "I;16"
    assert (np.asarray(Image.open(sixteen).convert("RGB")) == 255).mean() > 0.99  # PIL's convert: white
    for split, label in (("train", 0), ("test", 3)):
        path8, path16 = (root / split / f"class{label}" / "0.png" for root in (root8, root16))
        assert np.array_equal(np.asarray(read_image(str(path16))), np.asarray(read_image(str(path8))))

    tiff = tmp_path / "f.tiff"  # float images in [0, 1], and 32-bit integer ones holding 16-bit values
    Image.fromarray(grey[0].astype(np.float32) / 255).save(tiff)
    assert np.array_equal(np.asarray(to_rgb8(Image.open(tiff)))[..., 0], grey[0])
    Image.fromarray((grey[0] * 257).astype(np.int32)).save(tiff)
    assert Image.open(tiff).mode == "I"
    assert np.array_equal(np.asarray(to_rgb8(Image.open(tiff)))[..., 0], grey[0])

    def zero_shot(folder):  # a real run on each copy of the dataset
        return train.main(["--eval-only"] + folder_run_args(
            str(tmp_path / "data"), tiny_clip_file, tmp_path / folder, trainer="ZeroshotCLIP",
            extra=("DATASET.FOLDER", folder, "TEST.PER_CLASS_RESULT", "True")))

    assert zero_shot("grey16") == zero_shot("grey8")
    assert open(tmp_path / "grey16" / "log.txt").read().count("* class:") == 4
