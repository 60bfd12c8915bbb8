"""ProGrad: fidelity to the authors' code (tests/fixtures/prograd.pt with their released options,
prograd_random.pt with a random context, T 2 and LAMBDA 0.8; written by `python -m dpt_tools.fidelity_kgcoop`
from github.com/htyao89/KgCoOp), the projection, DDP, train.py, configs and scripts."""
import os
import os.path as osp

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import ROOT, folder_run_args, read_log
from reference import (
    assert_close,
    bare_trainer,
    load_reference,
    reference_clip,
    reference_model,
    reference_step_inputs,
    with_training_step,
)
from test_scripts import dry_run
from torch.nn.parallel import DistributedDataParallel
from trainer_runs import GRAD_RTOL, build, first_step, fixed_batch, relative_error

from dassl_compat import get_cfg_default
from dassl_compat.errors import UserError
from dpt_models.prograd import project_conflicting, template_context
from trainers.base import ddp_options
from trainers.config import extend_cfg

CTX = "prompt_learner.ctx"
# gradients are O(100) (the logits carry CLIP's x100 scale): atol 1e-3 is float rounding
GRAD_TOL = {"atol": 1e-3, "rtol": 1e-4}


def test_prograd_initialises_its_context_from_the_template_as_the_authors():
    ref = load_reference("prograd")
    model = bare_trainer("prograd").build_clip_model(reference_clip(), ref["meta"]["classnames"])
    # EuroSAT's "a centered satellite photo of": 5 words after 11 zero vectors
    words = "a centered satellite photo of"
    assert template_context(words + " {}.", 16) == ("X " * 11 + words, 11)
    assert_close(model.prompt_learner.ctx, ref["trainable_values"][CTX], atol=0, what="ctx init")
    assert torch.equal(model.prompt_learner.tokenized_prompts, ref["tokenized_prompts"])
    assert_close(model.template_features, ref["features"]["zs_text_features"], atol=1e-6, what="template features")


@pytest.mark.parametrize("case", ["prograd", "prograd_random"])
def test_prograd_reproduces_reference_logits_losses_and_gradients(case):
    ref, trainer, model, loss, components = reference_step_inputs(case)  # logits, loss and its terms checked
    images, labels = ref["images"], ref["labels"]
    with_graph = {"ce_logits": loss, "kl_zero_shot": components["kl_zero_shot"]}  # the loss is the cross-entropy
    for name in ref["loss_components"]:
        grad, = torch.autograd.grad(with_graph[name], [model.prompt_learner.ctx], retain_graph=True)
        assert_close(grad, ref["component_grads"][name][CTX], **GRAD_TOL, what=f"gradient of {name}")

    # their step: here the two gradients agree, so the update is the cross-entropy's gradient
    summary = trainer.forward_backward({"img": images, "label": labels})
    assert summary["loss"] == pytest.approx(ref["loss"]["epoch0"], rel=1e-5)
    assert summary["kl_zero_shot"] == pytest.approx(ref["loss_components"]["kl_zero_shot"], rel=1e-5)
    assert_close(model.prompt_learner.ctx.grad, ref["grads"]["epoch0"][CTX], **GRAD_TOL, what="step gradient")

    # their step with the distillation loss negated: the gradients conflict and the projection is taken
    loss, components = trainer.compute_loss(model(images), labels)
    trainer.backward_and_update(loss, {"kl_zero_shot": -components["kl_zero_shot"]})
    expected = ref["grads_negated_kl"][CTX]
    assert (expected - ref["component_grads"]["ce_logits"][CTX]).norm() > 1.0  # the projection changed it
    assert_close(model.prompt_learner.ctx.grad, expected, **GRAD_TOL, what="projected gradient")


def test_projection_removes_lambda_of_the_conflicting_component_only():
    general = torch.tensor([[0.0, 2.0]])
    assert torch.equal(project_conflicting(torch.tensor([[1.0, 1.0]]), general, 1.0), torch.tensor([[1.0, 1.0]]))
    assert torch.equal(project_conflicting(torch.tensor([[1.0, -1.0]]), general, 1.0), torch.tensor([[1.0, 0.0]]))
    assert torch.equal(project_conflicting(torch.tensor([[1.0, -1.0]]), general, 0.5), torch.tensor([[1.0, -0.5]]))
    assert torch.equal(project_conflicting(torch.tensor([[1.0, -1.0]]), torch.zeros(1, 2), 1.0),
                       torch.tensor([[1.0, -1.0]]))  # no general direction: unchanged


def conflicting(trainer):
    """The trainer with its distillation loss negated, so that its step projects (see the fixture)."""
    compute_loss = trainer.compute_loss

    def negated(outputs, labels):
        loss, components = compute_loss(outputs, labels)
        return loss, {**components, "kl_zero_shot": -components["kl_zero_shot"]}

    trainer.compute_loss = negated
    return trainer


