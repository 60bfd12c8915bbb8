"""Reading Dassl/CoOp output trees: result lines in ``log.txt``, run folders, dataset names, seed statistics,
and the run filters both command lines share.

Shared by ``dpt_tools.parse_results`` (tables) and ``dpt_tools.plot_results`` (figures). The folder layouts are the
ones of CoOp's scripts (docs/protocols.md); the result block is the one Dassl's evaluator prints::

    => result
    * total: 3,669
    * correct: 3,270
    * accuracy: 89.1%

Statistics over seeds use the population standard deviation (``ddof=0``, i.e. ``numpy.std``), as CoOp's
``parse_test_res.py`` does.
"""

from __future__ import annotations

import argparse
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from dpt_models.errors import UserError
from dpt_tools.arguments import int_at_least

FEW_SHOT_BENCHMARKS = (
    "ImageNet",
    "Caltech101",
    "OxfordPets",
    "StanfordCars",
    "Flowers102",
    "Food101",
    "FGVCAircraft",
    "SUN397",
    "DTD",
    "EuroSAT",
    "UCF101",
)
CROSS_DATASET_SOURCE = "ImageNet"
CROSS_DATASET_TARGETS = FEW_SHOT_BENCHMARKS[1:]
DOMAIN_GENERALIZATION_TARGETS = ("ImageNetV2", "ImageNet-Sketch", "ImageNet-A", "ImageNet-R")
KNOWN_DATASETS = FEW_SHOT_BENCHMARKS + DOMAIN_GENERALIZATION_TARGETS

# Every spelling met in output folders (config stems, DATASET.NAME, paper names), compared after _name_key().
_DATASET_ALIASES = {
    "ImageNet": ("imagenet",),
    "Caltech101": ("caltech101", "caltech"),
    "OxfordPets": ("oxford_pets", "OxfordPets", "pets"),
    "StanfordCars": ("stanford_cars", "StanfordCars", "cars"),
    "Flowers102": ("oxford_flowers", "OxfordFlowers", "flowers102", "flowers"),
    "Food101": ("food101", "food"),
    "FGVCAircraft": ("fgvc_aircraft", "FGVCAircraft", "aircraft"),
    "SUN397": ("sun397",),
    "DTD": ("dtd", "DescribableTextures"),
    "EuroSAT": ("eurosat",),
    "UCF101": ("ucf101",),
    "ImageNetV2": ("imagenetv2", "imagenet_v2"),
    "ImageNet-Sketch": ("imagenet_sketch", "ImageNetSketch"),
    "ImageNet-A": ("imagenet_a", "ImageNetA"),
    "ImageNet-R": ("imagenet_r", "ImageNetR"),
}

# Methods in the order the papers of this field list them (DPT's, then its successors' base-to-new tables:
# ProGrad, KgCoOp, MaPLe with IVLP, PromptSRC); other trainers follow alphabetically.
_TRAINER_ORDER = (
    "zeroshotclip", "zeroshotclip2", "coop", "cocoop", "vpt", "vlp", "dpt",
    "prograd", "kgcoop", "maple", "ivlp", "promptsrc",
)

_LOG_NAME = re.compile(r"^log\.txt(?:(?P<stamp>-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})(?:-(?P<repeat>\d+))?)?$")
_ACCURACY_LINE = re.compile(r"\* accuracy:\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)%")
_RESULT_HEADER = "=> result"
_SEED_FOLDER = re.compile(r"^seed(\d+)$")
_CONFIG_SHOTS_FOLDER = re.compile(r"^(.*)_(\d+)shots$")
_BASE2NEW_SHOTS_FOLDER = re.compile(r"^shots_(\d+)$")


class ResultsError(UserError):
    """An output root that cannot be reported on (missing, or without any finished run)."""


def _name_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


_DISPLAY_BY_KEY = {
    _name_key(alias): display for display, aliases in _DATASET_ALIASES.items() for alias in (display, *aliases)
}


def dataset_display_name(name: str) -> str:
    """One display name per dataset, whether the folder uses the config stem or ``DATASET.NAME``."""
    return _DISPLAY_BY_KEY.get(_name_key(name), name)


def config_stem(name: str) -> str:
    """The config name (``configs/datasets/<stem>.yaml``) of a paper name (``Flowers102``: ``oxford_flowers``)."""
    return _DATASET_ALIASES[name][0]


