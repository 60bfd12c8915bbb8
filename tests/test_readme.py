"""The README stays true: its "Add your own method" example runs through train.py as shown."""
import os.path as osp
import re

from conftest import ROOT, folder_run_args


def readme_block(marker):
    """The fenced code block of README.md whose first line is `marker`."""
    text = open(osp.join(ROOT, "README.md")).read()
    for block in re.findall(r"```(?:python|bash)\n(.*?)```", text, flags=re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"README.md has no code block starting with {marker!r}")


def test_add_your_own_method_example_runs_as_a_plugin(run_train, tmp_path, data_root, tiny_clip_file):
    plugin = tmp_path / "my_dpt.py"
    plugin.write_text(readme_block("# my_dpt.py"))
    command = readme_block("python train.py --plugin")
    assert "--plugin my_dpt.py --trainer DPTAllPrompts" in command
    out = tmp_path / "out"
    opts = ("TRAINER.DPT.PREC", "fp32", "TRAINER.DPT.BOTTOMLIMIT", "2")
    args = folder_run_args(data_root, tiny_clip_file, out, trainer="DPTAllPrompts", epochs=1, extra=opts)
    trainer = run_train(["--plugin", str(plugin)] + args)
    assert type(trainer).__name__ == "DPTAllPrompts"
    log = open(out / "log.txt").read()
    # batches of 8 images x K = 4 selected classes x 1 class-aware block: every prompt is kept
    assert "aux_rows_kept 32.0000" in log and "* accuracy:" in log
