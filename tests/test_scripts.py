"""scripts/: the train.py commands and run folders they write (DRY_RUN), as CoOp's and DPT's scripts do."""
import os
import os.path as osp
import subprocess

import pytest
from conftest import ROOT


def run_script(script, *args, **env):
    """Run a scripts/ entry point without the caller's script variables (with DRY_RUN=1 the train.py
    commands are printed, not run)."""
    variables = ("DATA", "CLIP_PATH", "SEEDS", "OUTPUT", "NCTX", "CSC", "CTP", "DRY_RUN")
    clean = {k: v for k, v in os.environ.items() if k not in variables}
    return subprocess.run(["bash", osp.join(ROOT, "scripts", script), *args], env={**clean, **env},
                          capture_output=True, text=True, cwd=ROOT)


def dry_run(script, *args, **env):
    """The train.py commands a scripts/ entry point would run (DRY_RUN=1), one seed unless SEEDS is given."""
    return run_script(script, *args, **{"DATA": osp.join(ROOT, "configs"), "DRY_RUN": "1", "SEEDS": "1", **env})


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


def test_scripts_on_a_toy_dataset_default_to_its_recipe_and_the_demo_data_folder(tmp_path):
    run = run_script("dpt/main.sh", "toy_fog", "4", DRY_RUN="1", SEEDS="1", OUTPUT=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert f"DATA is not set: using {ROOT}/data" in run.stderr
    assert f"--root {ROOT}/data " in run.stdout and "--config-file configs/trainers/DPT/toy.yaml" in run.stdout
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


@pytest.mark.parametrize("method,trainer,configs", [
    ("maple", "MaPLe", ("vit_b16_c2_ep5_batch4_2ctx", "vit_b16_c2_ep5_batch4_2ctx",
                        "vit_b16_c2_ep5_batch4_2ctx_cross_datasets")),
    ("ivlp", "IVLP", ("vit_b16_c2_ep5_batch4_2+2ctx",) * 3),
    ("promptsrc", "PromptSRC", ("vit_b16_c2_ep50_batch4_4+4ctx_few_shot", "vit_b16_c2_ep20_batch4_4+4ctx",
                                "vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets")),
])
def test_successor_scripts_run_each_protocol_with_the_authors_config_for_it(method, trainer, configs):
    few_shot, base2new, cross_dataset = configs
    expected = {
        ("main.sh", "dtd", "4"): f"configs/trainers/{trainer}/{few_shot}.yaml --output-dir "
                                 f"output/dtd/{trainer}/{few_shot}_4shots/seed1 DATASET.NUM_SHOTS 4",
        ("base2new_train.sh", "eurosat"): f"--output-dir output/base2new/train_base/eurosat/shots_16/{trainer}/"
                                          f"{base2new}/seed1 DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base",
        ("base2new_test.sh", "eurosat"): f"--model-dir output/base2new/train_base/eurosat/shots_16/{trainer}/"
                                         f"{base2new}/seed1",
        ("xd_train.sh",): f"--output-dir output/imagenet/{trainer}/{cross_dataset}_16shots/seed1",
        ("xd_test.sh", "dtd"): f"--model-dir output/imagenet/{trainer}/{cross_dataset}_16shots/seed1",
        ("eval.sh", "imagenet_r"): f"--model-dir output/imagenet/{trainer}/{cross_dataset}_16shots/seed1",
    }
    for (script, *args), command in expected.items():
        run = dry_run(f"{method}/{script}", *args)
        assert run.returncode == 0, run.stderr
        assert f"--trainer {trainer} " in run.stdout and command in run.stdout, (script, run.stdout)
