"""PromptSRC's Gaussian prompt aggregation (GPA) through train.py: the saved and tested parameters are
the Gaussian-weighted average of every epoch's parameters, and a run resumed from an earlier epoch
ends with the same average (the running sum is part of the resumable state)."""
import glob
import os
import shutil

import torch
from trainer_runs import run_args

from dpt_models.promptsrc import PromptAggregate, gaussian_epoch_weights

EPOCHS = 3
GPA = ("OPTIM.MAX_EPOCH", str(EPOCHS), "TRAINER.PROMPTSRC.GPA_MEAN", "2", "TRAINER.PROMPTSRC.GPA_STD", "1")


def trained(trainer):
    return {name: param.detach().clone() for name, param in trainer.trained_parameters().items()}


def test_gpa_average_is_saved_tested_and_survives_resume(run_train, tmp_path, data_root, tiny_clip_file, monkeypatch):
    per_epoch = []  # each epoch's parameters, as GPA receives them
    add = PromptAggregate.add

    def recording_add(self, epoch, parameters):
        per_epoch.append({name: value.detach().clone() for name, value in parameters.items()})
        add(self, epoch, parameters)

    monkeypatch.setattr(PromptAggregate, "add", recording_add)
    folder = tmp_path / "full"
    trainer = run_train(run_args("PromptSRC", data_root, tiny_clip_file, folder, epochs=EPOCHS, extra=GPA))
    weights = gaussian_epoch_weights(EPOCHS, 2, 1)
    assert weights[1] > weights[0] == weights[2] and abs(sum(weights) - 1) < 1e-12
    final = trained(trainer)
    assert len(per_epoch) == EPOCHS
    for name, value in final.items():
        expected = sum((epoch[name] * weight for epoch, weight in zip(per_epoch[1:], weights[1:])),
                       per_epoch[0][name] * weights[0])
        torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(value, per_epoch[-1][name])  # the average, not the last epoch's parameters
    for module in trainer.get_model_names():  # the checkpoint of the last epoch holds the average
        saved = torch.load(folder / module / f"model.pth.tar-{EPOCHS}", weights_only=True)["state_dict"]
        for key, value in saved.items():
            if f"{module}.{key}" in final:
                assert torch.equal(value, final[f"{module}.{key}"])

    resumed = tmp_path / "resumed"  # the same run, interrupted after epoch 2 and started again
    shutil.copytree(folder, resumed)
    for path in glob.glob(str(resumed / "**" / f"*-{EPOCHS}"), recursive=True):
        os.remove(path)
    for pointer in glob.glob(str(resumed / "*" / "checkpoint")):
        with open(pointer, "w") as file:
            file.write(f"model.pth.tar-{EPOCHS - 1}\n")
    trainer = run_train(run_args("PromptSRC", data_root, tiny_clip_file, resumed, epochs=EPOCHS, extra=GPA))
    for name, value in trained(trainer).items():
        assert torch.equal(value, final[name]), name
