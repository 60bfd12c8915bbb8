"""Multi-process training with torch's DistributedDataParallel, on CPU with the gloo backend: one DDP
step over 2 processes equals one step of a single process on the same global batch, and train.py
runs under torchrun (one log, one set of checkpoints, loadable by a single process)."""
import glob
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from conftest import ROOT, folder_run_args
from reference import load_reference, reference_clip
from torch.nn.parallel import DistributedDataParallel

from dpt_models.coop import CoOpCLIP
from dpt_models.templates import template_for
from dpt_models.vpt import VPTCLIP
from trainers.base import ddp_options

WORLD_SIZE = 2


def reference_model(method):
    """CoOp or VPT on the reference tiny CLIP, with the reference's trainable values."""
    ref = load_reference(method)
    if method == "coop":
        model = CoOpCLIP(reference_clip(), ref["meta"]["classnames"])
        trainable = {"prompt_learner.ctx": model.prompt_learner.ctx}
    else:
        model = VPTCLIP(reference_clip(), ref["meta"]["classnames"], template_for(ref["meta"]["dataset"]))
        trainable = {"image_encoder.transformer.ctx_learner.ctx": model.visual_prompts.ctx}
    with torch.no_grad():
        for name, param in trainable.items():
            param.copy_(ref["trainable_values"][name])
    return ref, model


def sgd_step(model, images, labels):
    """One SGD step on the mean cross-entropy; returns the trainable parameters after it."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.1)
    F.cross_entropy(model(images)["logits"], labels).backward()
    optimizer.step()
    return [p.detach().clone() for p in params]


def ddp_worker(rank, method, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD_SIZE)
    try:
        ref, model = reference_model(method)
        model = DistributedDataParallel(model.train(), **ddp_options())
        share = len(ref["labels"]) // WORLD_SIZE
        rows = slice(rank * share, (rank + 1) * share)
        torch.save(sgd_step(model, ref["images"][rows], ref["labels"][rows]), os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("method", ["coop", "vpt"])
def test_one_ddp_step_equals_one_process_on_the_global_batch(method, tmp_path):
    """DDP averages the processes' gradients of their mean losses over equal shares of the batch:
    the gradient of the mean loss over the whole batch, so the step is the single-process step."""
    mp.spawn(ddp_worker, args=(method, str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    ref, model = reference_model(method)
    expected = sgd_step(model.train(), ref["images"], ref["labels"])
    for rank in range(WORLD_SIZE):
        for got, want in zip(torch.load(tmp_path / f"{rank}.pt", weights_only=True), expected):
            # the step moves CoOp's context by O(5) (gradients carry CLIP's x100 logit scale): 1e-5
            # absolute is float rounding of summing the two halves' gradients in another order
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def run_under_torchrun(args):
    """train.py with `args` in WORLD_SIZE processes under torchrun (CPU, gloo, the bundled engine)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", DASSL_BACKEND="lite")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD_SIZE}",
               os.path.join(ROOT, "train.py"), *args]
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]


def test_train_py_under_torchrun_logs_once_and_saves_loadable_checkpoints(data_root, tiny_clip_file, tmp_path,
                                                                          run_train):
    out = tmp_path / "ddp"
    opts = ("TRAINER.DPT.PREC", "fp32", "TRAINER.DPT.BOTTOMLIMIT", "2", "OPTIM.LR", "0.01")
    args = folder_run_args(data_root, tiny_clip_file, out, trainer="DPT", epochs=1, extra=opts)
    run_under_torchrun(args)
    assert glob.glob(str(out / "log.txt*")) == [str(out / "log.txt")]
    log = (out / "log.txt").read_text()
    # 24 training images, global batch 8 = 4 per process: 3 steps per epoch
    assert "Distributed training: 2 processes" in log and "epoch [1/1] batch [3/3]" in log
    ddp_accuracy = float(log.split("* accuracy: ")[-1].split("%")[0])
    for module in ("visual_prompts", "cavpt", "prompt_learner"):
        assert (out / module / "model.pth.tar-1").is_file()
    reloaded = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "1"]
                         + folder_run_args(data_root, tiny_clip_file, tmp_path / "eval", trainer="DPT", extra=opts))
    assert reloaded == pytest.approx(ddp_accuracy, abs=0.051)  # the log prints one decimal


def test_promptsrc_under_torchrun_aggregates_once_and_saves_the_average(data_root, tiny_clip_file, tmp_path, run_train):
    """PromptSRC's GPA runs in every process on the same (all-reduced) parameters; rank 0 saves the average."""
    out = tmp_path / "ddp"
    opts = ("TRAINER.PROMPTSRC.PREC", "fp32", "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2",
            "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2", "TRAINER.PROMPTSRC.GPA_MEAN", "1")
    args = folder_run_args(data_root, tiny_clip_file, out, trainer="PromptSRC", epochs=2, extra=opts)
    run_under_torchrun(args)
    log = (out / "log.txt").read_text()
    assert "Distributed training: 2 processes" in log and log.count("GPA: the trained parameters") == 1
    ddp_accuracy = float(log.split("* accuracy: ")[-1].split("%")[0])
    reloaded = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                         + folder_run_args(data_root, tiny_clip_file, tmp_path / "eval", trainer="PromptSRC",
                                           extra=opts))
    assert reloaded == pytest.approx(ddp_accuracy, abs=0.051)
