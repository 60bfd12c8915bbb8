"""open_clip backbones (dpt_models/open_clip_backbone.py) on small randomly initialised open_clip models:
the prompted ViT and the text encoder compute open_clip's own encode_image / encode_text, zero-shot
logits are open_clip's zero-shot classifier's, the model's preprocessing and tokenizer are used, the
offline and unsupported-architecture errors, and every trainer trains and reloads through train.py."""
import copy
import glob
import json
import os
import os.path as osp
import re
import subprocess

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, read_log
from docs_text import code_block
from reference import assert_close
from trainer_runs import PROJECT_TRAINERS, assert_reports, build_from_command_line, run_args

from dassl_compat import get_cfg_default
from dpt_models.clip_backbone import MissingWeightsError
from dpt_models.errors import UserError
from dpt_models.open_clip_backbone import (
    import_open_clip,
    load_open_clip,
    preprocess_settings,
    random_model,
    save_model_folder,
    tiny_model_cfg,
)
from dpt_models.templates import class_prompts
from dpt_models.text import PromptLearner, TextEncoder
from dpt_models.visual import PromptedViT, block_attention_weights
from dpt_models.zsclip import TemplateCLIP
from dpt_tools import benchmark, interpret_prompt, visualize
from trainers.config import extend_cfg

# Not CLIP's constants, so that a test can tell which preprocessing was used.
PREPROCESS = {"mean": [0.5, 0.45, 0.4], "std": [0.25, 0.26, 0.27], "interpolation": "bilinear"}
CLASSNAMES = ["red disk", "green_square", "a much longer class name with many words"]


@pytest.fixture(scope="session")
def open_clip_folder(tmp_path_factory):
    """A tiny random open_clip ViT CLIP (2 + 2 blocks, 32 px) as a local-dir folder; its backbone name."""
    folder = str(tmp_path_factory.mktemp("open_clip") / "tiny")
    return save_model_folder(folder, random_model(tiny_model_cfg()), tiny_model_cfg(), PREPROCESS)


@pytest.fixture(scope="session")
def open_clip_model(open_clip_folder):
    return load_open_clip(open_clip_folder)


def test_prompted_vit_with_no_or_empty_prompts_is_open_clips_encode_image(open_clip_model):
    encoder = PromptedViT(open_clip_model.visual)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        reference = open_clip_model.encode_image(images)  # within fp32 rounding: the last block is CLS only
        torch.testing.assert_close(encoder(images), reference, atol=1e-5, rtol=1e-5)
        empty_prompts = torch.zeros(encoder.depth, 0, encoder.width)  # every block through the keys/values path
        torch.testing.assert_close(encoder(images, empty_prompts), reference, atol=1e-5, rtol=1e-5)
        assert not torch.allclose(encoder(images, torch.randn(encoder.depth, 2, encoder.width)), reference)


def test_text_encoder_is_open_clips_encode_text(open_clip_model):
    encoder = TextEncoder(open_clip_model)
    tokens = open_clip_model.tokenizer(class_prompts("a photo of a {}.", CLASSNAMES))
    with torch.no_grad():
        reference = open_clip_model.encode_text(tokens)
        full_length = encoder(open_clip_model.token_embedding(tokens), tokens.argmax(dim=-1))
        assert torch.equal(full_length, reference)
        assert_close(encoder.encode_tokens(tokens), reference, atol=1e-5, what="truncated text features")


def test_prompt_learner_uses_the_models_tokenizer(open_clip_model):
    learner = PromptLearner(CLASSNAMES, open_clip_model, n_ctx=4, ctx_init="a photo of a")
    tokens = open_clip_model.tokenizer(learner.prompts_text)
    assert torch.equal(learner.tokenized_prompts, tokens)
    with torch.no_grad():
        assert torch.equal(learner(), open_clip_model.token_embedding(tokens)[:, : learner().shape[1]])


def test_zero_shot_logits_are_open_clips_zero_shot_classifier(open_clip_model):
    from open_clip.zero_shot_classifier import build_zero_shot_classifier

    templates = ("a photo of a {}.", "itap of a {}.")
    images = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        classifier = build_zero_shot_classifier(
            open_clip_model, open_clip_model.tokenizer, [c.replace("_", " ") for c in CLASSNAMES],
            [t.format for t in templates], device="cpu", use_tqdm=False,
        )  # [E, C]
        image_features = F.normalize(open_clip_model.encode_image(images), dim=-1)
        reference = open_clip_model.logit_scale.exp() * image_features @ classifier
        logits = TemplateCLIP(open_clip_model, CLASSNAMES, templates)(images)["logits"]
    assert_close(logits, reference, atol=1e-4, what="zero-shot logits")


