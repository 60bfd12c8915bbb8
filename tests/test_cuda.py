"""On a CUDA GPU: fp32 on the GPU computes what the CPU computes for every registered trainer, and DPT
trains in fp16 through train.py, saves, resumes and evaluates (on the GPU and, from the GPU's
checkpoints, on the CPU); test_precision.py runs every precision mode on the GPU too. Skipped without a
GPU; `bash scripts/check_gpu.sh` runs it on a GPU machine."""
import glob

import pytest
import torch
from conftest import read_log
from trainer_runs import PROJECT_TRAINERS, build, first_step, fixed_batch, relative_error, run_args

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU (bash scripts/check_gpu.sh runs it on a GPU machine)"
)


@pytest.mark.parametrize("trainer_name", PROJECT_TRAINERS)
def test_fp32_on_cuda_computes_what_the_cpu_computes(tmp_path, data_root, tiny_clip_file, trainer_name):
    """Only the order of fp32 sums differs between the devices. Measured on the CPU by reordering the
    sums (the batch vs one image at a time, or vs its two halves): the logits (at most 5 here) move by
    at most 3e-6, the loss by 1e-7 and a gradient by 7e-6 relative; the tolerances are 10-100x that.
    TF32 would round the inputs of the patch-embedding convolution to 10 bits, so it is turned off
    for cuDNN (where it is on by default); it is off by default for matmuls."""
    cpu = build(trainer_name, data_root, tiny_clip_file, tmp_path / "cpu", device="cpu")
    gpu = build(trainer_name, data_root, tiny_clip_file, tmp_path / "cuda", device="cuda")
    gpu.model.load_state_dict(cpu.model.state_dict())
    batch = fixed_batch(cpu)
    with torch.backends.cudnn.flags(enabled=True, benchmark=False, deterministic=True, allow_tf32=False):
        logits = {}
        for name, trainer in (("cpu", cpu), ("cuda", gpu)):
            trainer.set_model_mode("eval")
            with torch.no_grad():
                logits[name] = trainer.model_inference(batch["img"].to(trainer.device)).cpu()  # [16, 4]
            trainer.set_model_mode("train")
        torch.testing.assert_close(logits["cuda"], logits["cpu"], atol=1e-4, rtol=1e-5)
        if not cpu.get_model_names():  # zero-shot CLIP: nothing trains
            return
        steps = {"cpu": first_step(cpu, batch), "cuda": first_step(gpu, batch)}
    (cpu_loss, cpu_grads), (gpu_loss, gpu_grads) = steps["cpu"], steps["cuda"]
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    for name, grad in gpu_grads.items():
        assert relative_error(grad, cpu_grads[name]) < 1e-4, name


def test_dpt_trains_in_fp16_resumes_and_evaluates_on_cuda(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "dpt"
    args = run_args("DPT", data_root, tiny_clip_file, out, precision="fp16", device="cuda",
                    extra=("TRAINER.DPT.C_PRE", "1"))
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
                    + run_args("DPT", data_root, tiny_clip_file, eval_out, precision="fp16", device="cuda"))
    assert acc == pytest.approx(final_acc)
    assert f"* accuracy: {final_acc:.1f}%" in read_log(eval_out)

    cpu_out = tmp_path / "dpt_eval_cpu"
    cpu_acc = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                        + run_args("DPT", data_root, tiny_clip_file, cpu_out, device="cpu"))
    # the same weights in fp32 on the CPU: at most two of the 16 test images may fall the other way than in fp16
    assert abs(cpu_acc - final_acc) <= 2 * 100 / 16 and "Loading weights to cavpt from" in read_log(cpu_out)
