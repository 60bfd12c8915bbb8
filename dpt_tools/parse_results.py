"""``dpt-results``: paper-style tables from Dassl/CoOp output folders (few-shot, base-to-new, cross-dataset / DG).

Every accuracy is the ``mean ± std`` over seeds of the newest result in each seed folder's ``log.txt``; std is the
population standard deviation (``numpy.std``, ``ddof=0``), as in CoOp's ``parse_test_res.py``. A dataset or seed
without a result is shown as missing ("–", or "(k/n)" seeds), never as 0.

Averages over datasets are means of the per-dataset seed means:
- few-shot: over the 11 benchmarks; a row missing some shows the mean over the present ones as ``x* (k/11)``;
- base-to-new: mean base, mean new (over the datasets having both) and H = 2·b·n/(b+n) of those two means,
  as reported by CoCoOp; per dataset, H of the seed-mean base and new;
- cross-dataset: the 10 targets (ImageNet is the source) and the 4 ImageNet variants (domain generalisation).

Examples::

    dpt-results few-shot output
    dpt-results few-shot output --trainer DPT --trainer CoOp --shots 16 --format csv --output fewshot.csv
    dpt-results base2new output --format json
    dpt-results xd output --dataset imagenetv2 --dataset imagenet_sketch
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from dpt_models.errors import add_debug_argument, exit_on_user_error
from dpt_tools.results_common import (
    CROSS_DATASET_SOURCE,
    CROSS_DATASET_TARGETS,
    DOMAIN_GENERALIZATION_TARGETS,
    EMPTY_AVERAGE_RECORD,
    FEW_SHOT_BENCHMARKS,
    KEEP_ALL,
    Average,
    RunFilter,
    RunResult,
    SeedStats,
    add_filter_arguments,
    average_over,
    collect_base2new,
    collect_evaluation,
    collect_few_shot,
    dataset_sort_key,
    group_by_method,
    harmonic_mean,
    method_sort_key,
    require_results,
    run_filter_from,
    seed_sort_key,
)

MISSING = "–"
STD_DESCRIPTION = "population (ddof=0, numpy.std), over seeds"


@dataclass
class Report:
    """One table: display cells for markdown, structured records for JSON and CSV."""

    mode: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    runs_without_result: list[str] = field(default_factory=list)


@dataclass
class _CellFormatter:
    """Formats cells and remembers which markers it used, so that the notes explain exactly those."""

    used_missing: bool = False
    used_seed_shortfall: bool = False
    used_partial_average: bool = False

    def stats(self, stats: SeedStats | None, expected_seeds: int) -> str:
        if stats is None or stats.n == 0:
            self.used_missing = True
            return MISSING
        text = f"{stats.mean:.2f} ± {stats.std:.2f}"
        if stats.n < expected_seeds:
            self.used_seed_shortfall = True
            text += f" ({stats.n}/{expected_seeds})"
        return text

    def value(self, value: float | None) -> str:
        if value is None:
            self.used_missing = True
            return MISSING
        return f"{value:.2f}"

    def average(self, average: Average | None) -> str:
        if average is None:
            self.used_missing = True
            return MISSING
        if average.complete:
            return f"{average.mean:.2f}"
        self.used_partial_average = True
        return f"{average.mean:.2f}* ({average.datasets}/{average.expected})"

    def average_label(self, average: Average) -> str:
        if average.complete:
            return f"Average ({average.expected})"
        self.used_partial_average = True
        return f"Average* ({average.datasets}/{average.expected})"

    def notes(self) -> list[str]:
        notes = [f"mean ± std: std is the {STD_DESCRIPTION}."]
        if self.used_missing:
            notes.append(f"{MISSING}: no run with a result.")
        if self.used_seed_shortfall:
            notes.append("(k/n): only k of the row's n seeds have a result for this cell.")
        if self.used_partial_average:
            notes.append("x* (k/n): average over the k datasets present out of n; not comparable to a full average.")
        return notes


def _method_columns(key: tuple[str, str, int, str], show_variant: bool) -> list[str]:
    trainer, config, shots, variant = key
    return [trainer, config, str(shots) if shots else "zs", *([variant] if show_variant else [])]


def _method_record(key: tuple[str, str, int, str]) -> dict:
    trainer, config, shots, variant = key
    return {"trainer": trainer, "config": config, "shots": shots, "variant": variant}


def _union_seeds(stats: list[SeedStats]) -> list[int | None]:
    return sorted({seed for item in stats for seed in item.seeds}, key=seed_sort_key)


def _means(by_dataset: dict[str, SeedStats]) -> dict[str, float]:
    return {dataset: stats.mean for dataset, stats in by_dataset.items()}


def _without_result(runs: list[RunResult], root: Path) -> list[str]:
    return [str(run.path.relative_to(root)) for run in runs if run.accuracy is None]


def few_shot_report(root: Path, run_filter: RunFilter = KEEP_ALL) -> Report:
    """One row per (trainer, config, shots, variant), one column per dataset, plus the 11-benchmark average."""
    runs = require_results(collect_few_shot(root), "few-shot", root, run_filter)
    grouped = group_by_method(runs)
    datasets = sorted({dataset for by_dataset in grouped.values() for dataset in by_dataset}, key=dataset_sort_key)
    with_average = any(dataset in FEW_SHOT_BENCHMARKS for dataset in datasets)
    show_variant = any(key[3] for key in grouped)
    headers = ["Trainer", "Config", "Shots", *(["Variant"] if show_variant else []), *datasets]
    headers += [*(["Average (11)"] if with_average else []), "Seeds"]
    report = Report("few-shot", "Few-shot accuracy (%)", headers, runs_without_result=_without_result(runs, root))
    cells = _CellFormatter()
    for key, by_dataset in grouped.items():
        seeds = _union_seeds(list(by_dataset.values()))
        average = average_over(_means(by_dataset), FEW_SHOT_BENCHMARKS)
        report.rows.append(
            _method_columns(key, show_variant)
            + [cells.stats(by_dataset.get(dataset), len(seeds)) for dataset in datasets]
            + ([cells.average(average)] if with_average else [])
            + [str(len(seeds))]
        )
        report.records.append(
            _method_record(key)
            | {
                "seeds": seeds,
                "datasets": {dataset: by_dataset.get(dataset, SeedStats()).as_record() for dataset in datasets},
                "average": average.as_record() if average else EMPTY_AVERAGE_RECORD,
            }
        )
    report.notes = cells.notes()
    return report


def _base2new_dataset_entry(
    dataset: str, method: list[str], record: dict, base: SeedStats, new: SeedStats, seeds: int, cells: _CellFormatter
) -> tuple[list[str], dict]:
    h = harmonic_mean(base.mean, new.mean)
    row = [dataset, *method, cells.stats(base, seeds), cells.stats(new, seeds), cells.value(h), str(seeds)]
    values = {"base": base.as_record(), "new": new.as_record(), "hm": h, "datasets_averaged": None, "complete": None}
    return row, {"dataset": dataset} | record | values


def _base2new_average_entry(
    method: list[str], record: dict, base: Average, new: Average, seeds: int, cells: _CellFormatter
) -> tuple[list[str], dict]:
    h = harmonic_mean(base.mean, new.mean)
    row = [cells.average_label(base), *method, cells.value(base.mean), cells.value(new.mean), cells.value(h),
           str(seeds)]
    no_spread = {"std": None, "n": None, "seeds": []}
    values = {"base": {"mean": base.mean} | no_spread, "new": {"mean": new.mean} | no_spread, "hm": h,
              "datasets_averaged": base.datasets, "complete": base.complete}
    return row, {"dataset": "Average"} | record | values


def base2new_report(root: Path, run_filter: RunFilter = KEEP_ALL) -> Report:
    """Base (train_base), new (test_new) and their harmonic mean per dataset and method, averages first."""
    base_runs = collect_base2new(root, "train_base")
    new_runs = collect_base2new(root, "test_new")
    runs = require_results(base_runs + new_runs, "base-to-new", root, run_filter)
    base = group_by_method([run for run in base_runs if run_filter.accepts(run)])
    new = group_by_method([run for run in new_runs if run_filter.accepts(run)])
    methods = sorted(set(base) | set(new), key=method_sort_key)
    show_variant = any(key[3] for key in methods)
    datasets = sorted({dataset for group in (base, new) for by_dataset in group.values() for dataset in by_dataset},
                      key=dataset_sort_key)
    headers = ["Dataset", "Trainer", "Config", "Shots", *(["Variant"] if show_variant else []),
               "Base", "New", "H", "Seeds"]
    report = Report("base2new", "Base-to-new generalisation (%)", headers,
                    runs_without_result=_without_result(runs, root))
    cells = _CellFormatter()
    entries_by_dataset: dict[str, list[tuple[list[str], dict]]] = {}
    for key in methods:
        base_by_dataset, new_by_dataset = base.get(key, {}), new.get(key, {})
        seed_list = _union_seeds([*base_by_dataset.values(), *new_by_dataset.values()])
        seeds = len(seed_list)
        method = _method_columns(key, show_variant)
        record = _method_record(key) | {"seeds": seed_list}
        paired = set(base_by_dataset) & set(new_by_dataset)
        base_average = average_over({d: base_by_dataset[d].mean for d in paired}, FEW_SHOT_BENCHMARKS)
        new_average = average_over({d: new_by_dataset[d].mean for d in paired}, FEW_SHOT_BENCHMARKS)
        if base_average is not None and new_average is not None:
            entries_by_dataset.setdefault("Average", []).append(
                _base2new_average_entry(method, record, base_average, new_average, seeds, cells)
            )
        for dataset in datasets:
            if dataset in base_by_dataset or dataset in new_by_dataset:
                entries_by_dataset.setdefault(dataset, []).append(_base2new_dataset_entry(
                    dataset, method, record, base_by_dataset.get(dataset, SeedStats()),
                    new_by_dataset.get(dataset, SeedStats()), seeds, cells,
                ))
    for dataset in ["Average", *datasets]:
        for row, record in entries_by_dataset.get(dataset, []):
            report.rows.append(row)
            report.records.append(record)
    report.notes = cells.notes() + [
        (
            "H = 2·Base·New/(Base+New) of the seed means; the average row takes the mean Base and mean New over "
            "the benchmarks that have both, and H of those means (as CoCoOp reports)."
        )
    ]
    return report


def xd_report(root: Path, run_filter: RunFilter = KEEP_ALL) -> Report:
    """Source (ImageNet, from the few-shot tree) and every eval-only target, with the 10-target and DG averages."""
    runs = require_results(collect_evaluation(root), "cross-dataset (evaluation/)", root, run_filter)
    source_filter = replace(run_filter, datasets=(CROSS_DATASET_SOURCE,))
    source_runs = [run for run in collect_few_shot(root) if source_filter.accepts(run)]
    targets = group_by_method(runs)
    sources = group_by_method(source_runs)
    present = {dataset for by_dataset in targets.values() for dataset in by_dataset} - {CROSS_DATASET_SOURCE}
    xd_targets = [dataset for dataset in CROSS_DATASET_TARGETS if dataset in present]
    dg_targets = [dataset for dataset in DOMAIN_GENERALIZATION_TARGETS if dataset in present]
    others = sorted(present - set(xd_targets) - set(dg_targets), key=dataset_sort_key)
    show_variant = any(key[3] for key in targets)
    headers = ["Trainer", "Config", "Shots", *(["Variant"] if show_variant else []), f"{CROSS_DATASET_SOURCE} (source)",
               *xd_targets, *(["Target avg (10)"] if xd_targets else []),
               *dg_targets, *(["DG avg (4)"] if dg_targets else []), *others, "Seeds"]
    report = Report("xd", "Cross-dataset and domain generalisation (%)", headers,
                    runs_without_result=_without_result(runs, root))
    cells = _CellFormatter()
    for key, by_dataset in targets.items():
        source = sources.get(key, {}).get(CROSS_DATASET_SOURCE) or by_dataset.get(CROSS_DATASET_SOURCE)
        columns = {CROSS_DATASET_SOURCE: source} | {
            dataset: by_dataset.get(dataset) for dataset in [*xd_targets, *dg_targets, *others]
        }
        seeds = _union_seeds([stats for stats in columns.values() if stats is not None])
        means = _means(by_dataset)
        xd_average = average_over(means, CROSS_DATASET_TARGETS)
        dg_average = average_over(means, DOMAIN_GENERALIZATION_TARGETS)
        dataset_cells = [cells.stats(columns.get(name), len(seeds)) for name in [CROSS_DATASET_SOURCE, *xd_targets]]
        if xd_targets:
            dataset_cells.append(cells.average(xd_average))
        dataset_cells += [cells.stats(columns.get(name), len(seeds)) for name in dg_targets]
        if dg_targets:
            dataset_cells.append(cells.average(dg_average))
        dataset_cells += [cells.stats(columns.get(name), len(seeds)) for name in others]
        report.rows.append(_method_columns(key, show_variant) + dataset_cells + [str(len(seeds))])
        report.records.append(
            _method_record(key)
            | {
                "seeds": seeds,
                "datasets": {name: (stats or SeedStats()).as_record() for name, stats in columns.items()},
                "target_average": xd_average.as_record() if xd_average else EMPTY_AVERAGE_RECORD,
                "dg_average": dg_average.as_record() if dg_average else EMPTY_AVERAGE_RECORD,
            }
        )
    report.notes = cells.notes() + [
        (
            f"{CROSS_DATASET_SOURCE} (source): the few-shot run of the same trainer/config/shots/variant; "
            "targets: eval-only runs under evaluation/."
        )
    ]
    return report


def render_markdown(report: Report) -> str:
    lines = [f"## {report.title}", "", "| " + " | ".join(report.headers) + " |",
             "|" + "|".join("---" for _ in report.headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in report.rows]
    lines.append("")
    lines += [f"- {note}" for note in report.notes]
    if report.runs_without_result:
        lines.append(f"- {len(report.runs_without_result)} run folder(s) without a result (unfinished or failed) "
                     "were left out; `--format json` lists them.")
    return "\n".join(lines) + "\n"


def _flatten(record: dict, prefix: str = "") -> dict:
    """Nested dicts become dotted column names; lists of seeds become space-separated text."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}.")
        elif isinstance(value, list):
            flat[name] = " ".join("" if item is None else str(item) for item in value)
        else:
            flat[name] = value
    return flat


