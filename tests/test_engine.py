"""The foundation: text encoding, CoOp / zero-shot fidelity, precision, schedules, checkpoints,
config and weight errors, and train.py runs (train, resume, eval-only, across class sets)."""
import glob
import os.path as osp
import urllib.error

import pytest
import torch
import torch.nn.functional as F
from conftest import folder_run_args
from reference import assert_close, load_reference, reference_clip

from dassl_compat import build_lr_scheduler, get_cfg_default
from trainers.clip_backbone import MissingWeightsError, clip, load_clip, tiny_clip
from trainers.coop import CoOpCLIP
from trainers.templates import class_prompts
from trainers.text import PromptLearner, TextEncoder


def full_length_prompt_features(clip_model, learner):
    """What CoOp computes: all 77 positions through CLIP's own transformer and 77x77 mask."""
    tokenized = learner.tokenized_prompts
    with torch.no_grad():
        embedding = clip_model.token_embedding(tokenized)  # [C, 77, W]
    ctx = learner.ctx.unsqueeze(0).expand(learner.n_cls, -1, -1)
    prompts = torch.cat([embedding[:, :1], ctx, embedding[:, 1 + learner.n_ctx :]], dim=1)
    x = (prompts + clip_model.positional_embedding).permute(1, 0, 2)
    x = clip_model.ln_final(clip_model.transformer(x).permute(1, 0, 2))
    return x[torch.arange(x.shape[0]), tokenized.argmax(-1)] @ clip_model.text_projection


def test_truncated_text_encoding_equals_full_length():
    clip_model = tiny_clip(seed=3)
    classnames = ["Annual Crop Land", "Forest", "a much longer class name with many words in it"]
    learner = PromptLearner(classnames, clip_model, n_ctx=16)
    encoder = TextEncoder(clip_model)
    assert learner().shape[1] < 77  # the point: fewer positions than CLIP's context
    truncated = encoder(learner(), learner.eot_indices)
    assert_close(truncated, full_length_prompt_features(clip_model, learner), atol=1e-5, what="prompt features")

    tokens = clip.tokenize(class_prompts("a photo of a {}.", classnames))
    with torch.no_grad():
        assert_close(encoder.encode_tokens(tokens), clip_model.encode_text(tokens), atol=1e-5, what="templates")


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_class_token_positions_place_the_name(position):
    clip_model = tiny_clip(seed=1)
    learner = PromptLearner(["dog", "sea lion"], clip_model, n_ctx=4, class_token_position=position)
    prompts = learner()
    with torch.no_grad():
        name = clip_model.token_embedding(clip.tokenize("sea lion")[0, 1:3])
    start = {"end": 1 + 4, "middle": 1 + 2, "front": 1}[position]
    torch.testing.assert_close(prompts[1, start : start + 2], name)


def test_ctx_init_sets_context_length_and_values():
    clip_model = tiny_clip(seed=1)
    learner = PromptLearner(["dog"], clip_model, n_ctx=16, ctx_init="a photo of a")
    assert learner.n_ctx == 4 and learner.ctx.shape == (4, 128)
    with torch.no_grad():
        expected = clip_model.token_embedding(clip.tokenize("a photo of a"))[0, 1:5]
    torch.testing.assert_close(learner.ctx.detach(), expected)


def coop_reference_model():
    ref = load_reference("coop")
    model = CoOpCLIP(reference_clip(), ref["meta"]["classnames"])
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(ref["trainable_values"]["prompt_learner.ctx"])
    return ref, model


