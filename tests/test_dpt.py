"""DPT, VLP and VPT: fidelity to the authors' code (tests/fixtures/{dpt,vlp,vpt}.pt), the prompted ViT,
CAVPT, the losses, parameter counts, precision modes, and train.py runs (train, eval-only on another
class set, a subclassed variant)."""
import glob
import os
import os.path as osp
import subprocess
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import FOLDER_CLASSES, folder_run_args, write_image_folder
from reference import assert_close, load_reference, reference_cfg, reference_clip

from dassl_compat import TRAINER_REGISTRY
from trainers.clip_backbone import CLIP, tiny_clip
from trainers.dpt import DPT, DPTCLIP, auxiliary_loss
from trainers.visual import PromptedViT
from trainers.vlp import VLP, VLPCLIP
from trainers.vpt import VPT, VPTCLIP

TRAINERS = {"dpt": DPT, "vlp": VLP, "vpt": VPT}
# The reference's 2-block ViT: block 0 has deep prompts, block 1 is class-aware.
REFERENCE_OPTS = {"dpt": {"TRAINER.DPT.BOTTOMLIMIT": 2}, "vlp": {}, "vpt": {}}

# The authors' parameter names -> ours. CAVPT entries are per class-aware block i; the authors keep
# the extra key/value tokens of all blocks in one tensor `extractor.ctx` [blocks, 10, D].
PARAMETER_NAMES = {
    "prompt_learner.ctx": "prompt_learner.ctx",
    "image_encoder.transformer.ctx_learner.ctx": "visual_prompts.ctx",
}
CAVPT_PREFIX = "image_encoder.transformer.extractor."
CAVPT_NAMES = {
    "meta_nets.{i}.weight": "cavpt.{i}.text_to_query.weight",
    "meta_nets.{i}.bias": "cavpt.{i}.text_to_query.bias",
    "attns.{i}.qmlp.weight": "cavpt.{i}.query_proj.weight",
    "attns.{i}.kmlp.weight": "cavpt.{i}.key_proj.weight",
    "attns.{i}.vmlp.weight": "cavpt.{i}.value_proj.weight",
    "lns.{i}.weight": "cavpt.{i}.aux_norm.weight",
    "lns.{i}.bias": "cavpt.{i}.aux_norm.bias",
    "classfiers.{i}.weight": "cavpt.{i}.aux_classifier.weight",
    "lns2.{i}.weight": "cavpt.{i}.prompt_norm.weight",
    "lns2.{i}.bias": "cavpt.{i}.prompt_norm.bias",
}
# The authors' loss components -> ours.
COMPONENT_NAMES = {
    "ce_logits": "ce_logits",
    "ce_logits1": "ce_text_guidance",
    "ce_logits2": "ce_visual_guidance",
    "aux_ce": "aux_ce",
    "aux_rows_kept": "aux_rows_kept",
}


def to_our_names(tensors):
    """{authors' name: tensor} -> {our parameter name: tensor}; every name must be known."""
    ours = {}
    for name, value in tensors.items():
        if name in PARAMETER_NAMES:
            ours[PARAMETER_NAMES[name]] = value
        elif name == CAVPT_PREFIX + "ctx":
            ours.update({f"cavpt.{i}.extra_tokens": block for i, block in enumerate(value)})
        else:
            local = name[len(CAVPT_PREFIX):]
            index = local.split(".")[1]
            ours[CAVPT_NAMES[local.replace(f".{index}.", ".{i}.", 1)].format(i=index)] = value
    return ours


def bare_trainer(method, epoch=0, **opts):
    """A trainer object without data or engine: its config, class names, model builder and losses."""
    ref = load_reference(method)
    trainer_cls = TRAINERS[method]
    trainer = trainer_cls.__new__(trainer_cls)
    trainer.cfg = reference_cfg(ref, trainer_cls.__name__, **{**REFERENCE_OPTS[method], **opts})
    trainer.check_cfg(trainer.cfg)
    trainer.dm = SimpleNamespace(dataset=SimpleNamespace(classnames=ref["meta"]["classnames"]))
    trainer.device = torch.device("cpu")
    trainer.epoch = epoch
    return trainer


