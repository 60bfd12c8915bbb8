"""``dpt-plot``: few-shot accuracy vs shots, one panel per dataset plus the average (CoOp's Figure 3 style).

One line per trainer and config (mean over seeds, std shaded), whichever folder layout its runs come from:
the demo's runs (no variant folder) join the scripts' runs of the same trainer and config when those have
one variant (e.g. `nctx16_cscFalse_ctpend`); several variants stay separate lines. The legend names each
line `trainer · config [· variant] · n seeds`, and its title says what the line and band are. Shots on a
log2 axis, zero-shot CLIP as a dashed horizontal line with stars. The average panel has a point only where
a trainer has every plotted dataset at that shot. Rendered with Agg, no display needed.

Example::

    dpt-plot output --output few_shot.png --trainer DPT --trainer CoOp --trainer ZeroshotCLIP --config vit_b16
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dpt_models.errors import add_debug_argument, exit_on_user_error
from dpt_tools.arguments import image_file, int_at_least
from dpt_tools.results_common import (
    KEEP_ALL,
    RunFilter,
    RunResult,
    add_filter_arguments,
    collect_few_shot,
    dataset_sort_key,
    group_by_method,
    is_zero_shot,
    require_results,
    run_filter_from,
)

AVERAGE_PANEL = "Average"
DEFAULT_SHOTS = (1, 2, 4, 8, 16)
PANEL_COLUMNS = 4

SeriesKey = tuple[str, str, str]  # (trainer, config, variant)
Point = tuple[float, float | None]  # (mean, std over seeds; None where no spread is shown)
Curves = dict[SeriesKey, dict[int, Point]]  # series -> shots -> point


LEGEND_TITLE = "line: mean over seeds, band: ± std\ndashed: zero-shot CLIP"


def _merge_layouts(runs: list[RunResult]) -> list[RunResult]:
    """Runs without a variant folder (the demo's) take the variant of the other runs of their trainer and
    config when those have exactly one, so that both layouts make one series."""
    variants: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        if run.variant:
            variants.setdefault((run.trainer, run.config), set()).add(run.variant)
    merged = []
    for run in runs:
        only = variants.get((run.trainer, run.config), set())
        merged.append(replace(run, variant=next(iter(only))) if not run.variant and len(only) == 1 else run)
    return merged


def _series_labels(keys: list[SeriesKey], seed_counts: dict[SeriesKey, set[int]]) -> dict[SeriesKey, str]:
    """`trainer · config · n seeds`, with the variant where a trainer and config have several series."""
    pairs = [(trainer, config) for trainer, config, _ in keys]
    labels = {}
    for key in keys:
        trainer, config, variant = key
        parts = [trainer, config] + ([variant or "no variant"] if pairs.count((trainer, config)) > 1 else [])
        low, high = min(seed_counts[key]), max(seed_counts[key])
        seeds = f"{low} seed" + ("s" if high > 1 else "") if low == high else f"{low}-{high} seeds"
        labels[key] = " · ".join([*parts, seeds])
    return labels


_MARKERS = ("o", "s", "^", "D", "v")


def _series_styles(keys: list[SeriesKey]) -> dict[SeriesKey, tuple[str, str]]:
    """A (colour, marker) per series, all distinct: the ten default colours, then again with the next marker."""
    return {key: (f"C{index % 10}", _MARKERS[index // 10 % len(_MARKERS)]) for index, key in enumerate(keys)}


def _draw_panel(
    ax: Axes,
    curves: Curves,
    zero_shot: dict[SeriesKey, float],
    labels: dict[SeriesKey, str],
    styles: dict[SeriesKey, tuple[str, str]],
) -> None:
    for key, by_shots in curves.items():
        shots = sorted(by_shots)
        means = [by_shots[shot][0] for shot in shots]
        stds = [by_shots[shot][1] for shot in shots]
        colour, marker = styles[key]
        ax.plot(shots, means, marker=marker, markersize=4, color=colour, label=labels[key])
        if None not in stds:
            ax.fill_between(shots, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                            color=colour, alpha=0.2, linewidth=0)
    for key, accuracy in zero_shot.items():
        ax.axhline(accuracy, linestyle="--", marker="*", markersize=10, clip_on=False, color=styles[key][0],
                   label=labels[key])


def plot_accuracy_vs_shots(runs: list[RunResult]) -> tuple[Figure, dict[str, Axes]]:
    """The figure and its panels by title (dataset display names and ``Average``); lines are labelled by series."""
    grouped = group_by_method(_merge_layouts(runs))
    curves: dict[str, Curves] = {}
    zero_shot_means: dict[str, dict[SeriesKey, list[float]]] = {}
    seed_counts: dict[SeriesKey, set[int]] = {}
    for (trainer, config, shots, variant), by_dataset in grouped.items():
        key = (trainer, config, variant)
        for dataset, stats in by_dataset.items():
            seed_counts.setdefault(key, set()).add(stats.n)
            if is_zero_shot(trainer, shots):
                zero_shot_means.setdefault(dataset, {}).setdefault(key, []).append(stats.mean)
            else:
                curves.setdefault(dataset, {}).setdefault(key, {})[shots] = (stats.mean, stats.std)
    zero_shot = {
        dataset: {key: statistics.fmean(means) for key, means in by_key.items()}
        for dataset, by_key in zero_shot_means.items()
    }
    datasets = sorted(set(curves) | set(zero_shot), key=dataset_sort_key)
    series = list(dict.fromkeys((trainer, config, variant) for trainer, config, _, variant in grouped))
    labels = _series_labels(series, seed_counts)
    styles = _series_styles(series)
    all_shots = sorted({shot for by_key in curves.values() for by_shots in by_key.values() for shot in by_shots})

    panels = [*datasets, *([AVERAGE_PANEL] if len(datasets) > 1 else [])]
    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4 * columns, 3.4 * rows))
    FigureCanvasAgg(figure)
    grid = figure.subplots(rows, columns, squeeze=False).ravel()
    for unused in grid[len(panels) :]:
        unused.remove()

    axes: dict[str, Axes] = {}
    for ax, dataset in zip(grid, datasets):
        _draw_panel(ax, curves.get(dataset, {}), zero_shot.get(dataset, {}), labels, styles)
        axes[dataset] = ax
    if AVERAGE_PANEL in panels:
        average_curves = _average_curves(curves, datasets)
        average_zero_shot = {
            key: statistics.fmean(zero_shot[dataset][key] for dataset in datasets)
            for key in series
            if all(key in zero_shot.get(dataset, {}) for dataset in datasets)
        }
        ax = grid[len(datasets)]
        _draw_panel(ax, average_curves, average_zero_shot, labels, styles)
        axes[AVERAGE_PANEL] = ax

    ticks = all_shots or list(DEFAULT_SHOTS)
    for index, (title, ax) in enumerate(axes.items()):
        ax.set_title(f"{AVERAGE_PANEL} over {len(datasets)} datasets" if title == AVERAGE_PANEL else title)
        ax.set_xscale("log", base=2)
        ax.set_xticks(ticks, [str(shot) for shot in ticks])
        ax.minorticks_off()
        ax.set_xlabel("Shots per class")
        ax.grid(alpha=0.3)
        if index % columns == 0:
            ax.set_ylabel("Accuracy (%)")
    next(iter(axes.values())).legend(fontsize="small", title=LEGEND_TITLE, title_fontsize="small")
    figure.tight_layout()
    return figure, axes


def _average_curves(curves: dict[str, Curves], datasets: list[str]) -> Curves:
    """Per series and shot, the mean over datasets of the seed means, where every dataset has that shot."""
    averages: Curves = {}
    keys = list(dict.fromkeys(key for by_key in curves.values() for key in by_key))
    for key in keys:
        shots_per_dataset = [set(curves.get(dataset, {}).get(key, {})) for dataset in datasets]
        for shot in sorted(set.intersection(*shots_per_dataset)):
            mean = statistics.fmean(curves[dataset][key][shot][0] for dataset in datasets)
            averages.setdefault(key, {})[shot] = (mean, None)
    return averages


def few_shot_figure(root: Path, run_filter: RunFilter = KEEP_ALL) -> tuple[Figure, dict[str, Axes]]:
    runs = require_results(collect_few_shot(root), "few-shot", root, run_filter)
    return plot_accuracy_vs_shots(runs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dpt-plot", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_root", type=Path, help="the output folder train.py wrote (e.g. output)")
    parser.add_argument("--output", type=image_file, default=Path("few_shot.png"),
                        help="image file to write; the suffix picks the format (default: few_shot.png)")
    parser.add_argument("--dpi", type=int_at_least(1), default=150)
    add_filter_arguments(parser)
    add_debug_argument(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """dpt-plot; an output root without few-shot results is an error (one paragraph, exit status 2)."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        figure, _ = few_shot_figure(args.output_root, run_filter_from(args))
    figure.savefig(args.output, dpi=args.dpi)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
