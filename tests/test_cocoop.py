"""CoCoOp: fidelity to the authors' outputs, batched vs per-image text encoding, precision modes,
train.py runs (train, eval-only reload, across class sets), the CoOp / CoCoOp config files and the
coop / cocoop / zsclip scripts (their train.py commands and run folders, as in CoOp's scripts)."""
import glob
import os
import os.path as osp
import subprocess

import pytest
import torch
import torch.nn.functional as F
from conftest import ROOT, folder_run_args
from reference import assert_close, load_reference, reference_clip

from dassl_compat import get_cfg_default
from trainers.clip_backbone import tiny_clip
from trainers.cocoop import CoCoOpCLIP
from trainers.config import extend_cfg
from trainers.text import PromptLearner

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
    model.text_encoder.register_forward_pre_hook(lambda module, args: sequences_per_call.append(len(args[0])))
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
            torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("position", ["end", "middle", "front"])
def test_batched_prompt_assembly_equals_per_image_assembly(position):
    learner = PromptLearner(["dog", "sea lion", "Annual Crop Land"], tiny_clip(seed=1), n_ctx=4,
                            class_token_position=position)
    ctx = torch.randn(2, 3, 4, learner.ctx.shape[-1])  # [B, C, M, W]
    batched = learner.assemble(ctx)
    assert batched.shape[:2] == (2, 3)
    for b in range(2):
        torch.testing.assert_close(batched[b], learner.assemble(ctx[b]), atol=0, rtol=0)


@pytest.mark.parametrize("precision,rtol", [("fp16", 5e-3), ("bf16", 3e-2)])
def test_precision_modes_compute_the_fp32_loss(precision, rtol):
    """Autocast keeps the parameters in fp32 and the logits are computed in fp32 from the
    normalised features; only activations are rounded, to fp16 (10-bit mantissa) or bf16 (7-bit),
    so the loss agrees to about 2^-8 (fp16) / 2^-5 (bf16) relative."""
    ref, model = cocoop_reference_model("cocoop")
    model.train()
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    losses = {}
    for prec in ("fp32", precision):
        model.zero_grad()
        with torch.autocast("cpu", dtype=dtype, enabled=prec != "fp32"):
            logits = model(ref["images"])["logits"]
        assert logits.dtype == torch.float32
        loss = F.cross_entropy(logits, ref["labels"])
        loss.backward()
        losses[prec] = loss.item()
        assert all(torch.isfinite(p.grad).all() for p in model.prompt_learner.parameters())
    assert losses[precision] == pytest.approx(losses["fp32"], rel=rtol)
    assert all(p.dtype == torch.float32 for p in model.prompt_learner.parameters())


def read_log(output_dir):
    return "\n".join(open(p).read() for p in sorted(glob.glob(osp.join(output_dir, "log.txt*"))))


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


# The released recipes (toy.yaml, the offline demo's small-model recipe, is run by test_demo.py).
CONFIG_FILES = sorted(p for p in glob.glob(osp.join(ROOT, "configs", "trainers", "CoOp", "*.yaml"))
                      + glob.glob(osp.join(ROOT, "configs", "trainers", "CoCoOp", "*.yaml"))
                      if osp.basename(p) != "toy.yaml")


def test_config_files_cover_the_coop_repository_names():
    names = {osp.relpath(p, osp.join(ROOT, "configs", "trainers"))[:-5] for p in CONFIG_FILES}
    for backbone in ("rn50", "rn101", "vit_b16", "vit_b32"):
        assert {f"CoOp/{backbone}", f"CoOp/{backbone}_ep50", f"CoOp/{backbone}_ep100"} <= names
    assert {"CoOp/rn50_ctxv1", "CoOp/rn50_ep50_ctxv1", "CoOp/vit_b16_ctxv1", "CoOp/vit_b16_ep50_ctxv1",
            "CoOp/vit_b16_ep100_ctxv1"} <= names
    assert {"CoCoOp/vit_b16_c4_ep10_batch1", "CoCoOp/vit_b16_c8_ep10_batch1", "CoCoOp/vit_b16_c16_ep10_batch1",
            "CoCoOp/vit_b16_c4_ep10_batch1_ctxv1"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: osp.relpath(p, ROOT))
