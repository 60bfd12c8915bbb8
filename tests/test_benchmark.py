"""dpt_tools.benchmark builds every trainer through train.py's config path and measures it (no timing
is asserted: a benchmark's numbers depend on the machine), also without a weight file (--random-weights)."""
import pytest
import torch

from dpt_models.clip_backbone import OPENAI_ARCHITECTURES, build_model, tiny_clip_state_dict
from dpt_tools import benchmark


def test_benchmark_reports_every_trainer(tiny_clip_file, capsys):
    rows = benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--classes", "4", "--batch-size", "2",
                           "--steps", "1", "--precision", "fp32", "--device", "cpu",
                           "--opts", "TRAINER.DPT.BOTTOMLIMIT", "2", "TRAINER.MAPLE.PROMPT_DEPTH", "2",
                           "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2", "TRAINER.IVLP.PROMPT_DEPTH_VISION", "2",
                           "TRAINER.PROMPTSRC.PROMPT_DEPTH_TEXT", "2", "TRAINER.PROMPTSRC.PROMPT_DEPTH_VISION", "2"])
    assert [row["trainer"] for row in rows] == list(benchmark.default_configs())
    by_name = {row["trainer"]: row for row in rows}
    assert by_name["ZeroshotCLIP"]["trainable"] == 0 and "train_img_s" not in by_name["ZeroshotCLIP"]
    assert by_name["CoOp"]["trainable"] == 16 * 128  # 16 context vectors of the text width
    assert all(row["eval_img_s"] > 0 for row in rows)
    assert all(row["train_img_s"] > 0 for row in rows if row["trainer"] != "ZeroshotCLIP")
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in benchmark.default_configs())


def test_random_vit_b32_has_the_released_architecture():
    """The random ViT-B/32 that --random-weights benchmarks goes through `build_model` as OpenAI's file
    does, with its shapes: 151,277,313 parameters, as the released ViT-B/32."""
    model = build_model(tiny_clip_state_dict(**OPENAI_ARCHITECTURES["ViT-B/32"]))
    visual, text = model.visual, model.transformer
    assert (visual.input_resolution, visual.conv1.kernel_size, visual.conv1.out_channels) == (224, (32, 32), 768)
    assert len(visual.transformer.resblocks) == 12 and visual.transformer.resblocks[0].attn.num_heads == 12
    assert (text.width, len(text.resblocks), text.resblocks[0].attn.num_heads) == (512, 12, 8)
    assert (model.context_length, model.vocab_size, model.text_projection.shape[1]) == (77, 49408, 512)
    assert sum(p.numel() for p in model.parameters()) == 151_277_313


def test_random_weights_benchmark_an_architecture_without_its_file(monkeypatch, capsys):
    monkeypatch.setitem(OPENAI_ARCHITECTURES, "Tiny-ViT/8", dict(embed_dim=32, image_resolution=32, vision_layers=2,
                                                                 vision_width=64, vision_patch_size=8,
                                                                 transformer_width=128, transformer_layers=2))
    rows = benchmark.main(["--random-weights", "--backbone", "Tiny-ViT/8", "--trainers", "CoOp", "--classes", "4",
                           "--batch-size", "2", "--steps", "1", "--precision", "fp32", "--device", "cpu"])
    assert rows[0]["trainable"] == 16 * 128 and rows[0]["train_img_s"] > 0
    assert "Tiny-ViT/8, random weights, C = 4" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        benchmark.main(["--random-weights", "--backbone", "ToyCLIP-ViT"])
    with pytest.raises(SystemExit):
        benchmark.main(["--random-weights", "--backbone", "ViT-B/32", "--path", "clip.pt"])


def test_a_trainer_out_of_cuda_memory_is_reported_and_the_others_run(tiny_clip_file, monkeypatch, capsys):
    build = benchmark.build

    def build_or_run_out_of_memory(trainer_name, *args):
        if trainer_name == "CoCoOp":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return build(trainer_name, *args)

    monkeypatch.setattr(benchmark, "build", build_or_run_out_of_memory)
    rows = benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--trainers", "CoCoOp", "CoOp",
                           "--classes", "4", "--batch-size", "2", "--steps", "1", "--precision", "fp32",
                           "--device", "cpu"])
    assert rows[0] == {"trainer": "CoCoOp", "out_of_memory": True} and rows[1]["eval_img_s"] > 0
    assert "| CoCoOp | - | out of memory | - | - | - | - | - |" in capsys.readouterr().out


def test_classnames_file_sets_the_classes_and_their_names(tiny_clip_file, tmp_path, monkeypatch, capsys):
    """--classnames: CoOp's classnames.txt lines or plain names; a name listed twice and one with a path
    separator still give one class each, named as in the file."""
    names_file = tmp_path / "classnames.txt"
    names_file.write_text("n01440764 tench\nn01443537 goldfish\n\nmissile\nmissile\nbaluster / handrail\n")
    built = []
    build = benchmark.build
    monkeypatch.setattr(benchmark, "build", lambda *args: built.append(build(*args)) or built[-1])
    rows = benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--trainers", "CoOp", "--classnames",
                           str(names_file), "--batch-size", "2", "--steps", "1", "--precision", "fp32",
                           "--device", "cpu"])
    assert rows[0]["train_img_s"] > 0 and "C = 5," in capsys.readouterr().out
    assert sorted(built[0].dm.dataset.classnames) == sorted(
        ["tench", "goldfish", "missile", "missile ", "baluster - handrail"])
    with pytest.raises(SystemExit) as missing:
        benchmark.main(["--backbone", "tiny", "--path", tiny_clip_file, "--classnames", str(tmp_path / "no.txt")])
    assert missing.value.code == 2
