"""MaPLe, IVLP and PromptSRC against their authors' code: tests/fixtures/<method>_reference.pt, written by
`python -m dpt_tools.fidelity_multimodal` from muzairkhattak/multimodal-prompt-learning (MaPLe, IVLP) and
muzairkhattak/PromptSRC on the CPU in fp32. Given the same CLIP, class names and prompt values, our models
reproduce their eval logits, their loss (each PromptSRC term), the gradient of every trainable parameter
at the first step, and PromptSRC's loss and gradients at a later epoch and its GPA average. Also the
trainable parameter counts on ViT-B/16 with the authors' base-to-new configs."""
import pytest
import torch
from reference import FIXTURES, assert_close, reference_clip

from dpt_models.clip_backbone import CLIP, build_model
from dpt_models.ivlp import IVLPCLIP
from dpt_models.maple import MaPLeCLIP
from dpt_models.promptsrc import PromptAggregate, PromptSRCCLIP, gaussian_epoch_weights, self_consistency_loss
from dpt_tools.fidelity_multimodal import maple_clip_state_dict
from dpt_tools.fidelity_multimodal_side import LARGE, VALUE_SEED, seeded_normal, sketch_matrix


def load(method):
    return torch.load(f"{FIXTURES}/{method}_reference.pt", weights_only=True)


def our_model(method, ref):
    options = ref["meta"]["options"]
    classnames = ref["meta"]["classnames"]
    if method == "maple":
        clip_model = build_model(maple_clip_state_dict()).float().eval()
        return MaPLeCLIP(clip_model, classnames, n_ctx=options["N_CTX"], depth=options["PROMPT_DEPTH"],
                         ctx_init=options["CTX_INIT"])
    model_class = IVLPCLIP if method == "ivlp" else PromptSRCCLIP
    return model_class(reference_clip(), classnames, n_ctx_text=options["N_CTX_TEXT"],
                       n_ctx_vision=options["N_CTX_VISION"], depth_text=options["PROMPT_DEPTH_TEXT"],
                       depth_vision=options["PROMPT_DEPTH_VISION"], ctx_init=options["CTX_INIT"])


def our_name(theirs):
    """The authors' parameter name -> (our parameter name, index in its first dimension or None)."""
    parts = theirs.split(".")
    if theirs == "prompt_learner.ctx" or theirs.startswith("prompt_learner.proj."):
        return theirs, None
    if theirs.startswith("prompt_learner.compound_prompts_text."):  # MaPLe's deep text prompt i
        return "prompt_learner.text_prompts", int(parts[-1])
    if theirs.startswith("prompt_learner.compound_prompt_projections."):
        return f"prompt_learner.compound_projections.{parts[2]}.{parts[3]}", None
    if theirs == "image_encoder.VPT":  # IVLP's first image prompt
        return "prompt_learner.visual_prompts", 0
    if theirs.startswith("image_encoder.transformer.resblocks."):  # image block i's prompt
        return "prompt_learner.visual_prompts", int(parts[3])
    if theirs.startswith("text_encoder.transformer.resblocks."):  # text block i >= 1's prompt
        return "prompt_learner.text_prompts", int(parts[3]) - 1
    raise KeyError(theirs)


def parameter_view(params, theirs):
    name, index = our_name(theirs)
    return params[name] if index is None else params[name][index]


def their_values(ref, values=None):
    """{their name: value}: stored, or (MaPLe's large matrices) redrawn from their seed."""
    values = ref["trainable_values"] if values is None else values
    return {name: values[name] if name in values else seeded_normal(ref["trainable_shapes"][name],
                                                                    VALUE_SEED + 100 + index)
            for index, name in enumerate(ref["trainable_names"])}


def load_values(model, ref, values=None):
    params = dict(model.named_parameters())
    trainable = {name for name, p in params.items() if p.requires_grad}
    assert {our_name(name)[0] for name in ref["trainable_names"]} == trainable
    assert sum(params[name].numel() for name in trainable) == sum(
        torch.Size(shape).numel() for shape in ref["trainable_shapes"].values())
    with torch.no_grad():
        for name, value in their_values(ref, values).items():
            parameter_view(params, name).copy_(value)