def dataset_sort_key(display_name: str) -> tuple[int, str]:
    """The 11 benchmarks in paper order, then the ImageNet variants, then any other dataset by name."""
    if display_name in KNOWN_DATASETS:
        return KNOWN_DATASETS.index(display_name), ""
    return len(KNOWN_DATASETS), display_name


def trainer_sort_key(trainer: str) -> tuple[int, str]:
    key = trainer.lower()
    rank = _TRAINER_ORDER.index(key) if key in _TRAINER_ORDER else len(_TRAINER_ORDER)
    return rank, key


def is_zero_shot(trainer: str, shots: int) -> bool:
    """Zero-shot CLIP: a ``ZeroshotCLIP*`` trainer, or a run folder without ``_<K>shots``."""
    return shots == 0 or trainer.lower().startswith("zeroshot")


def accuracy_from_log_text(text: str) -> float | None:
    """The last ``* accuracy:`` after the last ``=> result`` header, or None when that block has none."""
    lines = text.splitlines()
    headers = [index for index, line in enumerate(lines) if _RESULT_HEADER in line]
    if not headers:
        return None
    accuracies = [match.group(1) for line in lines[headers[-1] :] if (match := _ACCURACY_LINE.search(line))]
    return float(accuracies[-1]) if accuracies else None


def log_files_newest_first(run_dir: Path) -> list[Path]:
    """``log.txt`` is written by the first run; Dassl names each later one ``log.txt-<timestamp>`` (the
    project's engine adds ``-<n>`` for the n-th more run within that second)."""
    logs = {path: _LOG_NAME.match(path.name) for path in run_dir.iterdir() if path.is_file()}

    def age(path):
        stamp, repeat = logs[path].group("stamp", "repeat")
        return stamp is not None, stamp or "", int(repeat or 0)

    return sorted((path for path, match in logs.items() if match), key=age, reverse=True)


def run_accuracy(run_dir: Path) -> float | None:
    """The result of the newest log of a run folder that has one."""
    for log in log_files_newest_first(run_dir):
        accuracy = accuracy_from_log_text(log.read_text(encoding="utf-8", errors="replace"))
        if accuracy is not None:
            return accuracy
    return None


@dataclass(frozen=True)
class RunResult:
    """One run folder: what its path says about the experiment, and its accuracy (None: no result yet)."""

    dataset: str
    trainer: str
    config: str
    shots: int
    variant: str
    seed: int | None
    accuracy: float | None
    path: Path

    @property
    def method_key(self) -> tuple[str, str, int, str]:
        return self.trainer, self.config, self.shots, self.variant


def method_sort_key(key: tuple[str, str, int, str]) -> tuple:
    trainer, config, shots, variant = key
    return trainer_sort_key(trainer), config, variant, shots


def seed_sort_key(seed: int | None) -> tuple[bool, int]:
    return seed is not None, seed or 0


@dataclass(frozen=True)
class SeedStats:
    """Mean and population std of one accuracy over the seeds that have a result."""

    accuracy_by_seed: dict[int | None, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.accuracy_by_seed)

    @property
    def seeds(self) -> list[int | None]:
        return sorted(self.accuracy_by_seed, key=seed_sort_key)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.accuracy_by_seed.values()) if self.accuracy_by_seed else None

    @property
    def std(self) -> float | None:
        return statistics.pstdev(self.accuracy_by_seed.values()) if self.accuracy_by_seed else None

    def as_record(self) -> dict:
        return {"mean": self.mean, "std": self.std, "n": self.n, "seeds": self.seeds}


@dataclass(frozen=True)
class Average:
    """A mean over datasets; ``complete`` when every expected dataset contributed."""

    mean: float
    datasets: int
    expected: int

    @property
    def complete(self) -> bool:
        return self.datasets == self.expected

    def as_record(self) -> dict:
        return {"mean": self.mean, "datasets": self.datasets, "complete": self.complete}


EMPTY_AVERAGE_RECORD = {"mean": None, "datasets": 0, "complete": False}


def average_over(mean_by_dataset: dict[str, float], expected: tuple[str, ...]) -> Average | None:
    """Mean over the expected datasets that have a value; None when none of them has one."""
    values = [mean_by_dataset[name] for name in expected if mean_by_dataset.get(name) is not None]
    if not values:
        return None
    return Average(statistics.fmean(values), len(values), len(expected))


