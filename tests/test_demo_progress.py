"""The demo shows each run's progress in one console line that updates in place (epoch, loss, time left)."""
import re

from dpt_tools import demo


def test_demo_progress_is_one_updating_line_per_run(tmp_path, capsys):
    argv = ["--data", str(tmp_path / "data"), "--output", str(tmp_path / "output"), "--shots", "1",
            "--trainers", "CoOp"]
    assert demo.main(argv) == 0
    printed = capsys.readouterr().out
    run_line = printed.split("\n")[0]
    updates = run_line.split("\r")
    shown = [m.groups() for m in (re.search(r"epoch (\d+)/(\d+) batch 1/1  loss [\d.]+  \d+:\d\d:\d\d left", update)
                                  for update in updates) if m]
    max_epoch = int(shown[0][1])  # every epoch shown, in place on the same line
    assert max_epoch > 1 and shown == [(str(e), str(max_epoch)) for e in range(1, max_epoch + 1)]
    assert "evaluating" in run_line and "Epoch" not in printed and "=> result" not in printed
    assert re.search(r"\r\s*\r +CoOp  toy_fog 1-shot seed 1: [\d.]+%  \(\d+ s; ", run_line)
