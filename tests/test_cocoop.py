"""CoCoOp: fidelity to the authors' outputs, batched vs per-image text encoding, and train.py runs (train,
evaluation in chunks, eval-only reload, new classes)."""
import pytest
import torch
import torch.nn.functional as F
from conftest import folder_run_args, read_log
from reference import assert_close, load_reference, reference_clip

from dpt_models.cocoop import CoCoOpCLIP

# The reference files and the released configs they were computed with.
REFERENCE_OPTIONS = {
    "cocoop": {"n_ctx": 4, "ctx_init": "a photo of a"},
    "cocoop_nctx16": {"n_ctx": 16, "ctx_init": ""},
}
# The authors' parameter names -> ours.
PARAMETER_NAMES = {
    "prompt_learner.ctx": "prompt_learner.ctx",
    "prompt_learner.meta_net.linear1.weight": "prompt_learner.meta_net.linear1.weight",
    "prompt_learner.meta_net.linear1.bias": "prompt_learner.meta_net.linear1.bias",
    "prompt_learner.meta_net.linear2.weight": "prompt_learner.meta_net.linear2.weight",
    "prompt_learner.meta_net.linear2.bias": "prompt_learner.meta_net.linear2.bias",
}


def cocoop_reference_model(name):
    """Our CoCoOp model on the reference CLIP with the reference's trainable values loaded."""
    ref = load_reference(name)
    model = CoCoOpCLIP(reference_clip(), ref["meta"]["classnames"], **REFERENCE_OPTIONS[name])
    params = dict(model.named_parameters())
    with torch.no_grad():
        for ref_name, value in ref["trainable_values"].items():
            params[PARAMETER_NAMES[ref_name]].copy_(value)
    return ref, model


@pytest.mark.parametrize("name", sorted(REFERENCE_OPTIONS))
def test_cocoop_reproduces_reference(name):
    ref, model = cocoop_reference_model(name)
    trainable = {n: tuple(p.shape) for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {PARAMETER_NAMES[n]: tuple(s) for n, s in ref["trainable_shapes"].items()}
    assert torch.equal(model.prompt_learner.tokenized_prompts, ref["tokenized_prompts"])

    images, labels = ref["images"], ref["labels"]
    model.eval()
    with torch.no_grad():
        assert_close(model(images)["logits"], ref["eval"]["logits"], atol=1e-4, what="eval logits")
        image_features = model.image_encoder(images)
        assert_close(image_features, ref["features"]["image_features"], atol=1e-5, what="image features")
        text_features = model.text_features(F.normalize(image_features, dim=-1))  # [B, C, E]
        assert_close(text_features, ref["features"]["text_features"], atol=1e-5, what="text features")
        assert_close(F.normalize(text_features, dim=-1), ref["features"]["text_features_norm"], atol=1e-5,
                     what="normalised text features")

    model.train()
    loss = F.cross_entropy(model(images)["logits"], labels)
    assert loss.item() == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    loss.backward()
    params = dict(model.named_parameters())
    for ref_name, expected in ref["grads"]["epoch0"].items():
        # gradients reach O(100) (the logits carry CLIP's x100 scale): atol 1e-4 is ~1e-6 of the largest
        assert_close(params[PARAMETER_NAMES[ref_name]].grad, expected, atol=1e-4, rtol=1e-4, what=ref_name)


def test_one_text_encoder_call_equals_one_call_per_image():
    """The B x C prompts of a batch go through the text encoder in one call, with the same loss,
    logits and gradients as encoding them one image at a time (the reference's loop)."""
    ref, model = cocoop_reference_model("cocoop")
    images, labels = ref["images"], ref["labels"]
    n_images, n_cls = len(images), len(ref["meta"]["classnames"])
    sequences_per_call = []
    encode_contexts = model.text_encoder.encode_contexts  # one call per chunk of images, C prompts per image
    model.text_encoder.encode_contexts = lambda learner, contexts: (
        sequences_per_call.append(len(contexts) * n_cls) or encode_contexts(learner, contexts))
    model.train()
    results = {}
    for images_per_call in (None, 1, 3):
        sequences_per_call.clear()
        model.zero_grad()
        logits = model(images, images_per_call=images_per_call)["logits"]
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        results[images_per_call] = (logits.detach(), loss.detach(), model.prompt_learner.ctx.grad.clone())
        expected_calls = {None: [n_images * n_cls], 1: [n_cls] * n_images, 3: [3 * n_cls, n_cls]}[images_per_call]
        assert sequences_per_call == expected_calls
    for images_per_call in (1, 3):
        for batched, looped in zip(results[None], results[images_per_call]):
            # Other chunk shapes round differently on the shared-prefix path (the full path is bit-exact):
            # measured up to 2e-5 on logits and gradients of magnitude ~20-30 (CLIP's x100 scale), i.e.
            # about 1e-6 relative, a few fp32 ulps. A wrong image-to-context pairing differs by O(1).
            scale = looped.abs().max().item()
            torch.testing.assert_close(batched, looped, atol=1e-5 * scale, rtol=0)


def cocoop_run_args(data_root, clip_file, output_dir, epochs=2, extra=()):
    return folder_run_args(
        data_root, clip_file, output_dir, trainer="CoCoOp", epochs=epochs,
        extra=("DATALOADER.TRAIN_X.BATCH_SIZE", "4", "TRAINER.COCOOP.N_CTX", "4", "TRAINER.COCOOP.PREC", "fp32",
               *extra),
    )


def test_cocoop_trains_and_evaluates_through_train_py(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "cocoop"
    trainer = run_train(cocoop_run_args(data_root, tiny_clip_file, out))
    log = read_log(out)
    # 24 training images at batch 4: 6 batches per epoch; ctx 4 x 128 + meta-net 32x2+2 + 2x128+128
    assert "epoch [2/2] batch [6/6]" in log and "lr 2.0000e-03" in log
    assert "Trainable parameters: 962" in log and "* accuracy:" in log and "* macro_f1:" in log
    checkpoint = torch.load(out / "prompt_learner" / "model.pth.tar-2", weights_only=True)
    assert sorted(checkpoint["state_dict"]) == sorted(n.split(".", 1)[1] for n in PARAMETER_NAMES)
    final_acc = trainer.test()
    trainer.model.eval_prompts_per_call = 1  # one image's prompts per text-encoder call at evaluation
    assert trainer.test() == pytest.approx(final_acc)

    eval_out = tmp_path / "cocoop_eval"
    acc = run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
                    + cocoop_run_args(data_root, tiny_clip_file, eval_out))
    assert acc == pytest.approx(final_acc)
    assert f"* accuracy: {final_acc:.1f}%" in read_log(eval_out)

    new_out = tmp_path / "cocoop_new"
    run_train(["--eval-only", "--model-dir", str(out), "--load-epoch", "2"]
              + cocoop_run_args(data_root, tiny_clip_file, new_out, extra=("DATASET.SUBSAMPLE_CLASSES", "new")))
    assert "* accuracy:" in read_log(new_out)