def test_preprocessing_comes_from_the_models_config(open_clip_model):
    assert preprocess_settings(open_clip_model) == {
        "SIZE": (32, 32), "INTERPOLATION": "bilinear", "PIXEL_MEAN": PREPROCESS["mean"], "PIXEL_STD": PREPROCESS["std"]
    }


@pytest.fixture(scope="session")
def registered_tiny(tmp_path_factory):
    """The tiny config registered in open_clip as the model `DPT-Tiny-Test` (as its built-in ones are)."""
    config_file = tmp_path_factory.mktemp("open_clip_config") / "DPT-Tiny-Test.json"
    config_file.write_text(json.dumps(tiny_model_cfg()))
    import_open_clip().add_model_config(str(config_file))
    return "open_clip:DPT-Tiny-Test"


def test_builtin_name_with_a_weight_file(tmp_path, registered_tiny, open_clip_folder, open_clip_model):
    """`open_clip:<model>` + MODEL.BACKBONE.PATH loads the file's weights."""
    folder = open_clip_folder.split("local-dir:", 1)[1]
    model = load_open_clip(registered_tiny, path=f"{folder}/open_clip_model.safetensors")
    reference = open_clip_model.state_dict()
    assert all(torch.equal(value, reference[key]) for key, value in model.state_dict().items())
    with pytest.raises(MissingWeightsError, match="MODEL.BACKBONE.PATH points to"):
        load_open_clip(registered_tiny, path=str(tmp_path / "missing.bin"))


def test_a_weight_file_of_a_tag_gets_the_tags_preprocessing(monkeypatch, registered_tiny, open_clip_folder,
                                                             open_clip_model):
    """PATH (the offline copy of a tag's file) + PRETRAINED: the file's weights, the tag's preprocessing."""
    from open_clip import pretrained

    tag = {"hf_hub": "example/tiny/", "mean": (0.1, 0.2, 0.3), "std": (0.4, 0.5, 0.6), "interpolation": "bilinear"}
    monkeypatch.setitem(pretrained._PRETRAINED, "DPT-Tiny-Test", {"tiny_tag": tag})
    folder = open_clip_folder.split("local-dir:", 1)[1]
    model = load_open_clip(registered_tiny, "tiny_tag", f"{folder}/open_clip_model.safetensors")
    assert preprocess_settings(model) == {"SIZE": (32, 32), "INTERPOLATION": "bilinear",
                                          "PIXEL_MEAN": [0.1, 0.2, 0.3], "PIXEL_STD": [0.4, 0.5, 0.6]}
    reference = open_clip_model.state_dict()
    assert all(torch.equal(value, reference[key]) for key, value in model.state_dict().items())
    with pytest.raises(UserError, match="'no_such_tag' is not a weight tag"):
        load_open_clip(registered_tiny, "no_such_tag", f"{folder}/open_clip_model.safetensors")


def test_offline_tag_error_names_the_file_and_where_to_put_it(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail at once, never download
    with pytest.raises(MissingWeightsError) as error:
        load_open_clip("open_clip:ViT-B-16", pretrained="laion2b_s34b_b88k")
    message = str(error.value)
    assert "open_clip_pytorch_model.bin" in message
    assert "https://huggingface.co/laion/CLIP-ViT-B-16-laion2B-s34B-b88K/resolve/main/" in message
    assert "MODEL.BACKBONE.PATH" in message and "HF_HOME" in message


def test_an_architecture_that_cannot_be_prompted_is_refused_before_its_weights_download(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # a download would fail instead
    with pytest.raises(UserError, match="'open_clip:ViT-B-16-SigLIP' cannot be prompted: .*TimmModel"):
        load_open_clip("open_clip:ViT-B-16-SigLIP", pretrained="webli")


def test_a_weight_tag_with_an_openai_backbone_is_refused(run_train, tmp_path, data_root, tiny_clip_file):
    args = run_args("CoOp", data_root, tiny_clip_file, tmp_path,
                    extra=("MODEL.BACKBONE.OPEN_CLIP_PRETRAINED", "laion2b"))
    with pytest.raises(UserError, match="MODEL.BACKBONE.OPEN_CLIP_PRETRAINED .* is OpenAI CLIP"):
        run_train(args)


def test_builtin_name_without_weights_lists_the_tags():
    with pytest.raises(UserError, match="MODEL.BACKBONE.OPEN_CLIP_PRETRAINED to one of .*laion2b_s34b_b88k"):
        load_open_clip("open_clip:ViT-B-16")


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 64}}, "not a Vision Transformer"),
        ({"vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 8, "head_width": 32,
                         "attentional_pool": True}}, "not pooled on the class token"),
        ({"text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1,
                       "pool_type": "last"}}, "pooled by 'last'"),
    ],
)
def test_architectures_that_cannot_be_prompted_are_refused(tmp_path, change, reason):
    model_cfg = {**tiny_model_cfg(), **change}
    name = save_model_folder(str(tmp_path / "model"), random_model(model_cfg), model_cfg)
    with pytest.raises(UserError, match=reason) as error:
        load_open_clip(name)
    assert "Supported: open_clip's ViT CLIP architectures" in str(error.value)


