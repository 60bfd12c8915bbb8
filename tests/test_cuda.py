"""On a CUDA GPU: every precision mode of every trainable trainer computes the fp32 loss and gradients,
fp32 on the GPU computes what the CPU computes, and DPT trains in fp16 through train.py, saves,
resumes and evaluates (on the GPU and, from the GPU's checkpoints, on the CPU). Skipped without a GPU;
`bash scripts/check_gpu.sh` runs it on a GPU machine."""
import contextlib
import glob
import io
import os.path as osp

import pytest
import torch
from conftest import folder_run_args

import train
from dassl_compat import TRAINER_REGISTRY, build_trainer, set_random_seed

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (bash scripts/check_gpu.sh runs it on a GPU machine)"
)

# Each trainable trainer with what it needs on the conftest's tiny CLIP: CoCoOp's released 4 context
# tokens, and DPT's top block class-aware (BOTTOMLIMIT 2 of a 2-block ViT).
TRAINER_OPTS = {
    "CoOp": (),
    "CoCoOp": ("TRAINER.COCOOP.N_CTX", "4"),
    "VPT": (),
    "VLP": (),
    "DPT": ("TRAINER.DPT.BOTTOMLIMIT", "2"),
}

# Autocast keeps fp32 parameters and computes the losses in fp32 from fp32 logits; only activations
# are rounded, to fp16 (unit roundoff 2^-11) or bf16 (2^-8), over the 2 + 2 blocks of the tiny CLIP.
# Measured with CPU autocast on the fixed batch here, over the five trainers: at most 2.0e-4 (fp16) /
# 2.4e-3 (bf16) relative for the loss, 7.0e-3 / 8.3e-2 for a gradient (the norm of the difference
# over the norm of the fp32 gradient; CoOp's context gradient in bf16 is the largest). The tolerances
# are 3-5x that: still far below what a lost GradScaler unscale (x2^16) or a zero gradient (1.0) gives.
LOSS_RTOL = {"fp16": 1e-3, "amp": 1e-3, "bf16": 1e-2}
GRAD_RTOL = {"fp16": 3e-2, "amp": 3e-2, "bf16": 2.5e-1}


def run_args(trainer_name, data_root, clip_file, output_dir, precision="fp32", device="cuda", epochs=2, extra=()):
    """The conftest's folder run of `trainer_name` in `precision` on `device` (USE_CUDA set explicitly)."""
    node = TRAINER_REGISTRY.get(trainer_name).config_node
    opts = (*TRAINER_OPTS[trainer_name], f"TRAINER.{node}.PREC", precision, "USE_CUDA", str(device == "cuda"))
    return folder_run_args(data_root, clip_file, output_dir, trainer=trainer_name, epochs=epochs,
                           extra=(*opts, *extra))


def build(trainer_name, data_root, clip_file, output_dir, precision="fp32", device="cuda"):
    """A trainer built as train.py builds it, in train mode at the first of several batches of epoch 0
    (so that forward_backward takes no end-of-epoch learning-rate step)."""
    args = train.build_parser().parse_args(run_args(trainer_name, data_root, clip_file, output_dir, precision, device))
    cfg = train.setup_cfg(args)
    set_random_seed(cfg.SEED)
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = build_trainer(cfg)
    assert trainer.device.type == device
    trainer.set_model_mode("train")
    trainer.epoch, trainer.batch_idx, trainer.num_batches = 0, 0, 2
    return trainer


def fixed_batch(trainer):
    """The first test batch: 16 images [16, 3, 32, 32] (4 per class, no random transform) and labels [16]."""
    return next(iter(trainer.test_loader))


def first_step(trainer, batch):
    """(loss, {name: gradient}) of the trainer's own training step (forward_backward) on `batch`.

    In fp16 the GradScaler skips a step whose scaled gradients overflow, halves its scale and leaves
    the parameters unchanged; the step is repeated until one is taken (at most 16 halvings of the
    initial 2^16). The gradients are the unscaled ones of the step taken, at the initial parameters.
    """
    scaler = trainer.grad_scaler
    losses = []
    for _ in range(17):
        scale = scaler.get_scale()
        losses.append(trainer.forward_backward(batch)["loss"])
        if scaler.get_scale() >= scale:  # not skipped
            return losses[0], {name: p.grad.detach().clone()
                               for name, p in trainer.model.named_parameters() if p.requires_grad}
    raise AssertionError("the GradScaler skipped every step: the gradients overflow at every scale")


def relative_error(actual, expected):
    return ((actual.float().cpu() - expected.float().cpu()).norm() / expected.float().cpu().norm()).item()