def assert_gradients(model, expected, what):
    params = dict(model.named_parameters())
    for name, grad in expected.items():
        ours = parameter_view(params, name).grad if our_name(name)[1] is None else \
            params[our_name(name)[0]].grad[our_name(name)[1]]
        if ours.numel() > LARGE:  # stored as a sketch: grad @ S
            ours = ours @ sketch_matrix(ours.shape[1])
        atol = 1e-5 * grad.abs().max().item() + 1e-8
        assert_close(ours, grad, atol=atol, rtol=1e-4, what=f"grad of {name} ({what})")


def loss_of(method, model, ref):
    """Our training loss (and components) on the fixture's batch, as the trainer computes it."""
    outputs = model(ref["images"])
    if method != "promptsrc":
        return torch.nn.functional.cross_entropy(outputs["logits"], ref["labels"]), {}, outputs
    options = ref["meta"]["options"]
    loss, components = self_consistency_loss(outputs, ref["labels"], options["TEXT_LOSS_WEIGHT"],
                                             options["IMAGE_LOSS_WEIGHT"])
    return loss, components, outputs


@pytest.mark.parametrize("method", ["maple", "ivlp", "promptsrc"])
def test_reproduces_the_authors_logits_loss_and_gradients(method):
    ref = load(method)
    torch.manual_seed(0)
    model = our_model(method, ref)
    load_values(model, ref)
    model.eval()
    with torch.no_grad():
        assert_close(model(ref["images"])["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
    model.train()
    loss, components, outputs = loss_of(method, model, ref)
    assert loss.item() == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    if method == "promptsrc":
        for name, value in ref["loss_components"]["epoch0"].items():
            assert float(components[name]) == pytest.approx(value, rel=1e-5), name
        for name, value in ref["features"].items():
            assert_close(outputs[name], value, atol=1e-4 if "logits" in name else 1e-5, what=name)
    loss.backward()
    assert_gradients(model, ref["grads"]["epoch0"], "first step")


def test_promptsrc_later_epoch_and_gaussian_prompt_aggregation_match_the_authors():
    ref = load("promptsrc")
    model = our_model("promptsrc", ref)
    load_values(model, ref, ref["values_later"])  # the parameters after two of their steps
    model.train()
    loss, _, _ = loss_of("promptsrc", model, ref)
    assert loss.item() == pytest.approx(ref["loss"]["epoch2"], rel=1e-5)
    loss.backward()
    assert_gradients(model, ref["grads"]["epoch2"], "epoch 2")

    gpa = ref["gpa"]
    options = ref["meta"]["options"]
    weights = gaussian_epoch_weights(len(gpa["weights"]), options["GPA_MEAN"], options["GPA_STD"])
    assert weights == pytest.approx(gpa["weights"].tolist(), rel=1e-12)
    aggregate = PromptAggregate(weights)
    for epoch, parameters in enumerate(gpa["per_epoch"]):
        aggregate.add(epoch, parameters)
    for name, value in gpa["average"].items():
        assert_close(aggregate.sum[name], value, atol=1e-7, rtol=1e-6, what=f"GPA of {name}")
        assert not torch.allclose(value, gpa["per_epoch"][-1][name])  # the average, not the last epoch


def test_trainable_parameter_counts_on_vit_b16_with_the_base_to_new_configs():
    """The counts the authors' code reports (ViT-B/16 widths, 12 blocks per tower; 32 px keeps it fast)."""
    torch.manual_seed(0)
    clip_model = CLIP(512, 32, 12, 768, 32, 77, 49408, 512, 8, 12).eval()

    def count(model):
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    assert count(MaPLeCLIP(clip_model, ["a", "b"], n_ctx=2, depth=9)) == 3_555_072
    assert count(IVLPCLIP(clip_model, ["a", "b"], n_ctx_text=2, n_ctx_vision=2, depth_text=12,
                          depth_vision=12)) == 30_720
    assert count(PromptSRCCLIP(clip_model, ["a", "b"], templates=["a photo of a {}."], n_ctx_text=4,
                               n_ctx_vision=4, depth_text=9, depth_vision=9)) == 46_080


def test_fixture_script_names_what_is_missing(tmp_path):
    from dpt_tools import fidelity_multimodal

    with pytest.raises(SystemExit) as missing_dassl:
        fidelity_multimodal.main(["--dassl", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert missing_dassl.value.code == 2 and "--dassl" in str(missing_dassl.value)
    with pytest.raises(SystemExit, match="--maple-repo: a clone of the authors' repository") as missing_clone:
        fidelity_multimodal.main(["--dassl", str(tmp_path), "--out", str(tmp_path), "--methods", "ivlp"])
    assert missing_clone.value.code == 2