def reference_model(method, **opts):
    """(reference, trainer, model built by the trainer with the reference's prompt values)."""
    ref = load_reference(method)
    trainer = bare_trainer(method, **opts)
    model = trainer.build_clip_model(reference_clip(), ref["meta"]["classnames"])
    values = to_our_names(ref["trainable_values"])
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert set(trainable) == set(values), "our trainable parameters must be exactly the authors'"
    with torch.no_grad():
        for name, value in values.items():
            trainable[name].copy_(value)
    return ref, trainer, model


def float_outputs(outputs):
    return {k: v.float() if v.is_floating_point() else v for k, v in outputs.items()}


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


def test_cavpt_generator_reproduces_reference_prompts_and_aux_logits():
    ref, _, model = reference_model("dpt")
    cavpt = ref["cavpt"]
    generator = model.cavpt[0]
    with torch.no_grad():
        prompts, aux_logits = generator(cavpt["residual_in"][0], cavpt["text_input"])
    assert_close(prompts, cavpt["prompts"][0], atol=1e-5, what="class-aware prompts")
    assert_close(aux_logits, cavpt["aux_logits"][0], atol=1e-5, what="auxiliary logits")


def test_prompted_vit_without_prompts_is_clip_encode_image():
    clip_model = reference_clip()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(PromptedViT(clip_model.visual)(images), clip_model.encode_image(images))


def test_deep_prompts_change_the_features_and_leave_clip_untouched():
    clip_model = reference_clip()
    before = {k: v.clone() for k, v in clip_model.state_dict().items()}
    encoder = PromptedViT(clip_model.visual)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain = encoder(images)
        prompted = encoder(images, torch.randn(2, 5, encoder.width))
    assert plain.shape == prompted.shape and not torch.allclose(plain, prompted)
    assert all(torch.equal(before[k], v) for k, v in clip_model.state_dict().items())


def test_non_vit_backbone_and_bad_options_are_clear_errors():
    resnet_clip = tiny_clip(vision_layers=(1, 1, 1, 1), vision_width=64, image_resolution=32)
    with pytest.raises(ValueError, match="Vision Transformer"):
        PromptedViT(resnet_clip.visual)
    with pytest.raises(ValueError, match="BOTTOMLIMIT must be in 1..2"):
        bare_trainer("dpt", **{"TRAINER.DPT.BOTTOMLIMIT": 3}).build_clip_model(reference_clip(), ["a", "b"])
    with pytest.raises(ValueError, match="BOTTOMLIMIT must be in 1..2"):
        bare_trainer("dpt", **{"TRAINER.DPT.BOTTOMLIMIT": 0}).build_clip_model(reference_clip(), ["a", "b"])
    with pytest.raises(ValueError, match="CPN"):
        bare_trainer("dpt", **{"TRAINER.DPT.CPN": 0})
    with pytest.raises(ValueError, match="ResNet"):
        bare_trainer("dpt", **{"MODEL.BACKBONE.NAME": "RN50"})
    with pytest.raises(ValueError, match="VPT_N_CTX"):
        bare_trainer("vlp", **{"TRAINER.VLP.VPT_N_CTX": 0})
    with pytest.raises(ValueError, match="PREC"):
        bare_trainer("vpt", **{"TRAINER.VPT.PREC": "fp8"})


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
    original = model.prompt_learner.forward
    monkeypatch.setattr(model.prompt_learner, "forward", lambda: calls.append(1) or original())
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
        model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 1
    model.train()
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 2


@pytest.mark.parametrize("precision,rtol", [("fp16", 2e-3), ("bf16", 1e-2)])
def test_precision_modes_compute_the_fp32_loss(precision, rtol):
    """fp16 / bf16 autocast keep fp32 parameters and round activations only. The loss is a mean of
    log-softmaxes computed in fp32 from logits whose relative error is a small multiple of the unit
    roundoff (2^-11 fp16, 2^-8 bf16) over the few blocks here: measured 4e-4 (fp16) and 2e-3 (bf16)
    relative on the reference batch, so rtol is about 4x that."""
    ref, trainer, model = reference_model("dpt", **{"TRAINER.DPT.PREC": precision})
    model.train()
    with trainer.autocast():
        outputs = model(ref["images"])
    loss, _ = trainer.compute_loss(float_outputs(outputs), ref["labels"])
    assert loss.item() == pytest.approx(ref["loss"]["epoch0"], rel=rtol)
    loss.backward()
    assert all(p.dtype == torch.float32 and torch.isfinite(p.grad).all()
               for p in model.parameters() if p.requires_grad)


