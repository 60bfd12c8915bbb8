"""dpt-interpret (dpt_tools/interpret_prompt.py) and reading a run folder back (dpt_tools/run_folder.py),
its model included, without the dataset it was trained on."""
import re
import shutil
from pathlib import Path

import pytest
import torch
from conftest import folder_run_args
from PIL import Image

from dassl_compat import build_trainer, set_random_seed
from dpt_models.errors import UserError
from dpt_tools import interpret_prompt, visualize
from dpt_tools.run_folder import build_run_model, checkpoint_files, load_run_config

INIT_WORDS = "a photo of a"


@pytest.fixture
def frozen_context_run(run_train, tmp_path, data_root, tiny_clip_file):
    """A CoOp run whose context starts at the embeddings of INIT_WORDS and never moves (learning rate 0)."""
    out = tmp_path / "coop"
    extra = ("TRAINER.COOP.CTX_INIT", INIT_WORDS, "OPTIM.LR", "0.0", "OPTIM.WARMUP_EPOCH", "0")
    trainer = run_train(folder_run_args(data_root, tiny_clip_file, out, epochs=1, extra=extra))
    return out, trainer


def test_context_initialised_from_words_reads_back_as_those_words(frozen_context_run, capsys):
    out, _ = frozen_context_run
    assert interpret_prompt.main([str(out), "--topk", "3"]) == 0
    text = capsys.readouterr().out
    tables = text.strip().split("\n\n")
    assert len(tables) == len(INIT_WORDS.split())
    for position, (table, word) in enumerate(zip(tables, INIT_WORDS.split()), start=1):
        assert table.startswith(f"context position {position} ")
        ranks = re.findall(r"^\s+(\d)\s+(\S+)\s+([\d.]+)$", table, flags=re.M)
        assert [int(r) for r, _, _ in ranks] == [1, 2, 3]
        assert ranks[0][1] == word and float(ranks[0][2]) == 0.0
        assert float(ranks[1][2]) > 0.0


def test_the_recorded_or_logged_config_reads_back_as_the_runs_config(frozen_context_run, tmp_path):
    out, trainer = frozen_context_run
    assert load_run_config(str(out)).dump() == trainer.cfg.dump()  # from config.yaml
    only_log = tmp_path / "only_log"  # a folder of CoOp's train.py, or from before config.yaml
    only_log.mkdir()
    shutil.copy(out / "log.txt", only_log / "log.txt")
    assert load_run_config(str(only_log), output_dir=str(out)).dump() == trainer.cfg.dump()


def test_runs_without_text_context_or_checkpoint_are_clear_errors(run_train, frozen_context_run, tmp_path, data_root,
                                                                   tiny_clip_file, capsys):
    vpt = tmp_path / "vpt"
    run_train(folder_run_args(data_root, tiny_clip_file, vpt, trainer="VPT", epochs=1,
                              extra=("TRAINER.VPT.PREC", "fp32")))
    assert user_error_status(interpret_prompt.main, [str(vpt)]) == 2
    assert "no learned text context" in capsys.readouterr().err

    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(frozen_context_run[0] / "log.txt", no_checkpoint / "log.txt")
    assert user_error_status(interpret_prompt.main, [str(no_checkpoint)]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    with pytest.raises(UserError, match="is not a train.py run folder"):
        load_run_config(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="holds no checkpoint"):
        checkpoint_files(str(tmp_path / "nowhere"))


def user_error_status(main, argv):
    """The exit status of main(argv) when it reports a bad input (a ReportedUserError is a SystemExit)."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return exited.value.code


@pytest.fixture
def dpt_run(run_train, tmp_path, data_root, tiny_clip_file):
    """(run folder, its data folder, trainer) of a short DPT run trained on its own copy of the data."""
    data = tmp_path / "data"
    shutil.copytree(data_root, data)
    out = tmp_path / "dpt"
    extra = ("TRAINER.DPT.PREC", "fp32", "TRAINER.DPT.BOTTOMLIMIT", "2", "OPTIM.LR", "0.01")
    trainer = run_train(folder_run_args(str(data), tiny_clip_file, out, trainer="DPT", epochs=1, extra=extra))
    trainer.set_model_mode("eval")
    return out, data, trainer


def image_batch(trainer, data):
    """The test loader's transform of four of the data's test images: [4, 3, 32, 32]."""
    paths = sorted(Path(data).glob("colours/test/*/*.png"))[:4]
    return torch.stack([trainer.test_loader.dataset.transform(Image.open(path).convert("RGB")) for path in paths])


@torch.no_grad()
def test_a_run_rebuilds_from_its_folder_after_its_dataset_moved(dpt_run, tmp_path, capsys):
    out, data, trainer = dpt_run
    images = image_batch(trainer, data)
    trained_logits = trainer.model(images)["logits"]
    set_random_seed(1)  # the run's initialisation: a trainer built as train.py builds it, before training
    initial = build_trainer(load_run_config(str(out))).model.state_dict()
    moved = tmp_path / "moved"
    shutil.move(data, moved)

    run = build_run_model(str(out))
    assert run.classnames == list(trainer.dm.dataset.classnames)  # from the checkpoints
    assert torch.equal(run.model(images)["logits"], trained_logits)
    untrained = build_run_model(str(out), trained=False)
    assert untrained.model.state_dict().keys() == initial.keys()
    for key, value in untrained.model.state_dict().items():
        assert torch.equal(value, initial[key]), key
    assert not torch.equal(untrained.model(images)["logits"], trained_logits)

    assert interpret_prompt.main([str(out), "--topk", "2"]) == 0
    image = sorted(moved.glob("colours/test/*/*.png"))[0]
    assert visualize.main([str(out), "--out", str(tmp_path / "figures"), "--images", str(image)]) == 0
    assert (tmp_path / "figures" / "grid.png").is_file()
    capsys.readouterr()
    assert user_error_status(visualize.main, [str(out), "--out", str(tmp_path / "figures")]) == 2
    assert str(data) in capsys.readouterr().err  # --split images need the dataset: its folder is named


def test_checkpoints_without_class_names_read_them_from_the_dataset(dpt_run, capsys):
    out, data, trainer = dpt_run
    images = image_batch(trainer, data)
    for path in checkpoint_files(str(out)).values():  # as CoOp's or Dassl's checkpoints: no meta
        checkpoint = torch.load(path, weights_only=True)
        del checkpoint["meta"]
        torch.save(checkpoint, path)
    capsys.readouterr()
    run = build_run_model(str(out), quiet=False)
    assert "the checkpoints record no class names" in capsys.readouterr().out
    assert run.classnames == list(trainer.dm.dataset.classnames)
    with torch.no_grad():
        assert torch.equal(run.model(images)["logits"], trainer.model(images)["logits"])
