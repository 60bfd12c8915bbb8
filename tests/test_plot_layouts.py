"""dpt-plot groups runs by trainer and config across the demo's and the scripts' folder layouts, draws one
line per group with a std band over seeds, and its legend says what each line is."""
from pathlib import Path

import pytest

from dpt_tools import plot_results

VARIANT = "nctx16_cscFalse_ctpend"


def write_result(run_dir: Path, accuracy: float) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "log.txt").write_text(f"=> result\n* total: 800\n* correct: 1\n* accuracy: {accuracy:.1f}%\n")


def test_demo_and_script_runs_of_one_trainer_make_one_line(tmp_path):
    output = tmp_path / "output"
    write_result(output / "demo" / "toy_fog" / "CoOp" / "toy_16shots" / "seed1", 70.0)  # the demo's layout
    write_result(output / "demo" / "toy_fog" / "ZeroshotCLIP" / "toy" / "seed1", 55.0)
    for shots, seed, accuracy in ((16, 2, 74.0), (4, 1, 60.0), (4, 2, 64.0)):  # the scripts' layout
        write_result(output / "toy_fog" / "CoOp" / f"toy_{shots}shots" / VARIANT / f"seed{seed}", accuracy)

    figure, axes = plot_results.few_shot_figure(output)
    (ax,) = axes.values()
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["CoOp · toy · 2 seeds", "ZeroshotCLIP · toy · 1 seed"]
    coop = lines["CoOp · toy · 2 seeds"]
    assert list(coop.get_xdata()) == [4, 16]
    assert list(coop.get_ydata()) == pytest.approx([62.0, 72.0])  # seeds 1 and 2 from both layouts
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(60.0) and band.max() == pytest.approx(74.0)  # mean ± population std
    legend = ax.get_legend()
    assert "mean over seeds" in legend.get_title().get_text() and "± std" in legend.get_title().get_text()


def test_several_variants_stay_separate_lines_named_by_variant(tmp_path):
    output = tmp_path / "output"
    for variant, accuracy in ((VARIANT, 70.0), ("nctx4_cscFalse_ctpend", 66.0)):
        write_result(output / "toy_fog" / "CoOp" / "toy_16shots" / variant / "seed1", accuracy)
    write_result(output / "demo" / "toy_fog" / "CoOp" / "toy_16shots" / "seed1", 68.0)

    _, axes = plot_results.few_shot_figure(output)
    labels = sorted(line.get_label() for line in next(iter(axes.values())).get_lines())
    assert labels == ["CoOp · toy · nctx16_cscFalse_ctpend · 1 seed", "CoOp · toy · nctx4_cscFalse_ctpend · 1 seed",
                      "CoOp · toy · no variant · 1 seed"]