@pytest.mark.parametrize("precision", ["fp16", "amp", "bf16"])
@pytest.mark.parametrize("trainer_name", list(TRAINER_OPTS))
def test_precision_modes_compute_the_fp32_loss_on_cuda(tmp_path, data_root, tiny_clip_file, trainer_name, precision):
    reference = build(trainer_name, data_root, tiny_clip_file, tmp_path / "fp32")
    trainer = build(trainer_name, data_root, tiny_clip_file, tmp_path / precision, precision)
    trainer.model.load_state_dict(reference.model.state_dict())
    assert trainer.grad_scaler.is_enabled() == (precision != "bf16")
    batch = fixed_batch(reference)
    expected_loss, expected_grads = first_step(reference, batch)
    loss, grads = first_step(trainer, batch)
    assert loss == pytest.approx(expected_loss, rel=LOSS_RTOL[precision])
    params = dict(trainer.model.named_parameters())
    assert set(grads) == set(expected_grads)
    for name, grad in grads.items():
        assert params[name].dtype == torch.float32 and grad.dtype == torch.float32, name
        assert torch.isfinite(grad).all(), f"non-finite gradient of {name}"
        assert relative_error(grad, expected_grads[name]) < GRAD_RTOL[precision], name


@pytest.mark.parametrize("trainer_name", list(TRAINER_OPTS))
def test_fp32_on_cuda_computes_what_the_cpu_computes(tmp_path, data_root, tiny_clip_file, trainer_name):
    """Only the order of fp32 sums differs between the devices. Measured on the CPU by reordering the
    sums (the batch vs one image at a time, or vs its two halves): the logits (at most 5 here) move by
    at most 3e-6, the loss by 1e-7 and a gradient by 7e-6 relative; the tolerances are 10-100x that.
    TF32 would round the inputs of the patch-embedding convolution to 10 bits, so it is turned off
    for cuDNN (where it is on by default); it is off by default for matmuls."""
    cpu = build(trainer_name, data_root, tiny_clip_file, tmp_path / "cpu", device="cpu")
    gpu = build(trainer_name, data_root, tiny_clip_file, tmp_path / "cuda")
    gpu.model.load_state_dict(cpu.model.state_dict())
    batch = fixed_batch(cpu)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        logits = {}
        for name, trainer in (("cpu", cpu), ("cuda", gpu)):
            trainer.set_model_mode("eval")
            with torch.no_grad():
                logits[name] = trainer.model_inference(batch["img"].to(trainer.device)).cpu()  # [16, 4]
            trainer.set_model_mode("train")
        steps = {"cpu": first_step(cpu, batch), "cuda": first_step(gpu, batch)}
    torch.testing.assert_close(logits["cuda"], logits["cpu"], atol=1e-4, rtol=1e-5)
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = steps["cpu"], steps["cuda"]
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    for name, grad in gpu_grads.items():
        assert relative_error(grad, cpu_grads[name]) < 1e-4, name


def read_log(output_dir):
    return "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))


def test_dpt_trains_in_fp16_resumes_and_evaluates_on_cuda(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "dpt"
    args = run_args("DPT", data_root, tiny_clip_file, out, precision="fp16", extra=("TRAINER.DPT.C_PRE", "1"))
    trainer = run_train(args)
    assert trainer.device.type == "cuda" and trainer.grad_scaler.is_enabled()
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters() if p.requires_grad)
    log = read_log(out)
    assert "epoch [2/2] batch [3/3]" in log and "* accuracy:" in log
    for name in ("visual_prompts", "cavpt", "prompt_learner"):
        assert (out / name / "checkpoint").read_text().strip() == "model.pth.tar-2"
        checkpoint = torch.load(out / name / "model.pth.tar-2", map_location="cpu", weights_only=True)
        assert checkpoint["epoch"] == 2
        assert all(value.dtype == torch.float32 and torch.isfinite(value).all()
                   for value in checkpoint["state_dict"].values() if value.is_floating_point())
    final_acc = trainer.test()

    resumed = run_train(args)
    second_log = open(sorted(glob.glob(str(out / "log.txt-*")))[-1]).read()
    assert "Previous epoch: 2" in second_log and "epoch [" not in second_log
    torch.testing.assert_close(resumed.model.prompt_learner.ctx, trainer.model.prompt_learner.ctx)

    eval_out = tmp_path / "dpt_eval"
    acc = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                    + run_args("DPT", data_root, tiny_clip_file, eval_out, precision="fp16"))
    assert acc == pytest.approx(final_acc)
    assert f"* accuracy: {final_acc:.1f}%" in read_log(eval_out)

    cpu_out = tmp_path / "dpt_eval_cpu"
    cpu_acc = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                        + run_args("DPT", data_root, tiny_clip_file, cpu_out, device="cpu"))
    assert 0.0 <= cpu_acc <= 100.0 and "Loading weights to cavpt from" in read_log(cpu_out)