def test_coop_reproduces_reference_logits_loss_and_gradients():
    ref, model = coop_reference_model()
    assert torch.equal(model.prompt_learner.tokenized_prompts, ref["tokenized_prompts"])
    model.eval()
    with torch.no_grad():
        assert_close(model(ref["images"])["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
        assert_close(model.text_features(), ref["features"]["text_features"], atol=1e-5, what="text features")
        assert_close(model.image_encoder(ref["images"]), ref["features"]["image_features"], atol=1e-5, what="image")
    model.train()
    logits = model(ref["images"])["logits"]
    assert_close(logits, ref["train_outputs"]["logits"], atol=1e-4, what="train logits")
    loss = F.cross_entropy(logits, ref["labels"])
    assert loss.item() == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    loss.backward()
    expected = ref["grads"]["epoch0"]["prompt_learner.ctx"]
    # gradients are O(50) (the logits carry CLIP's x100 scale): atol 1e-4 is ~2e-6 of the largest
    assert_close(model.prompt_learner.ctx.grad, expected, atol=1e-4, rtol=1e-4, what="ctx grad")


def test_zeroshot_clip_reproduces_reference():
    ref = load_reference("zsclip")
    clip_model = reference_clip()
    encoder = TextEncoder(clip_model)
    text = encoder.encode_texts(class_prompts(ref["meta"]["template"], ref["meta"]["classnames"]))
    assert_close(text, ref["features"]["zs_text_features"], atol=1e-5, what="template features")
    with torch.no_grad():
        image = F.normalize(clip_model.encode_image(ref["images"]), dim=-1)
    logits = clip_model.logit_scale.exp() * image @ text.t()
    assert_close(logits, ref["eval"]["logits"], atol=1e-4, what="zero-shot logits")


def test_eval_text_features_computed_once_per_evaluation(monkeypatch):
    _, model = coop_reference_model()
    calls = []
    original = model.text_features
    monkeypatch.setattr(model, "text_features", lambda: calls.append(1) or original())
    model.eval()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
        model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 1
    model.eval()  # a new evaluation recomputes (the context may have changed)
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 2
    model.train()
    model(torch.randn(2, 3, 32, 32))
    model(torch.randn(2, 3, 32, 32))
    assert len(calls) == 4


@pytest.mark.parametrize("precision,rtol", [("fp16", 5e-3), ("bf16", 3e-2)])
def test_precision_modes_compute_the_fp32_loss(precision, rtol):
    """Autocast keeps fp32 parameters; fp16 (10-bit mantissa) and bf16 (7-bit) differ from fp32
    only by rounding of activations: the loss agrees to about 2^-8 (fp16) / 2^-5 (bf16) relative."""
    ref, model = coop_reference_model()
    model.train()
    losses = {}
    for prec in ("fp32", precision):
        dtype = torch.float16 if prec == "fp16" else torch.bfloat16
        with torch.autocast("cpu", dtype=dtype, enabled=prec != "fp32"):
            logits = model(ref["images"])["logits"]
        losses[prec] = F.cross_entropy(logits.float(), ref["labels"]).item()
    assert losses[precision] == pytest.approx(losses["fp32"], rel=rtol)
    assert model.prompt_learner.ctx.dtype == torch.float32


def lr_trace(epochs, **optim):
    cfg = get_cfg_default().OPTIM
    cfg.defrost()
    cfg.update(optim)
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=cfg.LR)
    scheduler = build_lr_scheduler(optimizer, cfg)
    trace = []
    for _ in range(epochs):
        trace.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return trace


def test_constant_warmup_then_cosine_restarts_the_count_as_dassl():
    """Dassl: warmup lr for epochs < WARMUP_EPOCH, then cosine from its own epoch 0 with T_max =
    MAX_EPOCH (WARMUP_RECOUNT=True), so the last epochs do not reach zero."""
    import math

    trace = lr_trace(6, LR=0.002, MAX_EPOCH=6, LR_SCHEDULER="cosine", WARMUP_EPOCH=2, WARMUP_TYPE="constant",
                     WARMUP_CONS_LR=1e-5)
    cosine = [0.5 * 0.002 * (1 + math.cos(math.pi * t / 6)) for t in range(4)]
    assert trace == pytest.approx([1e-5, 1e-5] + cosine)


def test_linear_warmup_and_no_recount_and_steps():
    trace = lr_trace(5, LR=0.1, MAX_EPOCH=5, LR_SCHEDULER="single_step", STEPSIZE=(2,), GAMMA=0.5,
                     WARMUP_EPOCH=2, WARMUP_TYPE="linear", WARMUP_MIN_LR=1e-4, WARMUP_RECOUNT=False)
    assert trace == pytest.approx([1e-4, 0.05, 0.05, 0.05, 0.025])
    assert lr_trace(4, LR=1.0, MAX_EPOCH=4, LR_SCHEDULER="multi_step", STEPSIZE=(1, 3)) == pytest.approx(
        [1.0, 0.1, 0.1, 0.01]
    )


def test_missing_clip_weights_error_names_file_url_and_place(tmp_path, monkeypatch):
    def offline(url, root):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(clip.clip, "_download", offline)
    with pytest.raises(MissingWeightsError) as info:
        load_clip("ViT-B/16", download_root=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "ViT-B-16.pt") in message
    assert clip.clip._MODELS["ViT-B/16"] in message
    assert "MODEL.BACKBONE.PATH" in message
    with pytest.raises(MissingWeightsError, match="not a file"):
        load_clip("ViT-B/16", path=str(tmp_path / "nowhere.pt"))
    with pytest.raises(ValueError, match="Unknown CLIP backbone 'ViT-B/61'"):
        load_clip("ViT-B/61")


def test_unknown_config_key_is_a_clear_error(run_train, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "out", extra=("TRAINER.COOP.NCTX", "4"))
    with pytest.raises(SystemExit, match="TRAINER.COOP.NCTX"):
        run_train(args)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("OPTIM:\n  LEARNING_RATE: 0.1\n")
    with pytest.raises(SystemExit, match=r"bad\.yaml.*LEARNING_RATE"):
        run_train(["--config-file", str(bad_yaml)] + args[:-2])


def test_unknown_trainer_suggests_the_close_name(run_train, tmp_path, data_root, tiny_clip_file):
    with pytest.raises(KeyError, match=r"Do you mean .*CoOp"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "out", trainer="CoOP"))


