"""A catalogue of bad inputs, each through the entry point a user runs (train.py's main and the
console scripts' main functions).

Every case asserts the exit status (2, `dpt_models.errors.EXIT_USER_ERROR`), that the one
paragraph on stderr names the file or key and the fix, that no traceback is printed, and that
nothing that was in the output folder before (an earlier finished run) changed. Most cases fail
before training; the data and output folders are copies, so every case starts from the same state.
Options that break the rule declared for their key are a table (OPTION_CASES); a command's own argument
out of range stops in argparse, naming the argument, before the command does anything (TOOL_ARGUMENT_CASES).
"""

import errno
import io
import os
import os.path as osp
import re
import shutil

import numpy as np
import pytest
import torch
from conftest import folder_run_args
from PIL import Image

from dpt_models.errors import EXIT_USER_ERROR, UserError
from dpt_tools import benchmark, check_data, demo, interpret_prompt, parse_results, plot_results, visualize


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, data_root, tiny_clip_file):
    """The output folder of a finished one-epoch CoOp run on `colours` (copied by each case)."""
    from dpt_tools import train

    out = tmp_path_factory.mktemp("earlier") / "run"
    train.main(folder_run_args(data_root, tiny_clip_file, out, epochs=1))
    assert osp.isfile(out / "prompt_learner" / "model.pth.tar-1")
    return out


class Case:
    """One run of a bad input: its own copies of the data root and of the earlier run's output folder."""

    def __init__(self, tmp_path, data_root, clip_file, earlier):
        self.tmp_path = tmp_path
        self.source_root = data_root
        self.clip_file = clip_file
        self.out = tmp_path / "out"
        shutil.copytree(earlier, self.out)
        self._data = None

    @property
    def data(self):
        """A private copy of the data root (made on first use), for cases that damage the data."""
        if self._data is None:
            self._data = str(self.tmp_path / "data")
            shutil.copytree(self.source_root, self._data)
        return self._data

    def colours(self, *parts):
        return osp.join(self.data, "colours", *parts)

    def args(self, extra=(), data=None):
        return folder_run_args(data or self.source_root, self.clip_file, self.out, epochs=1, extra=extra)

    def write(self, name, text):
        path = self.tmp_path / name
        path.write_text(text)
        return str(path)


def files_of(folder):
    """{relative path: bytes} of every file under `folder`."""
    found = {}
    for dirpath, _, names in os.walk(folder):
        for name in names:
            path = osp.join(dirpath, name)
            with open(path, "rb") as file:
                found[osp.relpath(path, folder)] = file.read()
    return found


