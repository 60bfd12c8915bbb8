"""KgCoOp: fidelity to the authors' code (tests/fixtures/kgcoop.pt, written by `python -m
dpt_tools.fidelity_kgcoop` from github.com/htyao89/KgCoOp) and the loss through train.py."""
import re

import pytest
import torch
from conftest import folder_run_args, read_log
from reference import assert_close, bare_trainer, load_reference, reference_clip, reference_model, with_training_step

from dassl_compat.errors import UserError


def test_kgcoop_initialises_its_prompt_and_template_as_the_authors():
    ref = load_reference("kgcoop")
    trainer = bare_trainer("kgcoop")
    model = trainer.build_clip_model(reference_clip(), ref["meta"]["classnames"])
    # their CTX_INIT True: 4 tokens from "a photo of a"
    assert_close(model.prompt_learner.ctx, ref["trainable_values"]["prompt_learner.ctx"], atol=0, what="ctx init")
    assert torch.equal(model.prompt_learner.tokenized_prompts, ref["tokenized_prompts"])
    assert_close(model.template_features, ref["features"]["zs_text_features"], atol=1e-6, what="template features")


def test_kgcoop_reproduces_reference_logits_losses_and_gradients():
    ref, trainer, model = reference_model("kgcoop")
    images, labels = ref["images"], ref["labels"]
    model.eval()
    with torch.no_grad():
        assert_close(model(images)["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
    with_training_step(trainer, model)
    outputs = model(images)
    assert_close(outputs["logits"], ref["train_outputs"]["logits"], atol=1e-4, what="train logits")
    loss, components = trainer.compute_loss(outputs, labels)
    assert loss.item() == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    for name, value in ref["loss_components"].items():
        assert components[name].item() == pytest.approx(value, rel=1e-5), name
    summary = trainer.forward_backward({"img": images, "label": labels})  # our training step
    assert summary["loss"] == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    # gradients are O(10) (the logits carry CLIP's x100 scale): atol 1e-4 is float rounding
    assert_close(model.prompt_learner.ctx.grad, ref["grads"]["epoch0"]["prompt_learner.ctx"], atol=1e-4, rtol=1e-4,
                 what="ctx grad")


def test_kgcoop_loss_is_cross_entropy_plus_w_times_the_distance_in_train_py_runs(run_train, tmp_path, data_root,
                                                                                 tiny_clip_file):
    out = tmp_path / "kgcoop"
    # a random context: "a photo of a" is the folder dataset's template itself, at distance 0
    opts = ("TRAINER.KGCOOP.PREC", "fp32", "TRAINER.KGCOOP.W", "2.0", "TRAINER.KGCOOP.CTX_INIT", "")
    run_train(folder_run_args(data_root, tiny_clip_file, out, trainer="KgCoOp", epochs=1, extra=opts))
    log = read_log(out)
    assert "Trainable parameters: 512" in log  # N_CTX 4 x 128
    first = re.search(r"loss ([\d.]+) .*ce_logits ([\d.]+) .*kg_distance ([\d.]+)", log)
    loss, ce, distance = map(float, first.groups())
    assert distance > 0 and loss == pytest.approx(ce + 2.0 * distance, abs=3e-4)  # the log rounds to 4 decimals
    with pytest.raises(UserError, match="TRAINER.KGCOOP.W must be >= 0"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "bad", trainer="KgCoOp",
                                  extra=("TRAINER.KGCOOP.W", "-1.0")))