def read_log(output_dir):
    return "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))


def test_coop_trains_resumes_and_evaluates_through_train_py(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "coop"
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=2))
    log = read_log(out)
    assert "epoch [2/2] batch [3/3]" in log and "lr 2.0000e-03" in log
    assert "* accuracy:" in log and "Trainable parameters: 2,048" in log
    ckpt_dir = out / "prompt_learner"
    assert (ckpt_dir / "checkpoint").read_text().strip() == "model.pth.tar-2"
    checkpoint = torch.load(ckpt_dir / "model.pth.tar-2", weights_only=True)
    assert set(checkpoint) == {"state_dict", "epoch", "optimizer", "scheduler", "val_result"}
    assert list(checkpoint["state_dict"]) == ["ctx"] and checkpoint["epoch"] == 2
    assert checkpoint["scheduler"]["last_epoch"] == 2
    assert not glob.glob(str(ckpt_dir / "*.tmp.*"))
    final_acc = trainer.test()

    resumed = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=2))
    second_log = open(sorted(glob.glob(str(out / "log.txt-*")))[-1]).read()
    assert "Previous epoch: 2" in second_log and "epoch [" not in second_log
    torch.testing.assert_close(resumed.model.prompt_learner.ctx, trainer.model.prompt_learner.ctx)

    eval_out = tmp_path / "coop_eval"
    acc = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                    + folder_run_args(data_root, tiny_clip_file, eval_out))
    assert acc == pytest.approx(final_acc)
    assert f"* accuracy: {final_acc:.1f}%" in read_log(eval_out)


def test_resume_continues_an_interrupted_run(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "interrupted"
    extra = ("TRAIN.CHECKPOINT_FREQ", "1")
    run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=1, extra=extra))
    resumed = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=3, extra=extra))
    log = open(sorted(glob.glob(str(out / "log.txt-*")))[-1]).read()
    assert "Previous epoch: 1" in log and "epoch [1/3]" not in log and "epoch [3/3]" in log
    assert resumed._scheds["prompt_learner"].last_epoch == 3


def test_context_learned_on_base_classes_evaluates_on_new(run_train, tmp_path, data_root, tiny_clip_file):
    base = tmp_path / "base"
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, base, extra=("DATASET.SUBSAMPLE_CLASSES", "base")))
    assert trainer.num_classes == 2
    new = tmp_path / "new"
    run_train(["--eval-only", "--model-dir", str(base), "--load-epoch", "2"]
              + folder_run_args(data_root, tiny_clip_file, new, extra=("DATASET.SUBSAMPLE_CLASSES", "new")))
    assert "* accuracy:" in read_log(new)