def run_main(main, argv, capsys):
    """(exit status, stderr) of an entry point's main that is expected to exit."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return exit_info.value.code, capsys.readouterr().err


def assert_user_error(main, argv, capsys, phrases, out=None):
    """main(argv) exits 2 with one paragraph holding every phrase (regex), no traceback, and the
    files that were in `out` before are unchanged (new files: only the failed run's log)."""
    before = files_of(out) if out is not None else {}
    code, err = run_main(main, argv, capsys)
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err, err
    progress, _, message = err.partition("Error: ")
    assert message and re.fullmatch(r"(\s*\d+%\|.*it/s\])*\s*", progress), err  # only a progress bar before it
    for phrase in phrases:
        assert re.search(phrase, err), f"{phrase!r} not in: {err}"
    if out is not None:
        after = files_of(out)
        assert {name: after.get(name) for name in before} == before
        assert all(re.fullmatch(r"log\.txt-[-\d]+", name) for name in set(after) - set(before)), sorted(after)
    return err


def run_train(argv):
    from dpt_tools import train

    return train.main(argv)


def corrupt(path):
    with open(path, "wb") as file:
        file.write(b"not an image")


# Each case: (setup(case) -> train.py argv, phrases the error must hold: what, where and the fix).
TRAIN_CASES = {
    "yaml syntax error names the file and line": (
        lambda c: ["--config-file", c.write("broken.yaml", "OPTIM:\n  LR: [0.1\n  MAX_EPOCH: 2\n")] + c.args(),
        [r"broken\.yaml is not valid YAML", "line 3", "Fix the syntax"],
    ),
    "yaml syntax error in the dataset config": (
        lambda c: ["--dataset-config-file", c.write("data.yaml", "DATASET:\n\tNAME: x\n")] + c.args(),
        [r"data\.yaml is not valid YAML", "line 2"],
    ),
    "wrong type on the command line names the key": (
        lambda c: c.args(extra=("DATASET.NUM_SHOTS", "four")),
        ["DATASET.NUM_SHOTS takes a value of type int", "'four'", "Give it a value of type int"],
    ),
    "wrong type in a config file names the file and key": (
        lambda c: ["--config-file", c.write("typed.yaml", "OPTIM:\n  MAX_EPOCH: many\n")] + c.args(),
        [r"typed\.yaml", "OPTIM.MAX_EPOCH takes a value of type int"],
    ),
    "config file that is a list, not a mapping": (
        lambda c: ["--config-file", c.write("list.yaml", "- OPTIM.LR\n- 0.1\n")] + c.args(),
        [r"list\.yaml", "A config file maps keys to values"],
    ),
    "unknown key on the command line suggests the right one": (
        lambda c: c.args(extra=("OPTIM.MAX_EPOCHS", "3")),
        ["unknown key OPTIM.MAX_EPOCHS", "Do you mean OPTIM.MAX_EPOCH", "fix the spelling"],
    ),
    "precision mode that does not exist": (
        lambda c: c.args(extra=("TRAINER.COOP.PREC", "fp8")),
        [r"TRAINER\.COOP\.PREC must be one of", "'fp8'"],
    ),
    "zero visual prompt tokens": (
        lambda c: folder_run_args(c.source_root, c.clip_file, c.out, "VPT", epochs=1, extra=("TRAINER.VPT.N_CTX", "0")),
        [r"TRAINER\.VPT\.N_CTX must be an integer >= 1, got 0"],
    ),
    "DPT's class-aware blocks beyond the ViT's depth": (
        lambda c: folder_run_args(c.source_root, c.clip_file, c.out, "DPT", epochs=1,
                                  extra=("TRAINER.DPT.BOTTOMLIMIT", "3")),
        [r"TRAINER\.DPT\.BOTTOMLIMIT must be in 1\.\.2 \(the ViT's depth\)"],
    ),
    "unknown key in a config file": (
        lambda c: ["--config-file", c.write("keys.yaml", "TRAINER:\n  COOP:\n    NCTX: 4\n")] + c.args(),
        [r"keys\.yaml", r"unknown key TRAINER\.COOP\.NCTX\. Do you mean TRAINER\.COOP\.N_CTX"],
    ),
    "options that are not KEY VALUE pairs": (
        lambda c: c.args(extra=("OPTIM.LR",)),
        ["KEY VALUE pairs", "the last is 'OPTIM.LR'", "Give a value after each key"],
    ),
    "missing config file": (
        lambda c: ["--config-file", "configs/trainers/CoOp/vit_b17.yaml"] + c.args(),
        [r"--config-file configs/trainers/CoOp/vit_b17\.yaml: no such file", "Check the path"],
    ),
    "unknown trainer suggests the close name": (
        lambda c: c.args(extra=("TRAINER.NAME", "DTP")),
        ["TRAINER.NAME", "'DTP' is not registered", "Do you mean 'DPT'", "--plugin"],
    ),
    "unknown dataset name": (
        lambda c: c.args(extra=("DATASET.NAME", "Eurosat")),
        ["DATASET.NAME 'Eurosat' is not registered", "Do you mean 'EuroSAT'"],
    ),
    "no trainer": (
        lambda c: [a for a in c.args() if a not in ("--trainer", "CoOp")],
        ["TRAINER.NAME \\(--trainer\\) is empty: give --trainer NAME", "CoCoOp, CoOp, DPT"],
    ),
    "no dataset": (
        lambda c: [a for a in c.args() if a not in ("DATASET.NAME", "ImageFolder")],
        ["DATASET.NAME is empty: give --dataset-config-file configs/datasets/<dataset>.yaml"],
    ),
    "plugin file that does not exist": (
        lambda c: ["--plugin", "my_method.py"] + c.args(),
        [r"--plugin my_method\.py: no such file"],
    ),
    "plugin module that does not exist": (
        lambda c: ["--plugin", "no_such_plugin_module"] + c.args(),
        ["--plugin no_such_plugin_module: no module of that name"],
    ),
    "unknown CLIP backbone": (
        lambda c: c.args(extra=("MODEL.BACKBONE.PATH", "", "MODEL.BACKBONE.NAME", "ViT-B/61")),
        ["Unknown CLIP backbone 'ViT-B/61'", "MODEL.BACKBONE.NAME", "MODEL.BACKBONE.PATH"],
    ),
    "CLIP weights file that does not exist": (
        lambda c: c.args(extra=("MODEL.BACKBONE.PATH", "/nowhere/clip.pt")),
        ["MODEL.BACKBONE.PATH points to '/nowhere/clip.pt', which is not a file"],
    ),
    "no data root": (
        lambda c: [a for a in c.args() if a != c.source_root and a != "--root"],
        ["DATASET.ROOT is empty", "pass --root"],
    ),
    "ImageFolder without DATASET.FOLDER": (
        lambda c: c.args(extra=("DATASET.FOLDER", "")),
        ["ImageFolder needs DATASET.FOLDER"],
    ),
    "dataset folder that does not exist": (
        lambda c: c.args(extra=("DATASET.FOLDER", "colors")),
        ["not found: .*colors", "Expected layout"],
    ),
    "bad DATASET.SUBSAMPLE_CLASSES": (
        lambda c: c.args(extra=("DATASET.SUBSAMPLE_CLASSES", "novel")),
        ["DATASET.SUBSAMPLE_CLASSES must be one of 'all', 'base', 'new', got 'novel'"],
    ),
    "bad OPTIM.NAME": (
        lambda c: c.args(extra=("OPTIM.NAME", "adamw2")),
        ["OPTIM.NAME must be one of", "'adamw2'"],
    ),
    "bad INPUT.TRANSFORMS": (
        lambda c: c.args(extra=("INPUT.TRANSFORMS", "('random_flip', 'colour_jitter')")),
        ["Unknown INPUT.TRANSFORMS", "colour_jitter"],
    ),
}


def empty_class_folder(c):
    os.makedirs(c.colours("train", "yellow_star"))
    return c.args(data=c.data)


def class_folder_only_in_test(c):
    shutil.copytree(c.colours("test", "blue_bar"), c.colours("test", "blue_bars"))
    return c.args(data=c.data)


def corrupt_test_image(c):
    corrupt(c.colours("test", "green_square", "2.png"))
    return c.args(data=c.data)


def corrupt_few_shot_image(c):
    for name in os.listdir(c.colours("train", "red_disk")):
        corrupt(c.colours("train", "red_disk", name))
    return c.args(data=c.data, extra=("DATASET.NUM_SHOTS", "2"))


def truncated_jpeg_test_images(c, workers=0):
    """JPEG files cut in their scan data: the header check before training passes, decoding fails when
    the test set is evaluated after training (a fresh output folder), in a data-loader worker or not."""
    encoded = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(encoded, "JPEG")
    for name in os.listdir(c.colours("test", "green_square")):
        with open(c.colours("test", "green_square", name), "wb") as file:
            file.write(encoded.getvalue()[: len(encoded.getvalue()) * 2 // 3])
    return folder_run_args(c.data, c.clip_file, c.tmp_path / "fresh_out", epochs=1,
                           extra=("DATALOADER.NUM_WORKERS", str(workers)))


def split_file(c, text):
    """Turn `colours` into the one-folder layout with the given split_folder.json."""
    for split in ("train", "val", "test"):
        shutil.rmtree(c.colours(split))
    os.makedirs(c.colours("red_disk"))
    with open(c.colours("split_folder.json"), "w") as file:
        file.write(text)
    return c.args(data=c.data)


def tampered_toy_dataset(c):
    os.makedirs(osp.join(c.data, "toy_fog"))
    with open(osp.join(c.data, "toy_fog", "generation.json"), "w") as file:
        file.write('{"seed": 7}')
    return c.args(data=c.data, extra=("DATASET.NAME", "ToyFog"))


TRAIN_CASES.update({
    "empty class folder in a train/test layout": (
        empty_class_folder,
        [r"class folder\(s\) of .*train hold no images", r"yellow_star", "add its training images, or remove"],
    ),
    "test class folder that train/ lacks": (
        class_folder_only_in_test,
        [r"test has class folders that .*train lacks: blue_bars", "add the class to train/ or remove"],
    ),
    "corrupt test image is found before training": (
        corrupt_test_image,
        [r"1 of the 16 images checked \(test\)", r"green_square/2\.png \(not an image file\)", "Replace these files"],
    ),
    "corrupt images in the few-shot sample": (
        corrupt_few_shot_image,
        [r"2 of the \d+ images checked \(few-shot train \+ few-shot val \+ test\)", r"red_disk/\d\.png"],
    ),
    "truncated JPEG is named when training decodes it": (
        truncated_jpeg_test_images,
        [r"Image file .*green_square/\d\.png cannot be decoded", "truncated or damaged", "run the same command"],
    ),
    "truncated JPEG decoded in a data-loader worker: the message, not the worker's traceback": (
        lambda c: truncated_jpeg_test_images(c, workers=1),
        [r"(?m)^Error: Image file .*green_square/\d\.png cannot be decoded", "run the same command"],
    ),
    "malformed split JSON names its path": (
        lambda c: split_file(c, '{"train": [["red_disk/0.png", 0, "red disk"]'),
        [r"colours/split_folder\.json is not valid JSON", "line 1", "Replace it with the official split file"],
    ),
    "split JSON without a test list": (
        lambda c: split_file(c, '{"train": [], "val": []}'),
        [r"split_folder\.json has no 'test' list", "Replace it"],
    ),
    "image listed in a split file but missing": (
        lambda c: split_file(c, '{"train": [["red_disk/0.png", 0, "red disk"]], "val": [], "test": []}'),
        [r"not found: .*red_disk/0\.png", "An image listed in the split is missing"],
    ),
    "toy dataset folder from another generation": (
        tampered_toy_dataset,
        [r"toy_fog has no readable generation\.json|toy_fog was generated from another spec", "Delete the folder"],
    ),
})


# Options that break their declared rule (dpt_runs.options), each named with its value, what is allowed
# and how to set it: (key, value on the command line, the trainer whose node it is, the rule's description).
OPTION_CASES = [
    ("OPTIM.LR", "-0.002", "CoOp", "a number >= 0"),
    ("OPTIM.LR", "None", "CoOp", "a number >= 0"),
    ("OPTIM.MAX_EPOCH", "-1", "CoOp", "an integer >= 0"),
    ("OPTIM.WEIGHT_DECAY", "-0.1", "CoOp", "a number >= 0"),
    ("OPTIM.LR_SCHEDULER", "cosin", "CoOp", "one of 'single_step', 'multi_step', 'cosine'"),
    ("OPTIM.WARMUP_TYPE", "const", "CoOp", "one of 'constant', 'linear'"),
    ("INPUT.INTERPOLATION", "bicubc", "CoOp", "one of 'bilinear', 'bicubic', 'nearest'"),
    ("INPUT.PIXEL_STD", "[0.27, 0.26]", "CoOp", "a list of 3 values, each a number > 0"),
    ("INPUT.SIZE", "(32, 0)", "CoOp", "a list of 2 values, each an integer >= 1"),
    ("DATALOADER.TRAIN_X.BATCH_SIZE", "0", "CoOp", "an integer >= 1"),
    ("DATALOADER.TEST.BATCH_SIZE", "-16", "CoOp", "an integer >= 1"),
    ("DATALOADER.NUM_WORKERS", "-1", "CoOp", "an integer >= 0"),
    ("TEST.FINAL_MODEL", "best", "CoOp", "one of 'last_step', 'best_val'"),
    ("TEST.SPLIT", "train", "CoOp", "one of 'val', 'test'"),
    ("TRAINER.COOP.CLASS_TOKEN_POSITION", "start", "CoOp", "one of 'end', 'middle', 'front'"),
    ("TRAINER.COOP.N_CTX", "-2", "CoOp", "an integer >= 0"),
    ("TRAINER.COCOOP.PREC", "fp64", "CoCoOp", "one of 'fp32', 'fp16', 'amp', 'bf16'"),
    ("TRAINER.VLP.TEXT_LR", "0.0", "VLP", "a number > 0"),
    ("TRAINER.DPT.CPN", "0", "DPT", "an integer >= 1"),
    ("TRAINER.DPT.ALPHA", "-0.3", "DPT", "a number >= 0"),
    ("TRAINER.LINEAR_PROBE.C_GRID", "(1.0, -1.0)", "LinearProbe", "a list of one or more values, each a number > 0"),
    ("TRAINER.LINEAR_PROBE.MAX_ITER", "0", "LinearProbe", "an integer >= 1"),
]
for key, value, trainer, allowed in OPTION_CASES:
    TRAIN_CASES[f"option {key} {value}"] = (
        lambda c, key=key, value=value, trainer=trainer: folder_run_args(
            c.source_root, c.clip_file, c.out, trainer, epochs=1, extra=(key, value)),
        [re.escape(f"{key} must be {allowed}, got "), re.escape(f"Set {key} to such a value")],
    )


def long_class_name(c):
    for split in ("train", "val", "test"):
        os.rename(c.colours(split, "blue_bar"), c.colours(split, "blue_bar" + "_x" * 75))
    return c.args(data=c.data)


def file_as_output_dir(c):
    return folder_run_args(c.source_root, c.clip_file, c.write("results", "not a folder"), epochs=1)


TRAIN_CASES.update({
    "INPUT.SIZE that the backbone does not take": (
        lambda c: c.args(extra=("INPUT.SIZE", "(64, 64)")),
        [r"INPUT\.SIZE is \(64, 64\), but the backbone tiny takes 32x32 images", r"Set INPUT\.SIZE \(32, 32\)"],
    ),
    "N_CTX that makes prompts longer than CLIP's 77 tokens": (
        lambda c: c.args(extra=("TRAINER.COOP.N_CTX", "80")),
        [r"The prompt of class '[a-z ]+' is 8\d tokens long", "at most 77",
         r"lower TRAINER\.COOP\.N_CTX \(80\) to 7\d or less"],
    ),
    "CTX_INIT longer than CLIP's 77 tokens": (
        lambda c: c.args(extra=("TRAINER.COOP.CTX_INIT", "_".join(["a photo of a"] * 20))),
        [r"The prompt of class '[a-z ]+' is 8\d tokens long", r"shorten TRAINER\.COOP\.CTX_INIT \('a photo"],
    ),
    "class name longer than CLIP's 77 tokens": (
        long_class_name,
        [r"The prompt of class 'blue bar x x x", "at most 77", "shorten that class name"],
    ),
    "--output-dir that is a file": (
        file_as_output_dir,
        [r'The output folder ".*results" cannot be written: .*results is a file, not a folder',
         "Give --output-dir a folder you can write to"],
    ),
    "split-file label beyond the training classes": (
        lambda c: split_file(c, '{"train": [["red_disk/0.png", 0, "red disk"]], "val": [], '
                                '"test": [["red_disk/0.png", 13, "red disk"]]}'),
        [r"split_folder\.json: the 'test' list labels red_disk/0\.png 13", r"'train' list has labels 0\.\.0 only",
         "Replace it with the official split file"],
    ),
})


@pytest.mark.parametrize("name", sorted(TRAIN_CASES))
def test_train_py_bad_input(name, tmp_path, data_root, tiny_clip_file, earlier_run, capsys):
    case = Case(tmp_path, data_root, tiny_clip_file, earlier_run)
    setup, phrases = TRAIN_CASES[name]
    argv = setup(case)
    assert_user_error(run_train, argv, capsys, phrases, out=case.out)
    logs = [name for name in os.listdir(case.out) if name.startswith("log.txt-")]
    assert not any("epoch [" in (case.out / log).read_text() for log in logs)  # it failed before training


def raise_disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def save_to_full_device(save):
    """torch.save writing to /dev/full instead: the real exceptions of a full disk (no errno reaches Python)."""
    return lambda obj, *args, **kwargs: save(obj, "/dev/full")


@pytest.mark.parametrize("fill", ["oserror", "torch_stream_writer"])
def test_full_disk_names_the_output_folder(fill, tmp_path, data_root, tiny_clip_file, monkeypatch, capsys):
    if fill == "torch_stream_writer" and not osp.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    monkeypatch.setattr(torch, "save", raise_disk_full if fill == "oserror" else save_to_full_device(torch.save))
    out = tmp_path / "full"
    what = {"oserror": r"The disk is full \(No space left on device\)",
            "torch_stream_writer": "torch.save could not write its file, most likely because the disk is full"}[fill]
    fix = f"free space in {re.escape(str(out))} .*or choose another --output-dir"
    err = assert_user_error(run_train, folder_run_args(data_root, tiny_clip_file, out, epochs=1), capsys, [what, fix])
    assert err.count("\n") == 1  # one paragraph, not three chained tracebacks


def test_debug_flag_and_environment_variable_show_the_traceback(tmp_path, data_root, tiny_clip_file, earlier_run,
                                                                 monkeypatch, capsys):
    case = Case(tmp_path, data_root, tiny_clip_file, earlier_run)
    bad = case.args(extra=("DATASET.NUM_SHOTS", "four"))
    code, err = run_main(run_train, ["--debug"] + bad, capsys)
    assert code == EXIT_USER_ERROR and "Traceback" in err and "DATASET.NUM_SHOTS takes a value of type int" in err
    monkeypatch.setenv("DPT_DEBUG", "1")
    code, err = run_main(run_train, bad, capsys)
    assert code == EXIT_USER_ERROR and "Traceback" in err
    monkeypatch.delenv("DPT_DEBUG")
    with pytest.raises(UserError, match="DATASET.NUM_SHOTS takes a value of type int"):  # in-process callers
        run_train(bad)


def test_check_data_missing_root_and_unknown_name(tmp_path, capsys):
    assert_user_error(check_data.main, ["--root", str(tmp_path / "nowhere")], capsys,
                      ["--root .*nowhere: no such folder", r"\$DATA", "python -m dpt_tools.make_toy_data"])
    assert_user_error(check_data.main, ["--root", str(tmp_path), "toyfogg"], capsys,
                      ["Unknown dataset", "toyfogg", "ToyFog"])


def test_results_and_plot_on_a_folder_without_runs(tmp_path, capsys):
    assert_user_error(parse_results.main, ["few-shot", str(tmp_path / "nowhere")], capsys,
                      ["does not exist", "give the folder train.py wrote into"])
    assert_user_error(parse_results.main, ["base2new", str(tmp_path)], capsys,
                      ["no base-to-new run folders", "give the output folder above the run folders"])
    assert_user_error(plot_results.main, [str(tmp_path), "--output", str(tmp_path / "x.png")], capsys,
                      ["no few-shot run folders"])
    assert not (tmp_path / "x.png").exists()


def test_benchmark_with_missing_weights(tmp_path, capsys):
    assert_user_error(benchmark.main, ["--backbone", "ViT-B/16", "--path", str(tmp_path / "clip.pt"),
                                       "--trainers", "CoOp", "--device", "cpu"], capsys,
                      ["MODEL.BACKBONE.PATH points to", r"clip\.pt", "Set it to a CLIP checkpoint"])


def test_output_dir_on_a_read_only_disk(tmp_path, data_root, tiny_clip_file, monkeypatch, capsys):
    """The error of a read-only disk (EROFS, raised as the kernel would, since root may write anywhere)."""
    out = tmp_path / "mounted" / "run"
    make_folder = os.makedirs

    def read_only_makedirs(path, *args, **kwargs):
        if str(path).startswith(str(out.parent)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return make_folder(path, *args, **kwargs)

    monkeypatch.setattr(os, "makedirs", read_only_makedirs)
    assert_user_error(run_train, folder_run_args(data_root, tiny_clip_file, out, epochs=1), capsys,
                      [rf'The output folder "{re.escape(str(out))}" cannot be written: .* is on a read-only disk',
                       "Give --output-dir a folder you can write to"])


def test_every_shipped_config_keeps_the_declared_rules():
    """The rules reject only bad values: the defaults and every shipped dataset and trainer config pass."""
    from dassl_compat import get_cfg_default
    from dpt_tools.config_files import shipped_config_root
    from trainers.config import check_cfg_options, extend_cfg

    defaults = extend_cfg(get_cfg_default())
    check_cfg_options(defaults)
    for path in sorted(shipped_config_root().rglob("*.yaml")):
        cfg = defaults.clone()
        cfg.merge_from_file(str(path))
        check_cfg_options(cfg)


def assert_usage_error(main, argv, capsys, phrases):
    """main(argv) stops in argparse: exit status 2, the usage line and one message naming the argument."""
    code, err = run_main(main, argv, capsys)
    assert code == EXIT_USER_ERROR, err
    assert "Traceback" not in err and err.startswith("usage: "), err
    assert re.search(r"(?m)^[\w. -]+: error: argument ", err), err
    for phrase in phrases:
        assert re.search(phrase, err), f"{phrase!r} not in: {err}"


# The commands' own arguments: (main, argv given a scratch folder, phrases, a path the command must not create).
TOOL_ARGUMENT_CASES = {
    "dpt-plot --output with no image suffix": (
        plot_results.main, lambda d: [str(d), "--output", str(d / "x.xyz")],
        [r"argument --output: '.*x\.xyz' has no image suffix", r"end the file name with one of .*\.png"], "x.xyz"),
    "dpt-plot --output in a folder that does not exist": (
        plot_results.main, lambda d: [str(d), "--output", str(d / "plots" / "x.png")],
        [r"argument --output: the folder of '.*plots/x\.png' does not exist: create it"], "plots"),
    "dpt-plot --dpi 0": (
        plot_results.main, lambda d: [str(d), "--output", str(d / "x.png"), "--dpi", "0"],
        ["argument --dpi: must be an integer >= 1, got 0"], "x.png"),
    "dpt-visualize --num-images 0": (
        visualize.main, lambda d: [str(d), "--out", str(d / "figures"), "--num-images", "0"],
        ["argument --num-images: must be an integer >= 1, got 0"], "figures"),
    "dpt-visualize --classes -1": (
        visualize.main, lambda d: [str(d), "--out", str(d / "figures"), "--classes", "-1"],
        ["argument --classes: must be an integer >= 1, got -1"], "figures"),
    "dpt-benchmark --classes 0": (
        benchmark.main, lambda d: ["--classes", "0", "--device", "cpu"],
        ["argument --classes: must be an integer >= 1, got 0"], None),
    "dpt-benchmark --batch-size two": (
        benchmark.main, lambda d: ["--batch-size", "two", "--device", "cpu"],
        ["argument --batch-size: must be an integer >= 1, got 'two'"], None),
    "dpt-results --shots -1": (
        parse_results.main, lambda d: ["few-shot", str(d), "--shots", "-1"],
        ["argument --shots: must be an integer >= 0, got -1"], None),
    "dpt-interpret --topk 0": (
        interpret_prompt.main, lambda d: [str(d), "--topk", "0"],
        ["argument --topk: must be an integer >= 1, got 0"], None),
}


@pytest.mark.parametrize("name", sorted(TOOL_ARGUMENT_CASES))
def test_command_argument_out_of_range(name, tmp_path, capsys):
    main, argv, phrases, not_created = TOOL_ARGUMENT_CASES[name]
    assert_usage_error(main, argv(tmp_path), capsys, phrases)
    if not_created is not None:
        assert not (tmp_path / not_created).exists()


DEMO_CASES = {
    "misspelt dataset": (["--dataset", "toy_fgo"], ["--dataset toy_fgo: not a toy dataset config",
                                                    "Do you mean toy_fog", "Choose from toy_dusk, toy_fog"]),
    "unknown trainer": (["--trainers", "CoOp", "Bogus"], ["--trainers Bogus: no toy recipe of that trainer",
                                                          "Choose from .*CoOp.*DPT"]),
    "zero shots": (["--shots", "0"], ["--shots 0: give the training images per class, 1 or more",
                                      "--trainers ZeroshotCLIP"]),
}


@pytest.mark.parametrize("name", sorted(DEMO_CASES))
def test_demo_arguments_are_checked_before_any_run(name, tmp_path, capsys):
    argv, phrases = DEMO_CASES[name]
    assert_user_error(demo.main, ["--data", str(tmp_path / "data"), "--output", str(tmp_path / "output"), *argv],
                      capsys, phrases)
    assert not (tmp_path / "data").exists() and not (tmp_path / "output").exists()


def test_demo_shows_the_message_of_a_failed_run(tmp_path, capsys):
    """A quiet run's stderr is held for its progress line; when the run fails, its message is printed."""
    output = tmp_path / "output"
    output.write_text("a file, not a folder")
    assert_user_error(demo.main, ["--data", str(tmp_path / "data"), "--output", str(output), "--trainers", "CoOp"],
                      capsys, [r"The output folder \".*output/toy_fog/CoOp/.*\" cannot be written",
                               "is a file, not a folder"])


def test_check_data_fails_when_a_requested_dataset_is_missing(tmp_path, capsys):
    assert check_data.main(["--root", str(tmp_path), "toy_fog", "EuroSAT"]) == 1
    printed = capsys.readouterr().out
    assert "0 of 2 datasets ready; to fix: ToyFog, EuroSAT" in printed
    assert "python -m dpt_tools.make_toy_data" in printed and "DATASETS.md" in printed
