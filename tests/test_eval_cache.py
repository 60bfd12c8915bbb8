"""The learned text features are computed once per evaluation when the engine's own `test()` runs it
(set_model_mode switches the whole model, not only its registered modules), and afresh at the next
evaluation after training changed the prompts; frozen CLIP parts stay in eval mode throughout."""
import pytest
import torch
from conftest import folder_run_args

PREC_OPTS = {
    "CoOp": ("TRAINER.COOP.PREC", "fp32"),
    "VLP": ("TRAINER.VLP.PREC", "fp32"),
    "DPT": ("TRAINER.DPT.PREC", "fp32", "TRAINER.DPT.BOTTOMLIMIT", "2"),
}


def build_trainer_from_args(args):
    from dassl_compat import build_trainer
    from dpt_tools import train

    return build_trainer(train.setup_cfg(train.build_parser().parse_args(args)))


@pytest.mark.parametrize("trainer_name", list(PREC_OPTS))
def test_text_encoder_runs_once_per_evaluation_of_test(trainer_name, tmp_path, data_root, tiny_clip_file):
    # 8 test images in batches of 2: 4 evaluation batches; the val split is evaluated after every epoch.
    opts = (*PREC_OPTS[trainer_name], "DATALOADER.TEST.BATCH_SIZE", "2", "TEST.FINAL_MODEL", "best_val",
            "OPTIM.LR", "0.5")
    trainer = build_trainer_from_args(folder_run_args(data_root, tiny_clip_file, tmp_path, trainer=trainer_name,
                                                      epochs=2, extra=opts))
    model = trainer.model
    encodings = []  # (training?, EOT features) of every text-encoder call
    model.text_encoder.ln_final.register_forward_hook(
        lambda module, args, output: encodings.append((model.training, output.detach().clone())))
    per_evaluation = []
    test = trainer.test

    def counted_test(*args, **kwargs):
        start = len(encodings)
        result = test(*args, **kwargs)
        per_evaluation.append(encodings[start:])
        assert not model.image_encoder.training and not model.text_encoder.training
        return result

    trainer.test = counted_test
    trainer.train()  # 2 epochs, a val evaluation after each, then the test evaluation
    assert len(per_evaluation) == 3
    assert all(len(calls) == 1 and not calls[0][0] for calls in per_evaluation), \
        [len(calls) for calls in per_evaluation]
    after_epoch_0, after_epoch_1 = per_evaluation[0][0][1], per_evaluation[1][0][1]
    assert not torch.allclose(after_epoch_0, after_epoch_1), "the second evaluation must see the trained prompts"
    training_calls = [training for training, _ in encodings if training]
    assert len(training_calls) == 2 * trainer.num_batches  # one per training step, never cached
    trainer.set_model_mode("train")
    assert model.training and model.prompt_learner.training
    assert not model.image_encoder.training and not model.text_encoder.training  # frozen CLIP stays in eval
