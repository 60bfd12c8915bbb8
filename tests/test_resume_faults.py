"""Runs that survive faults: bit-for-bit resume after SIGKILL (mid-epoch and during the save), one
consistent epoch on disk, the guarded output folder (lock, leftovers), the recorded config and
checkpoint metadata that refuse stale state, and the errors they produce (exit code, a message
that names the fix, nothing earlier in the output folder changed)."""
import contextlib
import glob
import hashlib
import io
import json
import os
import os.path as osp
import re
import runpy
import signal
import subprocess
import sys

import pytest
import torch
from conftest import ROOT, folder_run_args, write_image_folder

from dpt_models.errors import EXIT_USER_ERROR
from dpt_runs.output_folder import LOCK_FILE, OutputFolderLock

# Runs train.py in a fresh process that SIGKILLs itself at a chosen point, a stand-in for a crash,
# an out-of-memory kill or a pre-empted job:
#   update:N  after the N-th optimiser update of this process (mid-epoch)
#   save:N    during the N-th atomic checkpoint write: half a temporary file is on disk, not renamed
#   pointer:N after the N-th `checkpoint` pointer file write (the epoch is committed, old files remain)
KILLING_TRAIN = """
import os, signal, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from dpt_tools import train
from dpt_runs import checkpoint
from trainers.base import ClipPromptTrainer

kind, _, count = sys.argv[1].partition(":")
calls = [0]

def count_then_kill():
    calls[0] += 1
    return calls[0] == int(count or 0)

def die():
    os.kill(os.getpid(), signal.SIGKILL)

update, save, write_text = ClipPromptTrainer.model_backward_and_update, checkpoint._atomic_torch_save, \\
    checkpoint._atomic_write_text

def killing_update(self, *args, **kwargs):
    update(self, *args, **kwargs)
    if kind == "update" and count_then_kill():
        die()

def killing_save(obj, fpath):
    if kind == "save" and count_then_kill():
        with open(checkpoint.temporary_path(fpath), "wb") as f:
            f.write(b"PK half a checkpoint")
        die()
    save(obj, fpath)

def killing_write_text(text, fpath):
    write_text(text, fpath)
    if kind == "pointer" and count_then_kill():
        die()

ClipPromptTrainer.model_backward_and_update = killing_update
checkpoint._atomic_torch_save = killing_save
checkpoint._atomic_write_text = killing_write_text
train.main(sys.argv[2:])
"""


def train_process(tmp_path, args, kill_at="none"):
    script = tmp_path / "killing_train.py"
    if not script.exists():
        script.write_text(KILLING_TRAIN.format(root=ROOT))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DASSL_BACKEND": "lite"}
    return subprocess.run([sys.executable, str(script), kill_at, *args], capture_output=True, text=True, env=env,
                          cwd=ROOT)


def last_log(output_dir):
    return open(sorted(glob.glob(osp.join(output_dir, "log.txt*")))[-1]).read()


def result_lines(output_dir):
    return re.findall(r"^\* (?:total|correct|accuracy): .*$", last_log(output_dir), flags=re.M)


def final_state(output_dir, epoch):
    """{module: state_dict} of the model files of `epoch`."""
    return {osp.basename(osp.dirname(path)): torch.load(path, weights_only=True)["state_dict"]
            for path in glob.glob(osp.join(output_dir, "*", f"model.pth.tar-{epoch}"))}


def dpt_extra():
    return ("TRAINER.DPT.PREC", "fp32", "TRAINER.DPT.BOTTOMLIMIT", "2", "TRAINER.DPT.C_PRE", "1", "OPTIM.LR", "0.01")


# Kill points for 3 epochs of 3 batches. CoOp saves 1 file per epoch (+ the train state), DPT 3.
KILLS = {
    "CoOp": ["update:5", "pointer:1"],
    "DPT": ["update:5", "save:2", "save:4"],
}


