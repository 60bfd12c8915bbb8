"""The engine around the trainers (dassl_compat, train.py): learning-rate schedules as Dassl's, config and
trainer-name errors, resuming an interrupted run, seed 0."""
import glob
import sys

import pytest
import torch
from conftest import folder_run_args, read_log

from dassl_compat import TrainerX, build_lr_scheduler, get_cfg_default
from dpt_models.errors import UserError


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


def test_unknown_config_key_is_a_clear_error(run_train, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "out", extra=("TRAINER.COOP.NCTX", "4"))
    with pytest.raises(SystemExit, match="TRAINER.COOP.NCTX"):
        run_train(args)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("OPTIM:\n  LEARNING_RATE: 0.1\n")
    with pytest.raises(SystemExit, match=r"bad\.yaml.*LEARNING_RATE"):
        run_train(["--config-file", str(bad_yaml)] + args[:-2])


def test_unknown_trainer_suggests_the_close_name(run_train, tmp_path, data_root, tiny_clip_file):
    with pytest.raises(UserError, match=r"Do you mean .*CoOp"):
        run_train(folder_run_args(data_root, tiny_clip_file, tmp_path / "out", trainer="CoOP"))


def test_resume_continues_an_interrupted_run(run_train, tmp_path, data_root, tiny_clip_file, monkeypatch):
    out = tmp_path / "interrupted"

    def ctrl_c_in_the_second_epoch(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(TrainerX, "before_epoch", ctrl_c_in_the_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=3))
    resumed = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=3))
    log = open(sorted(glob.glob(str(out / "log.txt-*")))[-1]).read()
    assert "Previous epoch: 1" in log and "epoch [1/3]" not in log and "epoch [3/3]" in log
    assert resumed._scheds["prompt_learner"].last_epoch == 3


def test_seed_zero_is_honoured(run_train, tmp_path, data_root, tiny_clip_file):
    args = folder_run_args(data_root, tiny_clip_file, tmp_path / "seed0", epochs=1)
    args[args.index("--seed") + 1] = "0"
    trainer = run_train(args)
    assert trainer.cfg.SEED == 0
    assert "\nSEED: 0\n" in read_log(tmp_path / "seed0")




def test_training_without_tensorboard_says_so_and_writes_no_events(tmp_path, monkeypatch, capsys):
    """tensorboard is optional: without it the writer is off (one line says so) and scalars are dropped."""
    from dassl_compat.lite.trainer import TrainerBase

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # `import` of it raises ImportError
    trainer = TrainerBase()
    trainer.init_writer(str(tmp_path))
    trainer.write_scalar("train/loss", 1.0, 0)
    trainer.close_writer()
    assert "tensorboard is not installed (pip install tensorboard)" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
