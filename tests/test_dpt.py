"""DPT, VLP and VPT: fidelity to the authors' code (tests/fixtures/{dpt,vlp,vpt}.pt), option errors, the
guidance loss, text features once per evaluation, parameter counts, CoOp's text options, and train.py runs
(train, eval-only on another class set, a subclassed variant). CAVPT: test_cavpt.py."""
import pytest
import torch
import torch.nn.functional as F
from conftest import FOLDER_CLASSES, folder_run_args, read_log, write_image_folder
from reference import (
    assert_close,
    bare_trainer,
    float_outputs,
    load_reference,
    reference_clip,
    reference_model,
    to_our_names,
)
from trainer_runs import assert_reports, build_from_command_line

from dassl_compat import TRAINER_REGISTRY
from dpt_models.clip_backbone import CLIP, tiny_clip
from dpt_models.dpt import DPTCLIP
from dpt_models.errors import UserError
from dpt_models.visual import PromptedViT
from dpt_models.vlp import VLPCLIP
from dpt_models.vpt import VPTCLIP
from trainers.dpt import DPT

# The authors' loss components -> ours.
COMPONENT_NAMES = {
    "ce_logits": "ce_logits",
    "ce_logits1": "ce_text_guidance",
    "ce_logits2": "ce_visual_guidance",
    "aux_ce": "aux_ce",
    "aux_rows_kept": "aux_rows_kept",
}