@pytest.mark.parametrize("trainer", ["CoOp", "DPT"])
def test_a_run_killed_anywhere_resumes_bit_for_bit(run_train, tmp_path, data_root, tiny_clip_file, trainer):
    # On the CPU: on a GPU, cuDNN's autotuner and atomic-add kernels vary the last bits run to run.
    extra = ("USE_CUDA", "False", *(dpt_extra() if trainer == "DPT" else ()))
    whole, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the killed processes: the same float reductions
    try:
        run_train(folder_run_args(data_root, tiny_clip_file, whole, trainer, 3, extra))
    finally:
        torch.set_num_threads(threads)
    for kill_at in KILLS[trainer]:
        run = train_process(tmp_path, folder_run_args(data_root, tiny_clip_file, killed, trainer, 3, extra), kill_at)
        assert run.returncode == -9, (kill_at, run.stderr)
    resumed = train_process(tmp_path, folder_run_args(data_root, tiny_clip_file, killed, trainer, 3, extra))
    assert resumed.returncode == 0, resumed.stderr

    expected, got = final_state(whole, 3), final_state(killed, 3)
    assert sorted(got) == sorted(expected) and len(got) == (3 if trainer == "DPT" else 1)
    for name in expected:
        for key in expected[name]:
            assert torch.equal(got[name][key], expected[name][key]), (name, key)
    assert result_lines(killed) == result_lines(whole) and len(result_lines(whole)) == 3
    logs = "\n".join(open(p).read() for p in sorted(glob.glob(str(killed / "log.txt*"))))
    if trainer == "CoOp":  # killed mid-epoch 2, then after committing epoch 2
        assert re.findall(r"Previous epoch: \d", logs) == ["Previous epoch: 1", "Previous epoch: 2"]
    else:  # killed mid-epoch 2, then twice while saving epoch 2: every module resumed from epoch 1
        assert re.findall(r"Previous epoch: \d", logs) == ["Previous epoch: 1"] * 3
        assert "model.pth.tar-2.tmp." in logs and "left over by an interrupted run" in logs
    # Only the last two epochs are kept; nothing temporary is left.
    for folder in [killed] + [killed / name for name in got]:
        assert not [f for f in os.listdir(folder) if ".tmp." in f]
    for name in got:
        assert sorted(os.listdir(killed / name)) == ["checkpoint", "model.pth.tar-2", "model.pth.tar-3"]
    assert (killed / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-3\n"
    assert sorted(glob.glob(str(killed / "train_state.pth.tar-*"))) == [
        str(killed / "train_state.pth.tar-2"), str(killed / "train_state.pth.tar-3")]


def run_cli(args):
    """`python train.py ARGS` run in this process (no new interpreter): (exit code, stderr, stdout)."""
    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["train.py", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                runpy.run_path(osp.join(ROOT, "train.py"), run_name="__main__")
            except SystemExit as exit_:
                code = exit_.code
    finally:
        sys.argv = argv
    if isinstance(code, str):  # what the interpreter does with sys.exit("message")
        err.write(code + "\n")
        code = 1
    return code or 0, err.getvalue(), out.getvalue()


def snapshot(folder):
    """{relative path: sha256} of every file under `folder`."""
    return {osp.relpath(path, folder): hashlib.sha256(open(path, "rb").read()).hexdigest()
            for path in glob.glob(osp.join(folder, "**"), recursive=True) if osp.isfile(path)}


def assert_refused(args, folder, *fix):
    """train.py ARGS exits with status 2, says `fix` (each a phrase of the message) and leaves what was in
    `folder` as it was."""
    before = snapshot(folder)
    code, err, _ = run_cli(args)
    assert code == EXIT_USER_ERROR and "Traceback" not in err, err
    for phrase in fix:
        assert phrase in err, (phrase, err)
    after = snapshot(folder)
    assert {path: after.get(path) for path in before} == before
    return err


def test_a_second_run_into_a_busy_folder_stops_and_a_dead_runs_lock_is_taken_over(run_train, tmp_path, data_root,
                                                                                    tiny_clip_file):
    out = tmp_path / "busy"
    args = folder_run_args(data_root, tiny_clip_file, out, epochs=1)
    run_train(args)
    holder = OutputFolderLock(str(out)).acquire()  # another run, writing into the folder now
    try:
        err = assert_refused(args, out, "Another run is writing into the output folder", f"pid {os.getpid()}",
                             "another --output-dir")
        assert_refused(["--eval-only"] + folder_run_args(data_root, tiny_clip_file, out, "ZeroshotCLIP"), out,
                       "Another run is writing")
    finally:
        holder.release()
    assert "overwrite each other's checkpoints" in err

    dead = subprocess.Popen([sys.executable, "-c", "import os, signal, sys; sys.path.insert(0, sys.argv[1]); "
                             "from dpt_runs.output_folder import OutputFolderLock; "
                             "OutputFolderLock(sys.argv[2]).acquire(); os.kill(os.getpid(), signal.SIGKILL)",
                             ROOT, str(out)])
    assert dead.wait() == -signal.SIGKILL and (out / LOCK_FILE).read_text().startswith(f"pid {dead.pid} on ")
    run_train(args)
    assert f"took over the lock {out / LOCK_FILE} of a run that is no longer running (pid {dead.pid}" in last_log(out)
    assert not (out / LOCK_FILE).exists()


def test_resuming_with_other_options_is_refused_naming_the_keys(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "run"
    run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=2))
    recorded = (out / "config.yaml").read_text()
    assert "LR: 0.002" in recorded and "CHECKPOINT_FREQ: 1" in recorded
    err = assert_refused(folder_run_args(data_root, tiny_clip_file, out, epochs=2, extra=("OPTIM.LR", "0.2")), out,
                         "OPTIM.LR: 0.002 there, 0.2 now", "config.yaml", "another output folder")
    assert "OPTIM.MAX_EPOCH" not in err
    # Where files are and how much is printed do not change the result: it resumes (and only re-tests).
    moved = folder_run_args(data_root, tiny_clip_file, out, epochs=2, extra=("TRAIN.PRINT_FREQ", "5"))
    assert run_cli(moved)[0] == 0 and "Previous epoch: 2" in last_log(out)


def test_eval_only_without_weights_is_an_error_unless_initial_prompts_are_meant(tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "eval"
    out.mkdir()
    args = ["--eval-only"] + folder_run_args(data_root, tiny_clip_file, out)
    assert_refused(args, out, "--eval-only without --model-dir", "--model-dir <training output folder>",
                   "--eval-initial-prompts")
    code, _, stdout = run_cli(["--eval-initial-prompts"] + args)
    assert code == 0 and "* accuracy:" in stdout


def test_checkpoints_refuse_another_trainer_or_a_class_specific_context_on_other_classes(
        run_train, tmp_path, data_root, tiny_clip_file):
    dpt = tmp_path / "dpt"
    run_train(folder_run_args(data_root, tiny_clip_file, dpt, "DPT", 1, dpt_extra()))
    meta = torch.load(dpt / "prompt_learner" / "model.pth.tar-1", weights_only=True)["meta"]
    assert meta["trainer"] == "DPT" and meta["classnames"] == ["blue bar", "green square", "red disk", "white cross"]
    coop_eval = tmp_path / "coop_eval"
    coop_eval.mkdir()
    load = ["--eval-only", "--model-dir", str(dpt), "--load-epoch", "1"]
    assert_refused(load + folder_run_args(data_root, tiny_clip_file, coop_eval), dpt,
                   "was trained by DPT, this run is CoOp", "Point --model-dir at a CoOp run", "--allow-mismatch")
    assert run_cli(load + ["--allow-mismatch"] + folder_run_args(data_root, tiny_clip_file, coop_eval))[0] == 0

    csc = tmp_path / "csc_base"  # one context per class, trained on the 2 base classes
    run_train(folder_run_args(data_root, tiny_clip_file, csc, epochs=1,
                              extra=("TRAINER.COOP.CSC", "True", "DATASET.SUBSAMPLE_CLASSES", "base")))
    new = tmp_path / "csc_new"  # 2 other classes: the shapes fit, the meaning does not
    new.mkdir()
    assert_refused(["--eval-only", "--model-dir", str(csc), "--load-epoch", "1"]
                   + folder_run_args(data_root, tiny_clip_file, new,
                                     extra=("TRAINER.COOP.CSC", "True", "DATASET.SUBSAMPLE_CLASSES", "new")),
                   csc, "class-specific weights (ctx", "blue bar, green square", "red disk, white cross",
                   "train with CSC False", "--allow-mismatch")


def test_a_truncated_checkpoint_names_its_file_and_training_falls_back_to_the_previous_epoch(
        run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "run"
    args = folder_run_args(data_root, tiny_clip_file, out, epochs=3)
    trained = run_train(args).model.prompt_learner.ctx.detach().clone()
    accuracy = re.findall(r"\* accuracy: .*", last_log(out))
    final = out / "prompt_learner" / "model.pth.tar-3"
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])  # a full disk, an interrupted copy

    eval_out = tmp_path / "eval"
    eval_out.mkdir()
    assert_refused(["--eval-only", "--model-dir", str(out), "--load-epoch", "1"]  # deleted: only 2 are kept
                   + folder_run_args(data_root, tiny_clip_file, eval_out), out,
                   "model.pth.tar-1", "the saved epochs there are [2, 3]", "evaluate MAX_EPOCH")
    assert_refused(["--eval-only", "--model-dir", str(out), "--load-epoch", "3"]
                   + folder_run_args(data_root, tiny_clip_file, eval_out), out,
                   f'Cannot read the checkpoint "{final}"', "truncated or corrupt", "copy it again")

    resumed = run_train(args)
    log = last_log(out)
    assert f'Cannot resume from epoch 3: Cannot read the checkpoint "{final}"' in log
    assert "Previous epoch: 2" in log and "epoch [3/3]" in log and "epoch [2/3]" not in log
    assert torch.equal(resumed.model.prompt_learner.ctx, trained)  # epoch 3 again, bit for bit
    assert re.findall(r"\* accuracy: .*", log) == accuracy


def test_the_few_shot_cache_is_sampled_again_when_the_dataset_changed(run_train, tmp_path, tiny_clip_file):
    root = tmp_path / "data"
    write_image_folder(str(root / "colours"))
    args = ["--eval-only"] + folder_run_args(str(root), tiny_clip_file, tmp_path / "zs1", "ZeroshotCLIP",
                                             extra=("DATASET.NUM_SHOTS", "2"))
    run_train(args)
    cache = root / "colours" / "split_fewshot" / "shot_2-seed_1.json"
    assert len(json.loads(cache.read_text())["fingerprint"]["classes"]) == 4
    write_image_folder(str(root / "colours"), classes=("yellow_star",), seed=3)  # a class folder added later
    args[args.index("--output-dir") + 1] = str(tmp_path / "zs2")
    run_train(args)
    log = last_log(tmp_path / "zs2")
    assert f"the few-shot cache {cache} was sampled from another version of the dataset" in log
    assert "(4 classes, 24 train, 8 val images then, 5 classes, 30 train, 10 val images now)" in log
    assert re.search(r"# classes\s+5", log) and "* total: 20" in log
    cached = json.loads(cache.read_text())
    assert len(cached["fingerprint"]["classes"]) == 5 and len(cached["train"]) == 10


def run_script(script, *args, **env):
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT", "EXTRA_OPTS")}
    return subprocess.run(["bash", osp.join(ROOT, "scripts", script), *args],
                          env={**full_env, "PYTHON": sys.executable, **env}, capture_output=True, text=True, cwd=ROOT)


def test_scripts_skip_a_finished_run_only_while_its_recorded_options_match(tmp_path):
    from dpt_runs.output_folder import record_config
    from dpt_tools import train

    env = {"DATA": str(tmp_path), "DRY_RUN": "1", "SEEDS": "1", "OUTPUT": str(tmp_path / "output")}
    command = run_script("dpt/main.sh", "eurosat", "4", **env).stdout.strip()
    args = command.split()[2:]  # python train.py ARGS (no argument has a space here)
    run_dir = args[args.index("--output-dir") + 1]
    os.makedirs(run_dir)
    record_config(train.setup_cfg(train.build_parser().parse_args(args)), run_dir)  # as train.py records it
    with open(osp.join(run_dir, "log.txt"), "w") as log:
        log.write("=> result\n* total: 10\n* correct: 5\n* accuracy: 50.0%\n")

    same = run_script("dpt/main.sh", "eurosat", "4", **env)
    assert same.returncode == 0 and same.stdout == f"Results are available in {run_dir}. Skip this job\n"
    before = snapshot(run_dir)
    changed = run_script("dpt/main.sh", "eurosat", "4", EXTRA_OPTS="TRAINER.DPT.BOTTOMLIMIT 2", **env)
    assert changed.returncode == 1 and "train.py" not in changed.stdout
    assert "TRAINER.DPT.BOTTOMLIMIT: 12 there, 2 now" in changed.stderr and "OUTPUT=" in changed.stderr
    assert f"Stopped: {run_dir} holds a result, and checking its recorded options against these failed" \
        in changed.stderr
    assert snapshot(run_dir) == before

    no_torch = tmp_path / "python-without-torch"  # the check itself fails: its own error shows, not "options"
    no_torch.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    no_torch.chmod(0o755)
    broken = run_script("dpt/main.sh", "eurosat", "4", **{**env, "PYTHON": str(no_torch)})
    assert broken.returncode == 1 and "No module named 'torch'" in broken.stderr
    assert "other options" not in broken.stderr and f"({no_torch} train.py --compare-recorded-config" in broken.stderr
    assert snapshot(run_dir) == before


def test_staging_folders_of_a_killed_toy_data_generation_are_removed(tmp_path):
    from dpt_toyworld.benchmarks import remove_abandoned_staging

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    abandoned, running = tmp_path / f".toy_fog-{dead.pid}-x1", tmp_path / f".toy_fog-{os.getpid()}-x2"
    for folder in (abandoned, running):
        (folder / "train").mkdir(parents=True)
    remove_abandoned_staging(str(tmp_path), "toy_fog")
    assert not abandoned.exists() and running.exists()


def test_a_full_disk_while_saving_leaves_no_half_file_and_the_run_resumes(run_train, tmp_path, data_root,
                                                                          tiny_clip_file, monkeypatch):
    from dpt_models.errors import UserError

    out = tmp_path / "run"
    args = folder_run_args(data_root, tiny_clip_file, out, epochs=2)
    save = torch.save

    def fill_the_disk(obj, path):
        if str(path).startswith(str(out / "prompt_learner" / "model.pth.tar-2")):
            with open(path, "wb") as half:
                half.write(b"PK")
            raise OSError(28, "No space left on device")
        return save(obj, path)

    monkeypatch.setattr(torch, "save", fill_the_disk)
    with pytest.raises(UserError, match=r"The disk is full \(No space left on device\)"):
        run_train(args)
    assert sorted(os.listdir(out / "prompt_learner")) == ["checkpoint", "model.pth.tar-1"]
    monkeypatch.setattr(torch, "save", save)
    run_train(args)
    assert "Previous epoch: 1" in last_log(out) and "* accuracy:" in last_log(out)


def test_checkpoints_of_an_older_layout_resume_only_when_every_module_has_the_same_epoch(
        run_train, tmp_path, data_root, tiny_clip_file):
    from dpt_models.errors import UserError

    out = tmp_path / "older"
    args = folder_run_args(data_root, tiny_clip_file, out, "DPT", 2, dpt_extra())
    run_train(args)
    for path in glob.glob(str(out / "train_state.pth.tar-*")) + [str(out / "config.yaml")]:
        os.remove(path)  # as written before train states existed: per-module `checkpoint` files only
    (out / "visual_prompts" / "checkpoint").write_text("model.pth.tar-1\n")  # killed between two modules
    with pytest.raises(UserError, match=r"are from different epochs .*Delete the newer files"):
        run_train(args)
    (out / "visual_prompts" / "checkpoint").write_text("model.pth.tar-2\n")
    run_train(args)
    assert "no random state saved, so the resumed run is not bit-identical" in last_log(out)
    assert "Previous epoch: 2" in last_log(out)


def test_imagenets_few_shot_cache_is_sampled_again_when_a_class_folder_changed(tmp_path, capsys):
    from tests.dataset_fixtures import build_imagenet, write_image
    from tests.test_datasets import build

    mini = build_imagenet(str(tmp_path))
    first = build(tmp_path, "imagenet", num_shots=2)
    capsys.readouterr()
    assert build(tmp_path, "imagenet", num_shots=2).train_x[0].impath == first.train_x[0].impath
    assert "Loading preprocessed few-shot data" in capsys.readouterr().out
    train_dir = osp.join(mini.dataset_dir, "images", "train")
    wnid = sorted(os.listdir(train_dir))[0]
    write_image(osp.join(train_dir, wnid, f"{wnid}_99.JPEG"))  # an image added to a class
    build(tmp_path, "imagenet", num_shots=2)
    assert "was sampled from another version of the dataset (5 class folders then, 5 now, or files added or " \
           "removed in them): sampling again" in capsys.readouterr().out