def harmonic_mean(base: float | None, new: float | None) -> float | None:
    """H = 2·b·n / (b + n), the base-to-new summary of CoCoOp."""
    if base is None or new is None:
        return None
    if base + new == 0:
        return 0.0
    return 2 * base * new / (base + new)


def group_by_method(runs: list[RunResult]) -> dict[tuple[str, str, int, str], dict[str, SeedStats]]:
    """(trainer, config, shots, variant) -> dataset -> seed statistics, over runs that have a result."""
    grouped: dict[tuple[str, str, int, str], dict[str, dict[int | None, float]]] = {}
    for run in runs:
        if run.accuracy is not None:
            grouped.setdefault(run.method_key, {}).setdefault(run.dataset, {})[run.seed] = run.accuracy
    return {
        key: {dataset: SeedStats(by_seed) for dataset, by_seed in by_dataset.items()}
        for key, by_dataset in sorted(grouped.items(), key=lambda item: method_sort_key(item[0]))
    }


@dataclass(frozen=True)
class RunFilter:
    """Keeps the runs of the named trainers / datasets / configs / shots (an empty selection keeps all)."""

    trainers: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    configs: tuple[str, ...] = ()
    shots: tuple[int, ...] = ()

    def accepts(self, run: RunResult) -> bool:
        trainers = {name.lower() for name in self.trainers}
        datasets = {dataset_display_name(name) for name in self.datasets}
        configs = {name.lower() for name in self.configs}
        return (
            (not trainers or run.trainer.lower() in trainers)
            and (not datasets or run.dataset in datasets)
            and (not configs or run.config.lower() in configs)
            and (not self.shots or run.shots in self.shots)
        )


KEEP_ALL = RunFilter()


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trainer", action="append", default=[], help="keep this trainer (repeatable)")
    parser.add_argument("--dataset", action="append", default=[],
                        help="keep this dataset, config stem or DATASET.NAME (repeatable)")
    parser.add_argument("--config", action="append", default=[], help="keep this trainer config (repeatable)")
    parser.add_argument("--shots", action="append", type=int_at_least(0), default=[],
                        help="keep these shots (repeatable)")


def run_filter_from(args: argparse.Namespace) -> RunFilter:
    return RunFilter(tuple(args.trainer), tuple(args.dataset), tuple(args.config), tuple(args.shots))


def require_root(root: Path) -> None:
    if not root.is_dir():
        raise ResultsError(
            f"output root '{root}' does not exist or is not a directory: give the folder train.py wrote into "
            "(the scripts' OUTPUT, default output)"
        )


def require_results(runs: list[RunResult], kind: str, root: Path, run_filter: RunFilter) -> list[RunResult]:
    """The runs that pass the filter, or a ResultsError that says why there is nothing to report."""
    if not runs:
        raise ResultsError(
            f"no {kind} run folders (with a log.txt) under '{root}': give the output folder above the run "
            "folders (e.g. output, not output/<dataset>/<trainer>/.../seed1), or pick the report that matches its runs"
        )
    if all(run.accuracy is None for run in runs):
        raise ResultsError(
            f"{len(runs)} {kind} run folder(s) under '{root}' but none has a result yet "
            "(no '=> result' block with '* accuracy:' in any log): wait for the runs to finish, or rerun them"
        )
    kept = [run for run in runs if run_filter.accepts(run)]
    if not any(run.accuracy is not None for run in kept):
        raise ResultsError(
            f"no {kind} run with a result under '{root}' matches --trainer/--dataset/--config/--shots: "
            "loosen or fix those filters"
        )
    return kept


def _run_dirs(tree: Path) -> list[Path]:
    """Every folder under ``tree`` that holds a Dassl log, in a stable order."""
    if not tree.is_dir():
        return []
    return sorted({log.parent for log in tree.rglob("log.txt*") if _LOG_NAME.match(log.name)})


def _split_seed(parts: tuple[str, ...]) -> tuple[tuple[str, ...], int | None]:
    match = _SEED_FOLDER.match(parts[-1]) if parts else None
    return (parts[:-1], int(match.group(1))) if match else (parts, None)


def _config_and_shots(folder: str) -> tuple[str, int]:
    match = _CONFIG_SHOTS_FOLDER.match(folder)
    return (match.group(1), int(match.group(2))) if match else (folder, 0)