def render_csv(report: Report) -> str:
    rows = [_flatten(record) for record in report.records]
    fieldnames = list(dict.fromkeys(name for row in rows for name in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: "" if value is None else value for name, value in row.items()} for row in rows)
    return buffer.getvalue()


def render_json(report: Report) -> str:
    document = {
        "mode": report.mode,
        "title": report.title,
        "std": STD_DESCRIPTION,
        "rows": report.records,
        "notes": report.notes,
        "runs_without_result": report.runs_without_result,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


REPORTS = {"few-shot": few_shot_report, "base2new": base2new_report, "xd": xd_report}
RENDERERS = {"md": render_markdown, "csv": render_csv, "json": render_json}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("output_root", type=Path, help="the output folder train.py wrote (e.g. output)")
    common.add_argument("--format", choices=sorted(RENDERERS), default="md", help="table format (default: md)")
    common.add_argument("--output", type=Path, help="write the table to this file instead of stdout")
    add_filter_arguments(common)
    add_debug_argument(common)
    parser = argparse.ArgumentParser(prog="dpt-results", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("few-shot", parents=[common], help="accuracy per dataset and shots, 11-dataset average")
    modes.add_parser("base2new", parents=[common], help="base, new and harmonic mean per dataset")
    modes.add_parser("xd", parents=[common], help="cross-dataset transfer and domain generalisation from ImageNet")
    return parser


def main(argv: list[str] | None = None) -> int:
    """dpt-results; an output root without results is an error (one paragraph, exit status 2)."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        report = REPORTS[args.mode](args.output_root, run_filter_from(args))
    text = RENDERERS[args.format](report)
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
