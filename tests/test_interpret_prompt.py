"""dpt-interpret (dpt_tools/interpret_prompt.py) and reading a run folder back (dpt_tools/run_folder.py)."""
import re
import shutil

import pytest
from conftest import folder_run_args

from dpt_models.errors import UserError
from dpt_tools import interpret_prompt
from dpt_tools.run_folder import checkpoint_files, load_run_config

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