def _is_zero_shot_trainer(folder: str) -> bool:
    return folder.lower().startswith("zeroshot")


def _few_shot_run(root: Path, run_dir: Path) -> RunResult | None:
    """A run folder, read from its anchors wherever it sits below ``root`` (folders above them, such as
    ``demo/`` in ``output/demo/...``, are not part of the run's name):

    - ``<DATASET>/<TRAINER>/<CFG>_<K>shots/<variant...>/seed<S>``, the scripts' few-shot layout;
    - ``<TRAINER>/<CFG>/<DATASET>`` with a ``ZeroshotCLIP*`` trainer, CoOp's zeroshot.sh layout;
    - ``<DATASET>/<ZeroshotCLIP*>/<CFG>/seed<S>``, zero-shot beside the few-shot runs (the demo);
    - otherwise ``<DATASET>/<TRAINER>/<CFG>/...``.
    A run without ``_<K>shots`` (zero-shot CLIP) gets shots 0; a run without a ``seed<S>`` folder gets seed None.
    """
    parts, seed = _split_seed(run_dir.relative_to(root).parts)
    if len(parts) < 2:
        return None
    shots_at = next((index for index in range(2, len(parts)) if _CONFIG_SHOTS_FOLDER.match(parts[index])), None)
    zero_shot_at = next((index for index, part in enumerate(parts) if _is_zero_shot_trainer(part)), None)
    shots, variant_parts = 0, ()
    if shots_at is not None:
        dataset, trainer = parts[shots_at - 2], parts[shots_at - 1]
        config, shots = _config_and_shots(parts[shots_at])
        variant_parts = parts[shots_at + 1 :]
    elif zero_shot_at is not None and len(parts) - zero_shot_at == 3:
        trainer, config, dataset = parts[zero_shot_at:]
    elif zero_shot_at is not None and zero_shot_at >= 1 and len(parts) - zero_shot_at == 2:
        dataset, trainer, config = parts[zero_shot_at - 1 :]
    else:
        dataset, trainer = parts[0], parts[1]
        config = parts[2] if len(parts) > 2 else ""
        variant_parts = parts[3:]
    return RunResult(
        dataset_display_name(dataset), trainer, config, shots, "/".join(variant_parts), seed,
        run_accuracy(run_dir), run_dir,
    )


def collect_few_shot(root: Path) -> list[RunResult]:
    """Runs of the few-shot tree ``root/<DATASET>/...`` (the base2new/ and evaluation/ trees excluded)."""
    require_root(root)
    runs = []
    for run_dir in _run_dirs(root):
        if run_dir.relative_to(root).parts[:1] in (("base2new",), ("evaluation",)):
            continue
        run = _few_shot_run(root, run_dir)
        if run is not None:
            runs.append(run)
    return runs


def collect_base2new(root: Path, phase: str) -> list[RunResult]:
    """Runs of ``root/base2new/<phase>/<dataset>/shots_<K>/<TRAINER>/<CFG>/<variant...>/seed<S>``."""
    require_root(root)
    tree = root / "base2new" / phase
    runs = []
    for run_dir in _run_dirs(tree):
        parts, seed = _split_seed(run_dir.relative_to(tree).parts)
        shots_match = _BASE2NEW_SHOTS_FOLDER.match(parts[1]) if len(parts) >= 4 else None
        if shots_match is None:
            continue
        runs.append(
            RunResult(
                dataset_display_name(parts[0]), parts[2], parts[3], int(shots_match.group(1)),
                "/".join(parts[4:]), seed, run_accuracy(run_dir), run_dir,
            )
        )
    return runs


def collect_evaluation(root: Path) -> list[RunResult]:
    """Eval-only runs of ``root/evaluation/<TRAINER>/<CFG>_<K>shots/<variant...>/<target>/seed<S>``."""
    require_root(root)
    tree = root / "evaluation"
    runs = []
    for run_dir in _run_dirs(tree):
        parts, seed = _split_seed(run_dir.relative_to(tree).parts)
        if len(parts) < 3:
            continue
        config, shots = _config_and_shots(parts[1])
        runs.append(
            RunResult(
                dataset_display_name(parts[-1]), parts[0], config, shots, "/".join(parts[2:-1]), seed,
                run_accuracy(run_dir), run_dir,
            )
        )
    return runs
