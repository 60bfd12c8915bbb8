"""KgCoOp: fidelity to the authors' code (tests/fixtures/kgcoop.pt, written by `python -m
dpt_tools.fidelity_kgcoop` from github.com/htyao89/KgCoOp), the loss through train.py, configs and scripts."""
import os.path as osp
import re

import pytest
import torch
from conftest import ROOT, folder_run_args, read_log
from reference import assert_close, bare_trainer, load_reference, reference_clip, reference_step_inputs
from test_scripts import dry_run

from dassl_compat import get_cfg_default
from dassl_compat.errors import UserError
from dpt_tools import fidelity_kgcoop
from trainers.config import extend_cfg


def test_kgcoop_initialises_its_prompt_and_template_as_the_authors():
    ref = load_reference("kgcoop")
    trainer = bare_trainer("kgcoop")
    model = trainer.build_clip_model(reference_clip(), ref["meta"]["classnames"])
    # their CTX_INIT True: 4 tokens from "a photo of a"
    assert_close(model.prompt_learner.ctx, ref["trainable_values"]["prompt_learner.ctx"], atol=0, what="ctx init")
    assert torch.equal(model.prompt_learner.tokenized_prompts, ref["tokenized_prompts"])
    assert_close(model.template_features, ref["features"]["zs_text_features"], atol=1e-6, what="template features")


def test_kgcoop_reproduces_reference_logits_losses_and_gradients():
    ref, trainer, model, _, _ = reference_step_inputs("kgcoop")  # logits, loss and its terms checked
    images, labels = ref["images"], ref["labels"]
    summary = trainer.forward_backward({"img": images, "label": labels})  # our training step
    assert summary["loss"] == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    # gradients are O(10) (the logits carry CLIP's x100 scale): atol 1e-4 is float rounding
    assert_close(model.prompt_learner.ctx.grad, ref["grads"]["epoch0"]["prompt_learner.ctx"], atol=1e-4, rtol=1e-4,
                 what="ctx grad")


def test_kgcoop_loss_is_cross_entropy_plus_w_times_the_distance_in_train_py_runs(run_train, tmp_path, data_root,
                                                                                 tiny_clip_file):
    out = tmp_path / "kgcoop"
    # a random context: "a photo of a" is the folder dataset's template itself, at distance 0
    opts = ("TRAINER.KGCOOP.PREC", "fp32", "TRAINER.KGCOOP.W", "2.0", "TRAINER.KGCOOP.CTX_INIT", "")
    run_train(folder_run_args(data_root, tiny_clip_file, out, trainer="KgCoOp", epochs=1, extra=opts))
    log = read_log(out)
    assert "Trainable parameters: 512" in log  # N_CTX 4 x 128
    first = re.search(r"loss ([\d.]+) .*ce_logits ([\d.]+) .*kg_distance ([\d.]+)", log)
    loss, ce, distance = map(float, first.groups())
    assert distance > 0 and loss == pytest.approx(ce + 2.0 * distance, abs=3e-4)  # the log rounds to 4 decimals
    with pytest.raises(UserError, match=r"TRAINER\.KGCOOP\.W must be a number >= 0, got -1\.0"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "bad", trainer="KgCoOp",
                                  extra=("TRAINER.KGCOOP.W", "-1.0")))


@pytest.mark.parametrize("name", ["vit_b16_ep100_ctxv1", "rn50_ep100", "openclip_vit_b16", "toy"])
def test_kgcoop_configs_hold_the_released_values(name):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(osp.join(ROOT, "configs", "trainers", "KgCoOp", f"{name}.yaml"))
    assert cfg.TRAINER.KGCOOP.W == 8.0 and cfg.TRAINER.KGCOOP.CTX_INIT == "a photo of a"
    assert cfg.OPTIM.LR == 0.002 and cfg.OPTIM.LR_SCHEDULER == "cosine"
    if name != "toy":  # the authors' 100 epochs of batch 128
        assert (cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TRAIN_X.BATCH_SIZE) == (100, 128)


def test_kgcoop_scripts_pass_the_authors_arguments():
    run = dry_run("kgcoop/base2new_train.sh", "eurosat")
    assert run.returncode == 0, run.stderr
    assert ("--trainer KgCoOp --dataset-config-file configs/datasets/eurosat.yaml --config-file "
            "configs/trainers/KgCoOp/vit_b16_ep100_ctxv1.yaml") in run.stdout
    assert "TRAINER.KGCOOP.N_CTX 4 TRAINER.KGCOOP.CSC False TRAINER.KGCOOP.CLASS_TOKEN_POSITION end" in run.stdout
    assert "DATASET.SUBSAMPLE_CLASSES base" in run.stdout


def test_fixture_script_names_the_clone_it_needs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fidelity_kgcoop.main(["--kgcoop-repo", str(tmp_path), "--out", str(tmp_path / "fixtures")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"--kgcoop-repo {tmp_path} is not a clone of github.com/htyao89/KgCoOp" in error
    assert "Dassl.ProGrad.pytorch/dassl/__init__.py" in error and not (tmp_path / "fixtures").exists()