def ddp_worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        ref, trainer, model = reference_model("prograd_random")
        conflicting(with_training_step(trainer, model))
        trainer.model = DistributedDataParallel(model, **ddp_options())
        rows = slice(rank * 2, rank * 2 + 2)
        trainer.forward_backward({"img": ref["images"][rows], "label": ref["labels"][rows]})
        torch.save(model.prompt_learner.ctx.grad, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_one_ddp_step_projects_as_one_process_on_the_global_batch(tmp_path):
    """Both gradients are averaged over the processes before the projection, as one process computes them."""
    # fork: the workers start in a second instead of importing torch and the project again (each worker
    # runs single-threaded, so no OpenMP pool of this process is used after the fork)
    mp.start_processes(ddp_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork")
    ref, trainer, model = reference_model("prograd_random")
    conflicting(with_training_step(trainer, model))
    trainer.forward_backward({"img": ref["images"], "label": ref["labels"]})
    for rank in range(2):
        assert_close(torch.load(tmp_path / f"{rank}.pt", weights_only=True), model.prompt_learner.ctx.grad,
                     **GRAD_TOL, what=f"rank {rank}")


def test_prograd_trains_through_train_py_and_rejects_bad_options(run_train, tmp_path, data_root, tiny_clip_file):
    out = tmp_path / "prograd"
    opts = ("TRAINER.PROGRAD.PREC", "fp32", "TRAINER.PROGRAD.N_CTX", "6")
    run_train(folder_run_args(data_root, tiny_clip_file, out, trainer="ProGrad", epochs=1, extra=opts))
    log = read_log(out)
    assert "Trainable parameters: 768" in log and "kl_zero_shot" in log  # 6 x 128
    assert "Zero-shot template: 'a photo of a {}.'" in log
    with pytest.raises(UserError, match="TRAINER.PROGRAD.N_CTX"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "bad", trainer="ProGrad",
                                  extra=("TRAINER.PROGRAD.N_CTX", "3")))
    with pytest.raises(UserError, match="TRAINER.PROGRAD.T"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "bad_t", trainer="ProGrad",
                                  extra=("TRAINER.PROGRAD.T", "0.0")))


@pytest.mark.parametrize("name,epochs", [("rn50", 200), ("rn50_ep100", 100), ("rn50_ep50", 50),
                                         ("vit_b16_ep100", 100), ("openclip_vit_b16", 100), ("toy", 60)])
def test_prograd_configs_hold_the_released_values(name, epochs):
    cfg = extend_cfg(get_cfg_default())
    cfg.merge_from_file(osp.join(ROOT, "configs", "trainers", "ProGrad", f"{name}.yaml"))
    node = cfg.TRAINER.PROGRAD
    assert node.CTX_INIT is True and (node.T, node.LAMBDA) == (1.0, 1.0)
    assert cfg.OPTIM.MAX_EPOCH == epochs and cfg.OPTIM.LR == 0.002
    assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == (16 if name == "toy" else 32)


def test_prograd_scripts_run_its_configs():
    run = dry_run("prograd/main.sh", "eurosat", "4")
    assert run.returncode == 0, run.stderr
    assert "--trainer ProGrad --dataset-config-file configs/datasets/eurosat.yaml" in run.stdout
    assert "configs/trainers/ProGrad/vit_b16_ep100.yaml" in run.stdout and "TRAINER.PROGRAD.N_CTX 16" in run.stdout


@pytest.mark.parametrize("precision", ["amp", "bf16"])
def test_a_projected_step_in_mixed_precision_is_the_fp32_one(tmp_path, data_root, tiny_clip_file, precision):
    """Both gradients of the scaled losses, projected, then unscaled: the fp32 step (registry-wide test
    test_precision.py covers the unprojected step; here the distillation loss is negated so that it projects)."""
    reference = conflicting(build("ProGrad", data_root, tiny_clip_file, tmp_path / "fp32"))
    trainer = conflicting(build("ProGrad", data_root, tiny_clip_file, tmp_path / precision, precision))
    trainer.model.load_state_dict(reference.model.state_dict())
    batch = fixed_batch(reference)
    _, expected = first_step(reference, batch)
    _, grads = first_step(trainer, batch)
    plain = build("ProGrad", data_root, tiny_clip_file, tmp_path / "plain")  # the distillation loss as it is
    _, unprojected = first_step(plain, batch)
    assert all(relative_error(expected[name], unprojected[name]) > 0.05 for name in expected)  # it projected
    for name, grad in grads.items():
        assert torch.isfinite(grad).all() and relative_error(grad, expected[name]) < GRAD_RTOL[precision], name
