"""Precision modes (trainers/base.py): for every registered trainer, fp16 / amp / bf16 autocast compute the
fp32 step (loss and gradients of forward_backward, or the logits of a trainer that trains nothing) with
fp32 parameters, on the CPU and, where there is one, on a CUDA GPU (on a CPU, fp16 / amp run in fp32: fp16
is slower there); and a mixed-precision run through train.py keeps fp32 parameters."""
import pytest
import torch
from conftest import folder_run_args, read_log
from trainer_runs import (
    GRAD_RTOL,
    LOGIT_RTOL,
    LOSS_RTOL,
    PROJECT_TRAINERS,
    build,
    first_step,
    fixed_batch,
    relative_error,
)

from trainers.base import PRECISIONS

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU"))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("precision", [p for p in PRECISIONS if p != "fp32"])
@pytest.mark.parametrize("trainer_name", PROJECT_TRAINERS)
def test_every_precision_mode_computes_the_fp32_step(tmp_path, data_root, tiny_clip_file, trainer_name, precision,
                                                     device):
    reference = build(trainer_name, data_root, tiny_clip_file, tmp_path / "fp32", device=device)
    trainer = build(trainer_name, data_root, tiny_clip_file, tmp_path / precision, precision, device=device)
    trainer.model.load_state_dict(reference.model.state_dict())
    runs_in = "fp32" if device == "cpu" and precision in ("fp16", "amp") else precision  # fp16 only on a GPU
    assert trainer.precision == runs_in
    assert trainer.grad_scaler.is_enabled() == (runs_in in ("fp16", "amp"))
    batch = fixed_batch(reference)
    if not reference.get_model_names():  # zero-shot CLIP: nothing trains; the logits agree
        reference.set_model_mode("eval")
        with torch.no_grad():
            logits = [t.model_inference(batch["img"].to(t.device)) for t in (reference, trainer)]
        assert logits[1].dtype == torch.float32
        assert relative_error(logits[1], logits[0]) < LOGIT_RTOL[precision]
        return
    expected_loss, expected_grads = first_step(reference, batch)
    loss, grads = first_step(trainer, batch)
    assert loss == pytest.approx(expected_loss, rel=LOSS_RTOL[precision])
    params = dict(trainer.model.named_parameters())
    assert set(grads) == set(expected_grads)
    for name, grad in grads.items():
        assert params[name].dtype == torch.float32 and grad.dtype == torch.float32, name
        assert torch.isfinite(grad).all(), f"non-finite gradient of {name}"
        assert relative_error(grad, expected_grads[name]) < GRAD_RTOL[precision], name


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_coop_trains_in_mixed_precision_with_fp32_parameters(run_train, tmp_path, data_root, tiny_clip_file,
                                                             precision):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / precision, epochs=1,
                           extra=("TRAINER.COOP.PREC", precision))
    trainer = run_train(args)
    assert trainer.model.prompt_learner.ctx.dtype == torch.float32
    assert not trainer.grad_scaler.is_enabled()  # on a CPU, fp16 runs in fp32 and says so; bf16 is autocast
    log = read_log(tmp_path / precision)
    assert ("TRAINER.COOP.PREC fp16: running in fp32 on the CPU" in log) == (precision == "fp16")
    assert "* accuracy:" in log