@pytest.mark.parametrize("method", ["dpt", "vlp", "vpt"])
def test_reproduces_reference_outputs_losses_and_gradients(method):
    ref, trainer, model = reference_model(method)
    images, labels = ref["images"], ref["labels"]
    model.eval()
    with torch.no_grad():
        assert_close(model(images)["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
    if method != "vpt":
        with torch.no_grad():
            text = model.learned_text_features()
        assert_close(text, ref["features"]["text_features"], atol=1e-5, what="learned text features")
        assert_close(model.template_text_features, ref["features"]["zs_text_features"], atol=1e-5, what="template")

    model.train()
    for epoch in (0, 30):
        model.zero_grad()
        trainer.epoch = epoch
        outputs = model(images)
        expected = ref["train_outputs"]
        assert_close(outputs["logits"], expected["logits"], atol=1e-4, what="train logits")
        if method != "vpt":
            assert_close(outputs["text_guidance_logits"], expected["logits1"], atol=1e-4, what="logits1")
            assert_close(outputs["visual_guidance_logits"], expected["logits2"], atol=1e-4, what="logits2")
        if method == "dpt":
            assert torch.equal(outputs["class_indices"], expected["indices"]), "selector indices"
            aux_expected = torch.cat(list(expected["layer_logits"]), dim=0)  # [blocks, K, B, C]
            assert_close(outputs["aux_logits"], aux_expected, atol=1e-5, what="auxiliary logits")

        loss, components = trainer.compute_loss(float_outputs(outputs), labels)
        assert loss.item() == pytest.approx(ref["loss"][f"epoch{epoch}"], rel=1e-5), f"loss at epoch {epoch}"
        for theirs, value in ref["loss_components"][f"epoch{epoch}"].items():
            assert float(components[COMPONENT_NAMES[theirs]]) == pytest.approx(value, rel=1e-5), theirs

        loss.backward()
        grads = to_our_names(ref["grads"][f"epoch{epoch}"])
        params = dict(model.named_parameters())
        assert set(grads) == {name for name, p in params.items() if p.requires_grad}
        for name, grad in grads.items():
            # elementwise rtol fails on near-zero entries: atol is 1e-5 of the gradient's largest entry
            atol = 1e-5 * grad.abs().max().item() + 1e-8
            assert_close(params[name].grad, grad, atol=atol, rtol=1e-4, what=f"grad of {name} at epoch {epoch}")


def test_non_vit_backbone_and_bad_options_are_clear_errors():
    resnet_clip = tiny_clip(vision_layers=(1, 1, 1, 1), vision_width=64, image_resolution=32)
    with pytest.raises(ValueError, match="Vision Transformer"):
        PromptedViT(resnet_clip.visual)
    with pytest.raises(UserError, match="BOTTOMLIMIT must be in 1..2"):
        bare_trainer("dpt", **{"TRAINER.DPT.BOTTOMLIMIT": 3}).build_clip_model(reference_clip(), ["a", "b"])
    with pytest.raises(UserError, match="BOTTOMLIMIT must be an integer >= 1, got 0"):  # before CLIP is loaded
        bare_trainer("dpt", **{"TRAINER.DPT.BOTTOMLIMIT": 0})
    with pytest.raises(UserError, match="CPN"):
        bare_trainer("dpt", **{"TRAINER.DPT.CPN": 0})
    with pytest.raises(UserError, match="ResNet"):
        bare_trainer("dpt", **{"MODEL.BACKBONE.NAME": "RN50"})
    with pytest.raises(UserError, match="VPT_N_CTX"):
        bare_trainer("vlp", **{"TRAINER.VLP.VPT_N_CTX": 0})
    with pytest.raises(UserError, match="PREC"):
        bare_trainer("vpt", **{"TRAINER.VPT.PREC": "fp8"})


def test_loss_switches_from_guidance_to_plain_cross_entropy_at_c_pre():
    ref, trainer, model = reference_model("dpt", **{"TRAINER.DPT.C_PRE": 5})
    model.train()
    with torch.no_grad():
        outputs = float_outputs(model(ref["images"]))
    parts = ref["loss_components"]["epoch0"]
    aux = 0.3 * parts["aux_ce"]
    for epoch, expected in [(0, ref["loss"]["epoch0"]), (4, ref["loss"]["epoch0"]), (5, ref["loss"]["epoch30"])]:
        trainer.epoch = epoch
        loss, _ = trainer.compute_loss(outputs, ref["labels"])
        assert loss.item() == pytest.approx(expected, rel=1e-5), f"epoch {epoch}"
    assert ref["loss"]["epoch30"] == pytest.approx(parts["ce_logits"] + aux, rel=1e-6)


def test_eval_text_features_are_computed_once_per_evaluation(monkeypatch):
    _, _, model = reference_model("dpt")
    calls = []
    original = model.text_encoder.encode_learned_prompts
    monkeypatch.setattr(model.text_encoder, "encode_learned_prompts",
                        lambda learner: calls.append(1) or original(learner))
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
        model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 1
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 2


def dpt_parameter_count(n_classes, embed_dim, width, text_width, depth, n_ctx=16, vpt_n_ctx=10, bottom_limit=12,
                        n_extra=10, attn_dim=32):
    """docs/methods/dpt.md (trainable parameters): text context + deep prompts + one CAVPT per class-aware block."""
    per_cavpt = (embed_dim * width + width) + 2 * width * attn_dim + width * width + 4 * width + n_extra * width
    n_cavpt = depth - (bottom_limit - 1)
    return n_ctx * text_width + (bottom_limit - 1) * vpt_n_ctx * width + n_cavpt * (per_cavpt + width * n_classes)


def test_parameter_counts_of_vit_b():
    """ViT-B sizes (width 768, 12 blocks, embed 512, text width 512); the counts depend on neither the
    input resolution nor the text depth, so 32 px (one patch) and one text block keep this fast."""
    torch.manual_seed(0)
    clip_model = CLIP(512, 32, 12, 768, 32, 77, 49408, 512, 8, 1).eval()
    counts = {}
    for n_classes in (10, 100, 1000):
        model = DPTCLIP(clip_model, [f"class {i}" for i in range(n_classes)])
        counts[n_classes] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert counts == {10: 1_144_064, 100: 1_213_184, 1000: 1_904_384}
    assert counts[1000] == dpt_parameter_count(1000, 512, 768, 512, 12)
    vlp = VLPCLIP(clip_model, ["a", "b"])
    assert sum(p.numel() for p in vlp.parameters() if p.requires_grad) == 16 * 512 + 12 * 10 * 768
    vpt = VPTCLIP(clip_model, ["a", "b"])
    assert sum(p.numel() for p in vpt.parameters() if p.requires_grad) == 12 * 10 * 768


def run_args(trainer, data_root, clip_file, output_dir, epochs=2, extra=()):
    """The conftest's folder run, in fp32, with DPT's top block class-aware on the 2-block tiny ViT."""
    node = {"DPT": "DPT", "VLP": "VLP", "VPT": "VPT"}.get(trainer, "DPT")
    opts = [f"TRAINER.{node}.PREC", "fp32", "OPTIM.LR", "0.01"]
    if node == "DPT":
        opts += ["TRAINER.DPT.BOTTOMLIMIT", "2", "TRAINER.DPT.C_PRE", "1"]
    if node == "VLP":
        opts += ["TRAINER.VLP.C_PRE", "1"]
    return folder_run_args(data_root, clip_file, output_dir, trainer=trainer, epochs=epochs, extra=(*opts, *extra))


# Trainable parameters on the conftest's tiny CLIP (embed 32, ViT 2 x 64, text width 128) with 4 classes.
TINY_COUNTS = {
    "DPT": dpt_parameter_count(4, 32, 64, 128, 2, bottom_limit=2),
    "VLP": 16 * 128 + 2 * 10 * 64,
    "VPT": 2 * 10 * 64,
}
REGISTERED = {"DPT": ["visual_prompts", "cavpt", "prompt_learner"], "VLP": ["visual_prompts", "prompt_learner"],
              "VPT": ["visual_prompts"]}


@pytest.mark.parametrize("trainer", ["DPT", "VLP", "VPT"])
def test_trains_and_evaluates_through_train_py(run_train, tmp_path, data_root, tiny_clip_file, trainer):
    out = tmp_path / trainer
    result = run_train(run_args(trainer, data_root, tiny_clip_file, out))
    log = read_log(out)
    assert f"Trainable parameters: {TINY_COUNTS[trainer]:,}" in log
    assert "epoch [2/2] batch [3/3]" in log and "* accuracy:" in log
    assert "lr 1.0000e-05" in log  # the printed lr is the visual prompts': OPTIM's constant warmup
    for name in REGISTERED[trainer]:
        checkpoint = torch.load(out / name / "model.pth.tar-2", weights_only=True)
        assert checkpoint["epoch"] == 2 and checkpoint["state_dict"]
    assert list(result._models) == REGISTERED[trainer]
    if trainer != "VPT":
        assert result._optims["prompt_learner"].param_groups[0]["initial_lr"] == pytest.approx(0.002)
        assert "ce_text_guidance" in log


def test_dpt_prompts_trained_on_one_class_set_evaluate_on_another(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "all_classes"
    run_train(run_args("DPT", data_root, tiny_clip_file, out, epochs=1))
    assert torch.load(out / "cavpt" / "model.pth.tar-1", weights_only=True)["state_dict"][
        "0.aux_classifier.weight"].shape[0] == len(FOLDER_CLASSES)
    other_root = tmp_path / "other_data"
    write_image_folder(str(other_root / "colours"), classes=("black_ring", "yellow_star", "purple_wave"), seed=1)
    eval_out = tmp_path / "other_classes"
    accuracy = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "1"]
                         + run_args("DPT", str(other_root), tiny_clip_file, eval_out))
    log = read_log(eval_out)
    assert "* total: 12" in log  # the other set's 3 classes x 4 test images
    loaded = build_from_command_line(run_args("DPT", str(other_root), tiny_clip_file, tmp_path / "counted"))
    loaded.load_model(str(out), epoch=1)
    assert_reports(accuracy, log, loaded)
    for name in REGISTERED["DPT"]:
        assert f"Loading weights to {name} from" in log


class DPTAllPromptsAux(DPT):
    """A DPT variant for the extension test: every class-aware prompt is trained to predict the label."""

    def auxiliary_loss(self, outputs, labels):
        aux_logits = outputs["aux_logits"]  # [L, K, B, C]
        targets = labels.expand(aux_logits.shape[0], aux_logits.shape[1], -1)
        return F.cross_entropy(aux_logits.flatten(0, 2), targets.flatten()), targets.numel()


def test_a_subclassed_variant_registers_and_runs_through_train_py(run_train, tmp_path, data_root, tiny_clip_file):
    if "DPTAllPromptsAux" not in TRAINER_REGISTRY:
        TRAINER_REGISTRY.register(DPTAllPromptsAux)
    out = tmp_path / "variant"
    trainer = run_train(run_args("DPTAllPromptsAux", data_root, tiny_clip_file, out, epochs=1))
    assert isinstance(trainer, DPTAllPromptsAux) and trainer.config_node == "DPT"
    # batches of 8 images x K = 4 selected classes x 1 class-aware block
    assert "aux_rows_kept 32.0000 (32.0000)" in read_log(out)


@pytest.mark.parametrize("opts,ctx_shape", [
    ({"TRAINER.DPT.CSC": True}, (10, 16, 128)),
    ({"TRAINER.DPT.CTX_INIT": "a photo of a"}, (4, 128)),
    ({"TRAINER.DPT.CLASS_TOKEN_POSITION": "middle", "TRAINER.DPT.N_CTX": 4}, (4, 128)),
    ({"TRAINER.DPT.CLASS_TOKEN_POSITION": "front", "TRAINER.DPT.CSC": True, "TRAINER.DPT.N_CTX": 2}, (10, 2, 128)),
])
def test_coop_text_options_work_in_dpt(opts, ctx_shape):
    ref = load_reference("dpt")
    trainer = bare_trainer("dpt", **opts)
    model = trainer.build_clip_model(reference_clip(), ref["meta"]["classnames"])
    assert tuple(model.prompt_learner.ctx.shape) == ctx_shape
    model.train()
    loss, _ = trainer.compute_loss(float_outputs(model(ref["images"])), ref["labels"])
    loss.backward()
    assert torch.isfinite(loss) and model.prompt_learner.ctx.grad.abs().sum() > 0


