"""Tests of ``dpt-results`` and ``dpt-plot`` on output trees written here, in the layouts train.py produces."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path

import pytest

from dpt_tools import parse_results, plot_results
from dpt_tools.results_common import (
    FEW_SHOT_BENCHMARKS,
    accuracy_from_log_text,
    dataset_display_name,
    run_accuracy,
)

# Config stems of the 11 benchmarks, in the order of FEW_SHOT_BENCHMARKS.
BENCHMARK_STEMS = (
    "imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101",
)
VARIANT = "nctx16_cscFalse_ctpend"


def result_block(accuracy: float, decimals: int = 1, total: int = 3669) -> str:
    correct = round(total * accuracy / 100)
    return (
        "=> result\n"
        f"* total: {total:,}\n"
        f"* correct: {correct:,}\n"
        f"* accuracy: {accuracy:.{decimals}f}%\n"
        f"* error: {100 - accuracy:.{decimals}f}%\n"
        f"* macro_f1: {accuracy - 0.2:.{decimals}f}%\n"
    )


def training_log(test_accuracy: float | None, decimals: int = 1, val_accuracy: float | None = None) -> str:
    """A log as train.py writes it: setup, epochs, optional val result, then the final test result."""
    text = (
        "Setting fixed seed: 1\n"
        "***************\n** Arguments **\n***************\n"
        "Loading trainer: DPT\nLoading dataset: OxfordPets\n"
        "epoch [1/5] batch [5/5] time 0.101 (0.220) data 0.000 (0.050) loss 1.2345 (1.5000) acc 50.0000 "
        "(45.0000) lr 2.0000e-03 eta 0:00:02\n"
    )
    if val_accuracy is not None:
        text += "Evaluate on the *val* set\n" + result_block(val_accuracy, decimals, total=148)
    if test_accuracy is not None:
        text += "Finish training\nDeploy the last-epoch model\nEvaluate on the *test* set\n"
        text += result_block(test_accuracy, decimals) + "Elapsed: 0:01:02\n"
    return text


def write_run(run_dir: Path, accuracy: float | None, log_name: str = "log.txt", **log_options) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / log_name).write_text(training_log(accuracy, **log_options), encoding="utf-8")
    return run_dir


def few_shot_dir(root: Path, dataset: str, trainer: str, shots: int, seed: int, config: str = "vit_b16") -> Path:
    return root / dataset / trainer / f"{config}_{shots}shots" / VARIANT / f"seed{seed}"


def run_cli(module, argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = module.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def json_rows(argv: list[str], capsys) -> list[dict]:
    code, out, _ = run_cli(parse_results, [*argv, "--format", "json"], capsys)
    assert code == 0
    return json.loads(out)["rows"]


# ---------------------------------------------------------------- log parsing


@pytest.mark.parametrize("decimals", [1, 2])
def test_accuracy_line_with_one_or_two_decimals(decimals):
    assert accuracy_from_log_text(training_log(71.26, decimals)) == round(71.26, decimals)


def test_last_result_block_wins_over_val_result():
    assert accuracy_from_log_text(training_log(88.4, val_accuracy=91.9)) == 88.4


def test_log_without_result_or_with_a_truncated_last_block():
    assert accuracy_from_log_text(training_log(None)) is None
    truncated = training_log(None, val_accuracy=91.9) + "Evaluate on the *test* set\n=> result\n* total: 3,669\n"
    assert accuracy_from_log_text(truncated) is None


def test_newest_log_with_a_result_is_used(tmp_path):
    run_dir = write_run(tmp_path / "seed1", 60.0)
    write_run(run_dir, 70.5, log_name="log.txt-2024-05-01-10-00-00")
    write_run(run_dir, None, log_name="log.txt-2024-06-01-09-30-00")  # a re-run that crashed before testing
    (run_dir / "log.txt.bak").write_text(training_log(99.0))  # not a Dassl log name
    assert run_accuracy(run_dir) == 70.5


def test_runs_within_one_second_keep_one_log_each_and_the_last_one_is_read(tmp_path, monkeypatch):
    """dpt_runs.run_log under either engine: a third run started in the second of the second one does not
    truncate its log (Dassl's logger would), and the results read the newest log first."""
    import sys

    from dpt_runs.run_log import setup_logger

    monkeypatch.setattr("time.strftime", lambda pattern: "-2026-12-03-03-11-29")
    console = sys.stdout
    try:
        for accuracy in (60.0, 70.5, None, 80.5):  # the third run crashed before testing
            setup_logger(str(tmp_path))
            print(training_log(accuracy), end="")
    finally:
        sys.stdout.close()
        sys.stdout = console
    logs = sorted(path.name for path in tmp_path.iterdir())
    assert logs == ["log.txt", "log.txt-2026-12-03-03-11-29", "log.txt-2026-12-03-03-11-29-1",
                    "log.txt-2026-12-03-03-11-29-2"]
    assert run_accuracy(tmp_path) == 80.5
    (tmp_path / "log.txt-2026-12-03-03-11-29-2").unlink()
    assert run_accuracy(tmp_path) == 70.5


@pytest.mark.parametrize(
    ("folder_name", "display"),
    [("oxford_flowers", "Flowers102"), ("OxfordFlowers", "Flowers102"), ("dtd", "DTD"),
     ("DescribableTextures", "DTD"), ("imagenet_sketch", "ImageNet-Sketch"), ("ImageNetSketch", "ImageNet-Sketch"),
     ("ImageNetA", "ImageNet-A"), ("imagenetv2", "ImageNetV2"), ("fgvc_aircraft", "FGVCAircraft"), ("toy", "toy")],
)
def test_dataset_names_are_normalised(folder_name, display):
    assert dataset_display_name(folder_name) == display


# ---------------------------------------------------------------- few-shot tables

COOP_ACCURACIES = {stem: (60.0 + index, 61.5 + index, 62.25 + index) for index, stem in enumerate(BENCHMARK_STEMS)}


@pytest.fixture
def few_shot_root(tmp_path) -> Path:
    """CoOp: all 11 datasets x 3 seeds. DPT: EuroSAT missing, seed 3 missing on DTD (folder without result)."""
    root = tmp_path / "output"
    for stem, accuracies in COOP_ACCURACIES.items():
        for seed, accuracy in enumerate(accuracies, start=1):
            write_run(few_shot_dir(root, stem, "CoOp", 16, seed), accuracy, decimals=2)
            if stem == "eurosat":
                continue
            dpt_accuracy = None if (stem == "dtd" and seed == 3) else accuracy + 2.0
            write_run(few_shot_dir(root, stem, "DPT", 16, seed), dpt_accuracy, decimals=2)
    return root


def test_few_shot_means_stds_and_seed_counts(few_shot_root, capsys):
    rows = {row["trainer"]: row for row in json_rows(["few-shot", str(few_shot_root)], capsys)}
    coop, dpt = rows["CoOp"], rows["DPT"]
    assert list(coop["datasets"]) == list(FEW_SHOT_BENCHMARKS)
    pets = coop["datasets"]["OxfordPets"]
    assert pets["mean"] == pytest.approx((62.0 + 63.5 + 64.25) / 3)
    expected_std = math.sqrt(sum((x - pets["mean"]) ** 2 for x in (62.0, 63.5, 64.25)) / 3)  # population std
    assert pets["std"] == pytest.approx(expected_std)
    assert (pets["n"], pets["seeds"]) == (3, [1, 2, 3])
    assert coop["seeds"] == [1, 2, 3] and coop["shots"] == 16 and coop["variant"] == VARIANT
    assert dpt["datasets"]["DTD"]["n"] == 2
    assert dpt["datasets"]["DTD"]["mean"] == pytest.approx((68.0 + 2 + 69.5 + 2) / 2)
    assert dpt["datasets"]["EuroSAT"] == {"mean": None, "std": None, "n": 0, "seeds": []}


def test_eleven_dataset_average_only_for_complete_rows(few_shot_root, capsys):
    rows = {row["trainer"]: row for row in json_rows(["few-shot", str(few_shot_root)], capsys)}
    coop_means = [statistics.fmean(accuracies) for accuracies in COOP_ACCURACIES.values()]
    assert rows["CoOp"]["average"] == {"mean": pytest.approx(statistics.fmean(coop_means)), "datasets": 11,
                                       "complete": True}
    assert rows["DPT"]["average"]["complete"] is False and rows["DPT"]["average"]["datasets"] == 10


def test_few_shot_markdown_shows_missing_not_zero(few_shot_root, capsys):
    code, out, _ = run_cli(parse_results, ["few-shot", str(few_shot_root)], capsys)
    assert code == 0
    table = [line for line in out.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header[:4] == ["Trainer", "Config", "Shots", "Variant"] and header[-2:] == ["Average (11)", "Seeds"]
    dpt = dict(zip(header, (cell.strip() for cell in table[3].strip("|").split("|"))))
    coop = dict(zip(header, (cell.strip() for cell in table[2].strip("|").split("|"))))
    assert dpt["Trainer"] == "DPT" and dpt["EuroSAT"] == "–" and dpt["Seeds"] == "3"
    assert dpt["DTD"] == "70.75 ± 0.75 (2/3)"
    assert dpt["Average (11)"].endswith("* (10/11)")
    assert coop["OxfordPets"] == f"{(62.0 + 63.5 + 64.25) / 3:.2f} ± {statistics.pstdev([62.0, 63.5, 64.25]):.2f}"
    assert "0.00 ± 0.00" not in out
    assert "1 run folder(s) without a result" in out


def test_csv_and_json_outputs_parse_back(few_shot_root, tmp_path, capsys):
    csv_file, json_file = tmp_path / "table.csv", tmp_path / "table.json"
    base = ["few-shot", str(few_shot_root), "--output"]
    assert parse_results.main([*base, str(csv_file), "--format", "csv"]) == 0
    assert parse_results.main([*base, str(json_file), "--format", "json"]) == 0
    rows = {row["trainer"]: row for row in csv.DictReader(io.StringIO(csv_file.read_text(encoding="utf-8")))}
    document = json.loads(json_file.read_text(encoding="utf-8"))
    assert document["mode"] == "few-shot" and "population" in document["std"]
    by_trainer = {row["trainer"]: row for row in document["rows"]}
    sun397 = by_trainer["CoOp"]["datasets"]["SUN397"]
    assert float(rows["CoOp"]["datasets.SUN397.mean"]) == pytest.approx(sun397["mean"])
    assert float(rows["CoOp"]["average.mean"]) == pytest.approx(by_trainer["CoOp"]["average"]["mean"])
    assert rows["DPT"]["datasets.EuroSAT.mean"] == "" and rows["DPT"]["datasets.EuroSAT.n"] == "0"
    assert rows["DPT"]["datasets.DTD.seeds"] == "1 2"
    assert document["runs_without_result"] == [str(Path("dtd/DPT/vit_b16_16shots") / VARIANT / "seed3")]


def test_filters_by_trainer_dataset_and_shots(few_shot_root, capsys):
    write_run(few_shot_dir(few_shot_root, "dtd", "CoOp", 4, 1), 50.0)
    rows = json_rows(["few-shot", str(few_shot_root), "--trainer", "coop", "--dataset", "DescribableTextures",
                      "--dataset", "oxford_pets"], capsys)
    assert [(row["trainer"], row["shots"]) for row in rows] == [("CoOp", 4), ("CoOp", 16)]
    assert list(rows[1]["datasets"]) == ["OxfordPets", "DTD"]
    assert rows[0]["datasets"]["OxfordPets"]["n"] == 0
    assert rows[1]["average"]["complete"] is False
    assert [row["shots"] for row in json_rows(["few-shot", str(few_shot_root), "--shots", "4"], capsys)] == [4]


def test_zero_shot_runs_without_a_shots_folder(tmp_path, capsys):
    root = tmp_path / "output"
    write_run(root / "caltech101" / "ZeroshotCLIP" / "vit_b16" / "seed1", 86.3)
    write_run(root / "ZeroshotCLIP" / "vit_b16" / "oxford_pets", 85.8)  # CoOp's zeroshot.sh layout, no seed
    write_run(few_shot_dir(root, "caltech101", "CoOp", 1, 1), 87.5)
    rows = json_rows(["few-shot", str(root)], capsys)
    assert [(row["trainer"], row["shots"]) for row in rows] == [("ZeroshotCLIP", 0), ("CoOp", 1)]
    assert rows[0]["datasets"]["Caltech101"]["mean"] == 86.3
    assert rows[0]["datasets"]["OxfordPets"] == {"mean": 85.8, "std": 0.0, "n": 1, "seeds": [None]}
    code, out, _ = run_cli(parse_results, ["few-shot", str(root)], capsys)
    assert code == 0 and "| ZeroshotCLIP | vit_b16 | zs |" in out


def test_runs_are_read_by_their_anchors_below_any_folder(tmp_path, capsys):
    """Runs one or two folders deeper (the demo's output/demo/..., an experiment folder) read as at the
    top; a dataset name the tools do not know (toy_fog) reads in every layout, CoOp's zero-shot one too."""
    root = tmp_path / "output"
    write_run(few_shot_dir(root, "toy_fog", "DPT", 4, 1, config="toy"), 70.0)
    write_run(few_shot_dir(root / "demo", "toy_fog", "DPT", 4, 2, config="toy"), 74.0)
    write_run(root / "demo" / "toy_fog" / "ZeroshotCLIP" / "toy" / "seed1", 55.0)
    write_run(root / "sweep" / "ZeroshotCLIP" / "toy" / "toy_dusk", 38.1)  # CoOp's zeroshot.sh layout
    rows = json_rows(["few-shot", str(root)], capsys)
    assert [(row["trainer"], row["config"], row["shots"]) for row in rows] == [("ZeroshotCLIP", "toy", 0),
                                                                               ("DPT", "toy", 4)]
    assert rows[0]["datasets"]["toy_fog"]["mean"] == 55.0 and rows[0]["datasets"]["toy_dusk"]["mean"] == 38.1
    assert rows[1]["datasets"]["toy_fog"] == {"mean": 72.0, "std": 2.0, "n": 2, "seeds": [1, 2]}


# ---------------------------------------------------------------- base-to-new

BASE2NEW = {"oxford_pets": ((80.0, 82.0), (60.0, 62.0)), "DescribableTextures": ((70.0, 70.0), (75.0, 74.0))}


@pytest.fixture
def base2new_root(tmp_path) -> Path:
    root = tmp_path / "output"
    for dataset, (base_accuracies, new_accuracies) in BASE2NEW.items():
        for seed, (base, new) in enumerate(zip(base_accuracies, new_accuracies), start=1):
            tail = Path(dataset) / "shots_16" / "DPT" / "vit_b16_c4_ep10" / f"seed{seed}"
            write_run(root / "base2new" / "train_base" / tail, base, val_accuracy=99.0)
            write_run(root / "base2new" / "test_new" / tail, new, decimals=2)
    return root


def test_base2new_harmonic_mean_and_averages(base2new_root, capsys):
    rows = json_rows(["base2new", str(base2new_root)], capsys)
    assert [row["dataset"] for row in rows] == ["Average", "OxfordPets", "DTD"]
    average, pets, dtd = rows
    # Hand computation: pets base 81, new 61; DTD base 70, new 74.5.
    assert (pets["base"]["mean"], pets["new"]["mean"]) == (81.0, 61.0)
    assert pets["hm"] == pytest.approx(2 * 81 * 61 / (81 + 61))  # 69.591...
    assert dtd["hm"] == pytest.approx(2 * 70 * 74.5 / (70 + 74.5))  # 72.180...
    assert pets["base"]["std"] == pytest.approx(1.0) and pets["new"]["n"] == 2
    assert average["base"]["mean"] == pytest.approx(75.5) and average["new"]["mean"] == pytest.approx(67.75)
    assert average["hm"] == pytest.approx(2 * 75.5 * 67.75 / (75.5 + 67.75))  # H of the averages: 71.416...
    assert average["hm"] != pytest.approx((pets["hm"] + dtd["hm"]) / 2)
    assert (average["datasets_averaged"], average["complete"]) == (2, False)
    code, out, _ = run_cli(parse_results, ["base2new", str(base2new_root)], capsys)
    assert code == 0
    assert "| Average* (2/11) | DPT | vit_b16_c4_ep10 | 16 | 75.50 | 67.75 | 71.42 | 2 |" in out
    assert "| OxfordPets | DPT | vit_b16_c4_ep10 | 16 | 81.00 ± 1.00 | 61.00 ± 1.00 | 69.59 | 2 |" in out


def test_base2new_missing_new_phase_is_missing(base2new_root, capsys):
    write_run(base2new_root / "base2new" / "train_base" / "eurosat" / "shots_16" / "DPT" / "vit_b16_c4_ep10" / "seed1",
              90.0)
    rows = {row["dataset"]: row for row in json_rows(["base2new", str(base2new_root)], capsys)}
    assert rows["EuroSAT"]["new"]["n"] == 0 and rows["EuroSAT"]["hm"] is None
    assert rows["Average"]["datasets_averaged"] == 2  # EuroSAT has no new result: left out of the average


# ---------------------------------------------------------------- cross-dataset / domain generalisation


def test_cross_dataset_and_domain_generalisation(tmp_path, capsys):
    root = tmp_path / "output"
    for seed, accuracy in ((1, 71.0), (2, 72.0)):
        write_run(few_shot_dir(root, "imagenet", "DPT", 16, seed), accuracy)
        for target, offset in (("caltech101", 22.0), ("DescribableTextures", -25.0), ("imagenetv2", -7.0),
                               ("imagenet_a", -20.0)):
            write_run(root / "evaluation" / "DPT" / "vit_b16_16shots" / VARIANT / target / f"seed{seed}",
                      accuracy + offset)
    write_run(root / "evaluation" / "DPT" / "vit_b16_16shots" / VARIANT / "imagenet" / "seed1", 10.0)
    rows = json_rows(["xd", str(root)], capsys)
    assert len(rows) == 1
    row = rows[0]
    assert row["datasets"]["ImageNet"]["mean"] == pytest.approx(71.5)  # the few-shot source run, not evaluation/
    assert list(row["datasets"]) == ["ImageNet", "Caltech101", "DTD", "ImageNetV2", "ImageNet-A"]
    assert row["target_average"] == {"mean": pytest.approx((93.5 + 46.5) / 2), "datasets": 2, "complete": False}
    assert row["dg_average"] == {"mean": pytest.approx((64.5 + 51.5) / 2), "datasets": 2, "complete": False}
    code, out, _ = run_cli(parse_results, ["xd", str(root)], capsys)
    assert code == 0
    header = next(line for line in out.splitlines() if line.startswith("| Trainer"))
    assert [cell.strip() for cell in header.strip("|").split("|")][4:] == [
        "ImageNet (source)", "Caltech101", "DTD", "Target avg (10)", "ImageNetV2", "ImageNet-A", "DG avg (4)", "Seeds"]
    assert "| 70.00* (2/10) |" in out and "| 58.00* (2/4) |" in out


# ---------------------------------------------------------------- errors


def test_bad_roots_exit_non_zero_with_a_message(tmp_path, capsys):
    code, _, err = run_cli(parse_results, ["few-shot", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = run_cli(parse_results, ["base2new", str(tmp_path)], capsys)
    assert code == 2 and "no base-to-new run folders" in err
    write_run(few_shot_dir(tmp_path, "dtd", "DPT", 16, 1), None)
    code, _, err = run_cli(parse_results, ["few-shot", str(tmp_path)], capsys)
    assert code == 2 and "none has a result yet" in err
    single_run = write_run(tmp_path / "single_run", 50.0)  # a run folder is not an output tree
    code, _, err = run_cli(parse_results, ["few-shot", str(single_run)], capsys)
    assert code == 2 and "no few-shot run folders" in err
    code, _, err = run_cli(plot_results, [str(tmp_path / "nowhere"), "--output", str(tmp_path / "x.png")], capsys)
    assert code == 2 and "does not exist" in err and not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- plot


@pytest.fixture
def plot_root(tmp_path) -> Path:
    root = tmp_path / "output"
    for dataset_index, stem in enumerate(("caltech101", "oxford_pets")):
        for trainer, gain in (("CoOp", 1.0), ("DPT", 1.5)):
            for shots in (1, 2, 4, 8, 16):
                for seed in (1, 2, 3):
                    accuracy = 60 + dataset_index + gain * math.log2(shots) * 3 + seed * 0.1
                    write_run(few_shot_dir(root, stem, trainer, shots, seed), accuracy)
        write_run(root / stem / "ZeroshotCLIP" / "vit_b16" / "seed1", 58.0 + dataset_index)
    return root


def test_plot_draws_one_line_per_trainer_per_panel(plot_root):
    figure, axes = plot_results.few_shot_figure(plot_root)
    assert list(axes) == ["Caltech101", "OxfordPets", "Average"]
    for title, ax in axes.items():
        labels = [line.get_label().split(" · ")[0] for line in ax.get_lines()]  # trainer · config · seeds
        assert sorted(labels) == ["CoOp", "DPT", "ZeroshotCLIP"], title
        assert ax.get_xscale() == "log"
    dpt_line = next(line for line in axes["OxfordPets"].get_lines() if line.get_label().startswith("DPT ·"))
    assert list(dpt_line.get_xdata()) == [1, 2, 4, 8, 16]
    assert dpt_line.get_ydata()[0] == pytest.approx(61.2)  # mean of 61.1, 61.2, 61.3
    average = next(line for line in axes["Average"].get_lines() if line.get_label().startswith("CoOp ·"))
    assert average.get_ydata()[-1] == pytest.approx(60.5 + 12 + 0.2)
    zero_shot = next(line for line in axes["Average"].get_lines() if line.get_label().startswith("ZeroshotCLIP ·"))
    assert list(zero_shot.get_ydata()) == [58.5, 58.5]
    assert len(figure.axes) == 3


def test_plot_cli_writes_a_png(plot_root, tmp_path, capsys):
    from matplotlib.image import imread

    output = tmp_path / "fig.png"
    code, out, _ = run_cli(plot_results, [str(plot_root), "--output", str(output), "--trainer", "DPT",
                                          "--dpi", "50"], capsys)
    assert code == 0 and str(output) in out
    image = imread(output)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50


def test_every_registered_trainer_gets_its_own_row_and_its_own_line_in_the_papers_order(tmp_path, capsys):
    import trainers  # noqa: F401  (registers the methods)
    from dassl_compat import TRAINER_REGISTRY

    names = sorted(TRAINER_REGISTRY.registered_names())
    assert {"MaPLe", "IVLP", "PromptSRC", "KgCoOp", "ProGrad"} <= set(names)
    root = tmp_path / "output"
    for index, trainer in enumerate(names):
        for shots in (4, 16):
            write_run(few_shot_dir(root, "caltech101", trainer, shots, 1), 50.0 + index + shots)

    rows = [row["trainer"] for row in json_rows(["few-shot", str(root), "--shots", "16"], capsys)]
    assert sorted(rows) == names
    papers = ["CoOp", "CoCoOp", "VPT", "VLP", "DPT", "ProGrad", "KgCoOp", "MaPLe", "IVLP", "PromptSRC"]
    assert [row for row in rows if row in papers] == papers
    others = [name for name in names if name not in papers and not name.startswith("Zeroshot")]  # LinearProbe
    assert others and rows.index("PromptSRC") < min(rows.index(name) for name in others)

    _, axes = plot_results.few_shot_figure(root)
    lines = axes["Caltech101"].get_lines()
    assert sorted(line.get_label().split(" · ")[0] for line in lines) == names
    styles = {(line.get_color(), line.get_marker()) for line in lines}
    assert len(names) > 10 and len(styles) == len(names)  # more series than colours: the marker tells them apart