def dpt_parameter_count(n_classes, embed_dim, width, text_width, depth, n_ctx=16, vpt_n_ctx=10, bottom_limit=12,
                        n_extra=10, attn_dim=32):
    """README.md, "DPT" (trainable parameters): text context + deep prompts + one CAVPT per class-aware block."""
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


def read_log(output_dir):
    return "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))


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
    assert 0.0 <= accuracy <= 100.0 and "* total: 12" in log
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


def run_script(script, *args, **env):
    """Run a scripts/ entry point (with DRY_RUN=1 the train.py commands are printed, not run)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT")}
    full_env.update(env)
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    return subprocess.run(["bash", osp.join(root, "scripts", script), *args], env=full_env, capture_output=True,
                          text=True, cwd=root)


def test_scripts_on_a_toy_dataset_default_to_its_recipe_and_the_demo_data_folder(tmp_path):
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    run = run_script("dpt/main.sh", "toy_fog", "4", DRY_RUN="1", SEEDS="1", OUTPUT=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert f"DATA is not set: using {root}/data" in run.stderr
    assert f"--root {root}/data " in run.stdout and "--config-file configs/trainers/DPT/toy.yaml" in run.stdout
    assert f"--output-dir {tmp_path}/toy_fog/DPT/toy_4shots/" in run.stdout
    explicit = run_script("vpt/base2new_train.sh", "toy_dusk", "vit_b16", DATA=str(tmp_path), DRY_RUN="1", SEEDS="1")
    assert f"--root {tmp_path} " in explicit.stdout and "configs/trainers/VPT/vit_b16.yaml" in explicit.stdout


def test_scripts_use_per_run_folders_skip_finished_runs_and_need_data(tmp_path):
    missing = run_script("dpt/main.sh", "imagenet", "16")
    assert missing.returncode == 1 and "DATA is not set" in missing.stderr
    output = tmp_path / "output"
    finished = output / "imagenet/DPT/vit_b32_16shots/nctx16_cscFalse_ctpend/seed2"
    finished.mkdir(parents=True)
    (finished / "log.txt").write_text("=> result\n* total: 10\n* correct: 5\n* accuracy: 50.0%\n")
    (output / "imagenet/DPT/vit_b32_16shots/nctx16_cscFalse_ctpend/seed3").mkdir()  # interrupted: runs again
    clip_file = tmp_path / "clip.pt"
    clip_file.write_bytes(b"")
    run = run_script("dpt/main.sh", "imagenet", "16", DATA=str(tmp_path), DRY_RUN="1", OUTPUT=str(output),
                     CLIP_PATH=str(clip_file))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 4 and "Results are available in" in lines[1] and lines[1].endswith("Skip this job")
    assert "seed3 has no result yet" in lines[2]
    for seed, line in ((1, lines[0]), (3, lines[3])):
        assert f"--output-dir {output}/imagenet/DPT/vit_b32_16shots/nctx16_cscFalse_ctpend/seed{seed}" in line
        assert "--trainer DPT --dataset-config-file configs/datasets/imagenet.yaml --config-file " \
               "configs/trainers/DPT/vit_b32.yaml" in line
        assert f"MODEL.BACKBONE.PATH {clip_file}" in line and "OPTIM.WARMUP_EPOCH 1" in line
    test_new = run_script("vpt/base2new_test.sh", "eurosat", "vit_b16", DATA=str(tmp_path), DRY_RUN="1", SEEDS="1")
    assert "--output-dir output/base2new/test_new/eurosat/shots_16/VPT/vit_b16/seed1" in test_new.stdout
    assert "--model-dir output/base2new/train_base/eurosat/shots_16/VPT/vit_b16/seed1 --load-epoch 60" in \
        test_new.stdout and "DATASET.SUBSAMPLE_CLASSES new" in test_new.stdout
    transfer = run_script("vlp/xd_test.sh", "imagenet_sketch", DATA=str(tmp_path), DRY_RUN="1", SEEDS="1")
    assert ("--output-dir output/evaluation/VLP/vit_b32_16shots/nctx16_cscFalse_ctpend/imagenet_sketch/seed1 "
            "--model-dir output/imagenet/VLP/vit_b32_16shots/nctx16_cscFalse_ctpend/seed1") in transfer.stdout
