"""CoOp: fidelity to the authors' outputs (tests/fixtures/coop.pt), text features computed once per
evaluation, and train.py runs (train, resume, eval-only; a class-specific context on another class set)."""
import glob

import pytest
import torch
import torch.nn.functional as F
from conftest import folder_run_args, read_log
from reference import assert_close, coop_reference_model

from dpt_models.errors import UserError


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


def test_coop_trains_resumes_and_evaluates_through_train_py(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "coop"
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=2))
    log = read_log(out)
    assert "epoch [2/2] batch [3/3]" in log and "lr 2.0000e-03" in log
    assert "* accuracy:" in log and "Trainable parameters: 2,048" in log
    ckpt_dir = out / "prompt_learner"
    assert (ckpt_dir / "checkpoint").read_text().strip() == "model.pth.tar-2"
    checkpoint = torch.load(ckpt_dir / "model.pth.tar-2", weights_only=True)
    assert set(checkpoint) == {"state_dict", "epoch", "optimizer", "scheduler", "val_result", "meta"}
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


def test_class_specific_context_on_another_class_set_is_a_clear_error(run_train, tmp_path, data_root,
                                                                       tiny_clip_file):
    base = tmp_path / "csc"
    extra = ("TRAINER.COOP.CSC", "True", "DATASET.SUBSAMPLE_CLASSES", "base")
    run_train(folder_run_args(data_root, tiny_clip_file, base, epochs=1, extra=extra))
    with pytest.raises(UserError, match="class-specific weights"):
        run_train(["--eval-only", "--model-dir", str(base), "--load-epoch", "1"]
                  + folder_run_args(data_root, tiny_clip_file, tmp_path / "x", extra=("TRAINER.COOP.CSC", "True")))