@pytest.mark.parametrize("trainer_name", PROJECT_TRAINERS)
def test_every_trainer_trains_and_reloads_on_open_clip(run_train, tmp_path, data_root, open_clip_folder, trainer_name):
    def args(folder):
        return run_args(trainer_name, data_root, "", tmp_path / folder, epochs=1,
                        extra=("MODEL.BACKBONE.NAME", open_clip_folder, "MODEL.BACKBONE.PATH", ""))

    if trainer_name.startswith("Zeroshot"):
        accuracy = run_train(["--eval-only"] + args("zero_shot"))
        log = read_log(tmp_path / "zero_shot")
        assert_reports(accuracy, log, build_from_command_line(args("counted")))
    else:
        trainer = run_train(args("train"))
        for loader in (trainer.train_loader_x, trainer.test_loader):
            normalize = [t for t in loader.dataset.transform.transforms if type(t).__name__ == "Normalize"][0]
            assert list(normalize.mean) == PREPROCESS["mean"] and list(normalize.std) == PREPROCESS["std"]
        assert trainer.cfg.INPUT.INTERPOLATION == "bicubic"  # the options as given: recorded with the run
        assert run_train(["--compare-recorded-config"] + args("train")) is None  # what the scripts ask
        accuracy = run_train(["--eval-only", "--model-dir", str(tmp_path / "train"), "--load-epoch", "1"]
                             + args("eval"))
        assert accuracy == pytest.approx(trainer.test())
        log = read_log(tmp_path / "train")
    assert "Image preprocessing of the backbone (data transforms): INPUT.SIZE (32, 32), INPUT.INTERPOLATION bilinear" \
        in log


def test_benchmark_runs_an_open_clip_architecture_with_random_weights(registered_tiny, capsys):
    rows = benchmark.main(["--random-weights", "--backbone", registered_tiny, "--trainers", "CoOp", "DPT",
                           "--classes", "4", "--batch-size", "2", "--steps", "1", "--precision", "fp32",
                           "--device", "cpu", "--opts", "TRAINER.DPT.BOTTOMLIMIT", "2"])
    assert [row["trainer"] for row in rows] == ["CoOp", "DPT"]
    assert rows[0]["trainable"] == 16 * 64  # 16 context vectors of the tiny text width
    assert all(row["train_img_s"] > 0 and row["eval_img_s"] > 0 for row in rows)
    assert f"{registered_tiny}, random weights, C = 4" in capsys.readouterr().out


OPEN_CLIP_CONFIGS = sorted(osp.relpath(path, osp.join(ROOT, "configs", "trainers"))
                           for path in glob.glob(osp.join(ROOT, "configs", "trainers", "*", "openclip_*.yaml")))


def test_every_prompt_tuning_method_has_an_open_clip_config():
    methods = {config.split(os.sep)[0] for config in OPEN_CLIP_CONFIGS}
    assert methods == {"CoOp", "CoCoOp", "VPT", "VLP", "DPT", "MaPLe", "IVLP", "PromptSRC", "KgCoOp", "ProGrad"}


@pytest.mark.parametrize("config_file", OPEN_CLIP_CONFIGS)
def test_open_clip_configs_have_the_openai_configs_hyper_parameters(config_file):
    """Each openclip_*.yaml names the OpenAI recipe it carries over in its first line, and equals it but for the
    backbone and the preprocessing (which the open_clip model sets)."""
    with open(osp.join(ROOT, "configs", "trainers", config_file)) as f:
        openai_config = re.match(r"# The hyper-parameters of (\S+)\.yaml on open_clip", f.readline()).group(1)
    method, name = openai_config.split("/")
    assert config_file.startswith(method + os.sep)

    def merged(config):
        cfg = extend_cfg(get_cfg_default())
        cfg.merge_from_file(osp.join(ROOT, "configs", "trainers", method, f"{config}.yaml"))
        return cfg

    openai, open_clip = merged(name), merged(osp.basename(config_file)[: -len(".yaml")])
    assert (open_clip.MODEL.BACKBONE.NAME, open_clip.MODEL.BACKBONE.OPEN_CLIP_PRETRAINED) == ("open_clip:ViT-B-16",
                                                                                    "laion2b_s34b_b88k")
    open_clip.merge_from_list(["MODEL.BACKBONE.NAME", openai.MODEL.BACKBONE.NAME,
                               "MODEL.BACKBONE.OPEN_CLIP_PRETRAINED", ""])
    for key in ("SIZE", "INTERPOLATION", "PIXEL_MEAN", "PIXEL_STD"):  # set from the model when it loads
        open_clip.INPUT[key] = openai.INPUT[key]
    assert open_clip.dump() == openai.dump()


