"""Zero-shot CLIP: fidelity to the authors' outputs (tests/fixtures/zsclip.pt), of the text encoder and of
the trainer's model, and both trainers through train.py."""
import pytest
import torch
import torch.nn.functional as F
from conftest import folder_run_args, read_log
from reference import assert_close, load_reference, reference_clip
from trainer_runs import assert_reports, build_from_command_line

from dpt_models.templates import class_prompts
from dpt_models.text import TextEncoder
from dpt_models.zsclip import TemplateCLIP


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


def test_the_zero_shot_trainers_model_reproduces_the_reference_logits():
    ref = load_reference("zsclip")
    model = TemplateCLIP(reference_clip(), ref["meta"]["classnames"], [ref["meta"]["template"]])
    with torch.no_grad():
        assert_close(model(ref["images"])["logits"], ref["eval"]["logits"], atol=1e-4, what="zero-shot logits")


@pytest.mark.parametrize("trainer", ["ZeroshotCLIP", "ZeroshotCLIP2"])
def test_zero_shot_trainers_evaluate(run_train, tmp_path, data_root, tiny_clip_file, trainer):
    out = tmp_path / trainer
    acc = run_train(["--eval-only"] + folder_run_args(data_root, tiny_clip_file, out, trainer=trainer))
    log = read_log(out)
    counted = build_from_command_line(folder_run_args(data_root, tiny_clip_file, tmp_path / "counted", trainer=trainer))
    assert_reports(acc, log, counted)
    assert "Prompt template: 'a photo of a {}.'" in log and "* accuracy:" in log
    if trainer == "ZeroshotCLIP2":
        assert "Prompt template: 'itap of a {}.'" in log