def test_class_specific_context_on_another_class_set_is_a_clear_error(run_train, tmp_path, data_root,
                                                                       tiny_clip_file):
    base = tmp_path / "csc"
    extra = ("TRAINER.COOP.CSC", "True", "DATASET.SUBSAMPLE_CLASSES", "base")
    run_train(folder_run_args(data_root, tiny_clip_file, base, epochs=1, extra=extra))
    with pytest.raises(ValueError, match="class-count mismatch"):
        run_train(["--eval-only", "--model-dir", str(base), "--load-epoch", "1"]
                  + folder_run_args(data_root, tiny_clip_file, tmp_path / "x", extra=("TRAINER.COOP.CSC", "True")))


def test_seed_zero_is_honoured(run_train, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "seed0", epochs=1)
    args[args.index("--seed") + 1] = "0"
    trainer = run_train(args)
    assert trainer.cfg.SEED == 0
    assert "\nSEED: 0\n" in read_log(tmp_path / "seed0")


@pytest.mark.parametrize("trainer", ["ZeroshotCLIP", "ZeroshotCLIP2"])
def test_zero_shot_trainers_evaluate(run_train, tmp_path, data_root, tiny_clip_file, trainer):
    out = tmp_path / trainer
    acc = run_train(["--eval-only"] + folder_run_args(data_root, tiny_clip_file, out, trainer=trainer))
    assert 0.0 <= acc <= 100.0
    log = read_log(out)
    assert "Prompt template: 'a photo of a {}.'" in log and "* accuracy:" in log
    if trainer == "ZeroshotCLIP2":
        assert "Prompt template: 'itap of a {}.'" in log


def test_openai_torchscript_archives_and_state_dicts_load_alike(tmp_path):
    """OpenAI's released files are TorchScript archives; ours and the tests' are state dicts."""
    import warnings

    from trainers.clip_backbone import save_tiny_clip

    state_file = save_tiny_clip(str(tmp_path / "state.pt"), seed=4)
    model = load_clip("tiny", path=state_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracing is deprecated and chatty; it only writes the test file
        scripted = torch.jit.trace(model, (torch.randn(1, 3, 32, 32), torch.zeros(1, 77, dtype=torch.long)))
    scripted.save(str(tmp_path / "openai_format.pt"))
    loaded = load_clip("tiny", path=str(tmp_path / "openai_format.pt"))
    assert loaded.visual.proj.dtype == torch.float32 and not loaded.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_coop_trains_in_mixed_precision_with_fp32_parameters(run_train, tmp_path, data_root, tiny_clip_file,
                                                             precision):
    extra = ("TRAINER.COOP.PREC", precision)
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / precision, epochs=1)
    args[args.index("TRAINER.COOP.PREC") + 1] = precision
    trainer = run_train(args[:-2] + list(extra))
    assert trainer.model.prompt_learner.ctx.dtype == torch.float32
    assert trainer.grad_scaler.is_enabled() == (precision == "fp16")
    assert "* accuracy:" in read_log(tmp_path / precision)


def test_text_encoder_gradient_checkpointing_computes_the_same_gradients():
    ref, model = coop_reference_model()
    grads, saved = [], []
    for checkpointing in (False, True):
        model.text_encoder.gradient_checkpointing = checkpointing
        model.prompt_learner.ctx.grad = None
        count = [0]

        def pack(tensor, count=count):
            count[0] += 1
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = F.cross_entropy(model.train()(ref["images"])["logits"], ref["labels"])
        loss.backward()
        grads.append(model.prompt_learner.ctx.grad.clone())
        saved.append(count[0])
    torch.testing.assert_close(grads[1], grads[0], atol=1e-5, rtol=1e-5)
    assert saved[1] < saved[0]  # the blocks' activations are recomputed, not stored


def test_text_grad_checkpoint_option_reaches_the_text_encoder(run_train, tmp_path, data_root, tiny_clip_file):
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "ckpt", epochs=1,
                                        extra=("MODEL.TEXT_GRAD_CHECKPOINT", "True")))
    assert trainer.model.text_encoder.gradient_checkpointing
    assert "* accuracy:" in read_log(tmp_path / "ckpt")