def test_weights_trained_with_another_activation_are_refused_with_the_right_name():
    with pytest.raises(UserError, match="'metaclip_400m' were trained with QuickGELU.*open_clip:ViT-B-16-quickgelu"):
        load_open_clip("open_clip:ViT-B-16", pretrained="metaclip_400m")


def test_documented_script_commands_run_the_open_clip_configs():
    """Each `bash scripts/...` line of the open_clip block (docs/open_clip.md), dry-run: the train.py
    commands it prints use an existing openclip_*.yaml config and carry the line's options."""
    block = code_block("# zero-shot CLIP and every prompt-tuning method")
    lines = [line for line in block.replace("\\\n", " ").splitlines() if "bash scripts/" in line]
    assert len(lines) == 13
    clean = {k: v for k, v in os.environ.items() if k not in ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT", "EXTRA_OPTS")}
    env = {**clean, "DATA": osp.join(ROOT, "configs"), "DRY_RUN": "1", "SEEDS": "1"}
    for line in lines:
        run = subprocess.run(["bash", "-c", line.split("#")[0]], env=env, capture_output=True, text=True, cwd=ROOT)
        assert run.returncode == 0, (line, run.stderr)
        config = re.search(r"--config-file (\S+)", run.stdout).group(1)
        assert osp.basename(config).startswith("openclip_vit_b16") and osp.isfile(osp.join(ROOT, config)), line
        for option in re.findall(r'EXTRA_OPTS="([^"]*)"', line):
            assert option in run.stdout, line


def test_attention_weights_of_an_open_clip_block(open_clip_model):
    """open_clip's batch-first blocks give the same attention maps [B, N + P, N + P] as the block read
    sequence-first (what dpt-visualize's CLS map uses)."""
    block = open_clip_model.visual.transformer.resblocks[-1]
    x, prompts = torch.randn(17, 3, block.attn.embed_dim), torch.randn(2, block.attn.embed_dim)
    sequence_first = copy.deepcopy(block)
    sequence_first.attn.batch_first = False
    with torch.no_grad():
        weights = block_attention_weights(block, x, prompts)
        assert weights.shape == (3, 19, 19)
        torch.testing.assert_close(weights, block_attention_weights(sequence_first, x, prompts))


def test_visualize_and_interpret_read_open_clip_runs(run_train, tmp_path, data_root, open_clip_folder,
                                                     open_clip_model, capsys):
    extra = ("MODEL.BACKBONE.NAME", open_clip_folder, "MODEL.BACKBONE.PATH", "")
    run_train(run_args("DPT", data_root, "", tmp_path / "dpt", epochs=1, extra=extra))
    figures = tmp_path / "figures"
    assert visualize.main([str(tmp_path / "dpt"), "--out", str(figures), "--num-images", "2", "--classes", "2"]) == 0
    assert len(list(figures.glob("*.png"))) == 3  # two images and the grid
    capsys.readouterr()
    assert interpret_prompt.main([str(tmp_path / "dpt"), "--topk", "2"]) == 0  # dpt-interpret's entry point
    tables = capsys.readouterr().out
    tokens = re.findall(r"^\s*\d+\s+(\S+)\s+[\d.]+$", tables, re.M)
    decoder = open_clip_model.tokenizer.decoder
    vocabulary = {interpret_prompt.token_text(open_clip_model.tokenizer, token_id) for token_id in decoder}
    assert tokens and set(tokens) <= vocabulary


def test_weight_tag_reads_our_key_or_a_string_pretrained_never_dassls_bool():
    from yacs.config import CfgNode

    from trainers.base import weight_tag

    def tag(ours, pretrained):
        return weight_tag(CfgNode({"OPEN_CLIP_PRETRAINED": ours, "PRETRAINED": pretrained}))

    assert tag("laion2b_s34b_b88k", True) == "laion2b_s34b_b88k"  # in a Dassl host: Dassl's bool is no tag
    assert tag("", True) == tag("", False) == tag("", "") == ""
    assert tag("", "datacomp_xl_s13b_b90k") == "datacomp_xl_s13b_b90k"  # the bundled engine's earlier key
    with pytest.raises(UserError, match="OPEN_CLIP_PRETRAINED .'laion2b_s34b_b88k'. and MODEL.BACKBONE.PRETRAINED"):
        tag("laion2b_s34b_b88k", "datacomp_xl_s13b_b90k")
