"""CAVPT (dpt_models/cavpt.py and the auxiliary loss of dpt_models/dpt.py): fidelity of the generator to the
authors' outputs, and the auxiliary loss without a match and its gradient paths."""
import torch
from reference import assert_close, float_outputs, reference_model

from dpt_models.dpt import auxiliary_loss


def test_cavpt_generator_reproduces_reference_prompts_and_aux_logits():
    ref, _, model = reference_model("dpt")
    cavpt = ref["cavpt"]
    generator = model.cavpt[0]
    with torch.no_grad():
        prompts, aux_logits = generator(cavpt["residual_in"][0], cavpt["text_input"])
    assert_close(prompts, cavpt["prompts"][0], atol=1e-5, what="class-aware prompts")
    assert_close(aux_logits, cavpt["aux_logits"][0], atol=1e-5, what="auxiliary logits")


def test_aux_loss_is_zero_not_nan_when_no_label_is_in_the_top_k():
    ref, trainer, model = reference_model("dpt", **{"TRAINER.DPT.CPN": 2})
    model.train()
    outputs = model(ref["images"])
    assert outputs["class_indices"].shape == (4, 2)
    absent = torch.tensor([c for c in range(10) if c not in outputs["class_indices"]][:1] * 4)
    loss, kept = auxiliary_loss(outputs["aux_logits"], outputs["class_indices"], absent)
    assert kept == 0 and loss.item() == 0.0
    total, components = trainer.compute_loss(float_outputs(outputs), absent)
    assert torch.isfinite(total) and components["aux_rows_kept"] == 0
    total.backward()
    assert torch.count_nonzero(model.cavpt[0].aux_classifier.weight.grad) == 0


def test_aux_loss_reaches_the_text_context_through_the_queries_but_not_the_image_tokens():
    ref, _, model = reference_model("dpt")
    model.train()
    outputs = model(ref["images"])
    loss, kept = auxiliary_loss(outputs["aux_logits"], outputs["class_indices"], ref["labels"])
    assert kept == 4
    loss.backward()
    # text context -> learned text features -> CAVPT queries -> auxiliary logits
    assert model.prompt_learner.ctx.grad is not None and model.prompt_learner.ctx.grad.abs().sum() > 0
    # the block-0 prompts only reach CAVPT through its detached key/value tokens
    assert model.visual_prompts.ctx.grad is None or torch.count_nonzero(model.visual_prompts.ctx.grad) == 0
