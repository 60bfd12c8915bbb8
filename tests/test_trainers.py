"""Every registered trainer through train.py, as timm tests every registered model: a new trainer is
covered by registering it. Each one trains exactly the parameters of its registered modules (CLIP stays
frozen) and logs their count; its checkpoints hold those modules and load back exactly for evaluation
(in-process, with train.py --eval-only, and as MODEL.INIT_WEIGHTS where one module trains), also for
another class set (class-dependent entries aside); a run stopped after an epoch resumes to the same weights;
an evaluation reports the accuracy of the model it loaded, counted here from its logits. Zero-shot trainers
train nothing and evaluate directly."""
import pytest
import torch
from conftest import read_log
from trainer_runs import PROJECT_TRAINERS, assert_reports, build, run_args

from dassl_compat import TrainerX
from dpt_models.errors import UserError

BASE = ("DATASET.SUBSAMPLE_CLASSES", "base")  # 2 of the folder's 4 classes
NEW = ("DATASET.SUBSAMPLE_CLASSES", "new")  # the other 2


def state_dicts(trainer):
    return {name: trainer._models[name].state_dict() for name in trainer.get_model_names()}


def assert_holds(trainer, learned):
    """Every learned entry, except the class-dependent ones load_model drops (not used at inference)."""
    loaded = state_dicts(trainer)
    for name, state in learned.items():
        for key, value in state.items():
            assert trainer.is_class_dependent(key) or torch.equal(loaded[name][key], value), f"{name}.{key}"


def assert_resumes_to(run_train, args, output_dir, learned):
    """A run stopped (Ctrl-C) at the start of its second epoch and run again resumes from epoch 1 and ends
    with exactly the weights of the uninterrupted run (`learned`)."""
    def ctrl_c_in_the_second_epoch(trainer):
        if trainer.epoch == 1:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrainerX, "before_epoch", ctrl_c_in_the_second_epoch)
        with pytest.raises(KeyboardInterrupt):
            run_train(args)
    resumed = run_train(args)
    assert "Previous epoch: 1" in read_log(output_dir)
    for name, state in state_dicts(resumed).items():
        assert all(torch.equal(value, learned[name][key]) for key, value in state.items()), name


@pytest.mark.parametrize("trainer_name", PROJECT_TRAINERS)
def test_trains_counts_checkpoints_reloads_and_loads_on_other_classes(run_train, tmp_path, data_root,
                                                                      tiny_clip_file, trainer_name):
    def args(folder, extra=BASE):
        return run_args(trainer_name, data_root, tiny_clip_file, tmp_path / folder, extra=extra)

    fresh = build(trainer_name, data_root, tiny_clip_file, tmp_path / "fresh", extra=BASE)
    if not fresh.get_model_names():  # zero-shot CLIP
        assert not any(p.requires_grad for p in fresh.model.parameters())
        accuracy = run_train(["--eval-only"] + args("zero_shot"))
        assert_reports(accuracy, read_log(tmp_path / "zero_shot"), fresh)
        return

    trainer = run_train(args("train"))
    names = trainer.get_model_names()
    trained = {id(p) for name in names for p in trainer._models[name].parameters()}
    assert all(p.requires_grad == (id(p) in trained) for p in trainer.model.parameters())
    count = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    assert count > 0 and f"Trainable parameters: {count:,}" in read_log(tmp_path / "train")

    learned = state_dicts(trainer)
    for name in names:
        saved = torch.load(tmp_path / "train" / name / "model.pth.tar-2", weights_only=True)["state_dict"]
        assert saved.keys() == learned[name].keys()
        assert all(torch.equal(saved[key], value) for key, value in learned[name].items()), name
    assert any(not torch.equal(value, state_dicts(fresh)[name][key])  # training moved something
               for name in names for key, value in learned[name].items())

    if any(trainer._optims[name] is not None for name in names):  # trained by epochs (the linear probe is fitted)
        assert_resumes_to(run_train, args("resumed"), tmp_path / "resumed", learned)

    fresh.load_model(str(tmp_path / "train"), epoch=2)  # what train.py --eval-only does
    assert_holds(fresh, learned)
    accuracy = run_train(["--eval-only", "--model-dir", str(tmp_path / "train"), "--load-epoch", "2"] + args("eval"))
    assert accuracy == pytest.approx(trainer.test())

    init_weights = ("MODEL.INIT_WEIGHTS", str(tmp_path / "train" / names[0] / "model.pth.tar-2"))
    if len(names) == 1:  # CoOp's option: the weights of the one trained module
        assert_holds(build(trainer_name, data_root, tiny_clip_file, tmp_path / "init", extra=(*BASE, *init_weights)),
                     learned)
    else:
        with pytest.raises(UserError, match="MODEL.INIT_WEIGHTS .* loads the weights of one module"):
            build(trainer_name, data_root, tiny_clip_file, tmp_path / "init", extra=(*BASE, *init_weights))

    other = build(trainer_name, data_root, tiny_clip_file, tmp_path / "other", extra=NEW)
    other.load_model(str(tmp_path / "train"), epoch=2)
    assert_holds(other, learned)
    accuracy = run_train(["--eval-only", "--model-dir", str(tmp_path / "train"), "--load-epoch", "2"]
                         + args("new", extra=NEW))
    assert "* total: 8" in read_log(tmp_path / "new")  # the 2 new classes' test images
    assert_reports(accuracy, read_log(tmp_path / "new"), other)