def test_config_file_merges_and_holds_the_released_values(path):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(path)  # yacs raises on any key our config does not declare
    name = osp.basename(path)[:-5]
    assert cfg.INPUT.SIZE == (224, 224) and cfg.INPUT.INTERPOLATION == "bicubic"
    assert list(cfg.INPUT.PIXEL_MEAN) == [0.48145466, 0.4578275, 0.40821073]
    assert list(cfg.INPUT.PIXEL_STD) == [0.26862954, 0.26130258, 0.27577711]
    assert cfg.DATALOADER.NUM_WORKERS == 8
    if name == "rn50_val":
        assert cfg.DATALOADER.TEST.BATCH_SIZE == 200
        return
    backbone = {"rn50": "RN50", "rn101": "RN101", "vit_b16": "ViT-B/16", "vit_b32": "ViT-B/32"}
    assert cfg.MODEL.BACKBONE.NAME == backbone[name.split("_c")[0].split("_ep")[0]]
    assert list(cfg.INPUT.TRANSFORMS) == ["random_resized_crop", "random_flip", "normalize"]
    assert cfg.DATALOADER.TEST.BATCH_SIZE == 100
    assert (cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.LR_SCHEDULER) == ("sgd", 0.002, "cosine")
    assert (cfg.OPTIM.WARMUP_EPOCH, cfg.OPTIM.WARMUP_TYPE, cfg.OPTIM.WARMUP_CONS_LR) == (1, "constant", 1e-5)
    ctx_init = "a photo of a" if name.endswith("_ctxv1") else ""
    if "/CoCoOp/" in path:
        n_ctx = int(name.split("_c")[1].split("_")[0])
        assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH, cfg.TRAIN.PRINT_FREQ) == (1, 10, 20)
        assert (cfg.TRAINER.COCOOP.N_CTX, cfg.TRAINER.COCOOP.CTX_INIT, cfg.TRAINER.COCOOP.PREC) == (n_ctx, ctx_init,
                                                                                                   "fp16")
    else:
        epochs = int(name.split("_ep")[1].split("_")[0]) if "_ep" in name else 200
        assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.MAX_EPOCH, cfg.TRAIN.PRINT_FREQ) == (32, epochs, 5)
        assert cfg.TRAINER.COOP.CTX_INIT == ctx_init


def dry_run(script, *args, **env):
    """The train.py commands a scripts/ entry point would run (DRY_RUN=1), one seed unless SEEDS is given."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("CLIP_PATH", "OUTPUT", "NCTX", "CSC", "CTP")}
    full_env.update({"DATA": osp.join(ROOT, "configs"), "DRY_RUN": "1", "SEEDS": "1", **env})
    return subprocess.run(["bash", osp.join(ROOT, "scripts", script), *args], env=full_env, capture_output=True,
                          text=True, cwd=ROOT)


@pytest.mark.parametrize("script,args,expected", [
    ("coop/main.sh", ["caltech101", "rn50_ep50", "middle", "8", "2", "True"],
     "--trainer CoOp --dataset-config-file configs/datasets/caltech101.yaml --config-file "
     "configs/trainers/CoOp/rn50_ep50.yaml --output-dir output/caltech101/CoOp/rn50_ep50_2shots/"
     "nctx8_cscTrue_ctpmiddle/seed1 DATASET.NUM_SHOTS 2 TRAINER.COOP.N_CTX 8 TRAINER.COOP.CSC True "
     "TRAINER.COOP.CLASS_TOKEN_POSITION middle"),
    ("coop/eval.sh", ["imagenetv2", "vit_b16_ep50"],
     "--output-dir output/evaluation/CoOp/vit_b16_ep50_16shots/nctx16_cscFalse_ctpend/imagenetv2/seed1 "
     "--model-dir output/imagenet/CoOp/vit_b16_ep50_16shots/nctx16_cscFalse_ctpend/seed1 --load-epoch 50 --eval-only"),
    ("cocoop/base2new_train.sh", ["eurosat", "2"],
     "--seed 2 --trainer CoCoOp --dataset-config-file configs/datasets/eurosat.yaml --config-file "
     "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml --output-dir "
     "output/base2new/train_base/eurosat/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed2 "
     "DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base"),
    ("cocoop/base2new_test.sh", ["eurosat", "3"],
     "--output-dir output/base2new/test_new/eurosat/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed3 "
     "--model-dir output/base2new/train_base/eurosat/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed3 "
     "--load-epoch 10 --eval-only DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES new"),
    ("cocoop/xd_train.sh", ["1"],
     "--dataset-config-file configs/datasets/imagenet.yaml --config-file "
     "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml --output-dir "
     "output/imagenet/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots/seed1 DATASET.NUM_SHOTS 16"),
    ("cocoop/xd_test.sh", ["dtd", "1", "vit_b16_c16_ep10_batch1"],
     "--output-dir output/evaluation/CoCoOp/vit_b16_c16_ep10_batch1_16shots/dtd/seed1 --model-dir "
     "output/imagenet/CoCoOp/vit_b16_c16_ep10_batch1_16shots/seed1 --load-epoch 10 --eval-only"),
    ("zsclip/zeroshot.sh", ["eurosat", "rn50"],
     "--trainer ZeroshotCLIP --dataset-config-file configs/datasets/eurosat.yaml --config-file "
     "configs/trainers/CoOp/rn50.yaml --output-dir output/ZeroshotCLIP/rn50/eurosat --eval-only"),
])
def test_scripts_take_coops_arguments_and_write_its_run_folders(script, args, expected):
    run = dry_run(script, *args)
    assert run.returncode == 0, run.stderr
    assert expected in run.stdout
    assert run.stdout.count("python train.py") == 1


def test_run_all_datasets_loops_over_the_benchmarks():
    run = dry_run("run_all_datasets.sh", "base2new", "cocoop", "1")
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("--eval-only") == run.stdout.count("SUBSAMPLE_CLASSES base") == 11
    targets = dry_run("run_all_datasets.sh", "xd_test", "coop", "1").stdout
    assert targets.count("python train.py") == 10 and "datasets/imagenet.yaml" not in targets
    usage = dry_run("run_all_datasets.sh", "main", "coop", "rn50")
    assert usage.returncode == 2 and "Usage: bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC" in usage.stderr
