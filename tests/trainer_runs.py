"""Every trainer the project registers, built as train.py builds it on the conftest's tiny CLIP and image
folder. The registry-wide tests (test_trainers.py, test_precision.py, test_cuda.py) run over
PROJECT_TRAINERS, so a new trainer is covered by registering it."""
import contextlib
import io

import pytest
import torch
from conftest import folder_run_args
from sklearn.metrics import f1_score

import trainers  # noqa: F401  (registers the trainers)
from dassl_compat import TRAINER_REGISTRY, build_trainer, set_random_seed
from dpt_tools import train
from trainers.base import registered_methods

PROJECT_TRAINERS = sorted(registered_methods())
# What a trainer needs on the tiny CLIP, by config node (none for the others): DPT's class-aware block
# within the 2-block ViT (BOTTOMLIMIT 2: block 0 deep prompts, block 1 class-aware).
# MaPLe, IVLP and PromptSRC: prompts in both blocks of each 2-block tower (their defaults need ViT-B's 12).
TINY_CLIP_OPTS = {
    "DPT": ("TRAINER.DPT.BOTTOMLIMIT", "2"),
    "MAPLE": ("TRAINER.MAPLE.PROMPT_DEPTH", "2"),
    "IVLP": ("TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2"),
    "PROMPTSRC": ("TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2"),
}

# Autocast keeps fp32 parameters and computes the losses in fp32 from fp32 logits; only activations
# are rounded, to fp16 (unit roundoff 2^-11) or bf16 (2^-8), over the 2 + 2 blocks of the tiny CLIP.
# Measured with CPU autocast on the fixed batch here, over the trainers: at most 2.0e-4 (fp16) /
# 2.4e-3 (bf16) relative for the loss, 7.0e-3 / 8.3e-2 for a gradient (the norm of the difference
# over the norm of the fp32 gradient; CoOp's context gradient in bf16 is the largest). The tolerances
# are 3-5x that: still far below what a lost GradScaler unscale (x2^16) or a zero gradient (1.0) gives.
LOSS_RTOL = {"fp16": 1e-3, "amp": 1e-3, "bf16": 1e-2}
GRAD_RTOL = {"fp16": 3e-2, "amp": 3e-2, "bf16": 2.5e-1}
# The logits of zero-shot CLIP (the whole image encoder under autocast, nothing in fp32 until the
# projection): measured 2.0e-3 (fp16) / 1.3e-2 (bf16) relative (norm of the difference over the norm).
LOGIT_RTOL = {"fp16": 1e-2, "amp": 1e-2, "bf16": 5e-2}


def run_args(trainer_name, data_root, clip_file, output_dir, precision="fp32", device="cpu", epochs=2, extra=()):
    """The conftest's folder run of `trainer_name` in `precision` on `device` (USE_CUDA set explicitly)."""
    node = TRAINER_REGISTRY.get(trainer_name).config_node
    opts = (*TINY_CLIP_OPTS.get(node, ()), f"TRAINER.{node}.PREC", precision, "USE_CUDA", str(device == "cuda"))
    return folder_run_args(data_root, clip_file, output_dir, trainer=trainer_name, epochs=epochs,
                           extra=(*opts, *extra))


def build_from_command_line(argv):
    """The trainer that train.py builds from the command line `argv` (nothing trained or loaded)."""
    cfg = train.setup_cfg(train.build_parser().parse_args(argv))
    set_random_seed(cfg.SEED)
    with contextlib.redirect_stdout(io.StringIO()):
        return build_trainer(cfg)


def build(trainer_name, data_root, clip_file, output_dir, precision="fp32", device="cpu", extra=()):
    """A trainer built as train.py builds it, in train mode at the first of several batches of epoch 0
    (so that forward_backward takes no end-of-epoch learning-rate step)."""
    trainer = build_from_command_line(run_args(trainer_name, data_root, clip_file, output_dir, precision, device,
                                               extra=extra))
    assert trainer.device.type == device
    trainer.set_model_mode("train")
    trainer.epoch, trainer.batch_idx, trainer.num_batches = 0, 0, 2
    return trainer


def evaluated_predictions(trainer):
    """(labels [N], predictions [N]) of the trainer's model on its test split: the argmax of the logits of
    every test batch, taken here (not by the engine's evaluator)."""
    trainer.set_model_mode("eval")
    labels, predictions = [], []
    with torch.no_grad():
        for batch in trainer.test_loader:
            images, batch_labels = trainer.parse_batch_test(batch)
            labels += batch_labels.tolist()
            predictions += trainer.model_inference(images).argmax(dim=1).tolist()
    return labels, predictions


def assert_reports(accuracy, log, trainer):
    """A run's accuracy (train.py's return value) and its log's result block (total, correct, accuracy,
    macro F1) are those of `trainer`'s model, built and loaded as the run built it, on the test split."""
    labels, predictions = evaluated_predictions(trainer)
    correct, total = sum(p == y for p, y in zip(predictions, labels)), len(labels)
    assert accuracy == pytest.approx(100.0 * correct / total)
    f1 = 100.0 * f1_score(labels, predictions, average="macro")
    expected = f"* total: {total:,}\n* correct: {correct:,}\n* accuracy: {accuracy:.1f}%\n"
    assert expected in log and f"* macro_f1: {f1:.1f}%" in log, (correct, total, f1)


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
