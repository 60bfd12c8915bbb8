"""The offline demo: zero-shot CLIP, CoOp and DPT side by side on a toy dataset with the shipped toy
CLIP, then the results table. Runs on a laptop CPU in a few minutes, with no download.

    python -m dpt_tools.demo                       # ToyFog, 16 shots, seed 1
    python -m dpt_tools.demo --dataset toy_dusk --shots 4 --trainers ZeroshotCLIP CoOp CoCoOp KgCoOp ProGrad VPT VLP DPT
    python -m dpt_tools.demo --trainers MaPLe IVLP PromptSRC                 # DPT's successors

Each run shows its progress (epoch, average loss, time left) in one line that updates, then its result.
Each run is an ordinary train.py run (configs/trainers/<TRAINER>/toy.yaml) whose folder follows the
scripts' layout, so `dpt-results few-shot <output>` reads them; a finished run is not run again.
"""
import argparse
import contextlib
import difflib
import io
import os.path as osp
import re
import sys
import time
from pathlib import Path

from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools import parse_results
from dpt_tools.config_files import shipped_names
from dpt_tools.results_common import run_accuracy

CONFIG = "toy"
# The trainer's progress line: "epoch [3/30] batch [16/16] time ... loss 1.2345 (1.3012) ... eta 0:00:41".
PROGRESS = re.compile(r"epoch \[(\d+)/(\d+)\] batch \[(\d+)/(\d+)\].*?loss [\d.]+ \(([\d.]+)\).*?eta (\S+)")


class ProgressLine:
    """A stdout for a quiet run: shows its progress as one console line that updates in place (epoch, batch,
    average loss, time left), read off the trainer's own progress lines; everything else is dropped
    (the run's log.txt keeps it all)."""

    def __init__(self, label, console):
        self.label, self.console, self.pending, self.width = label, console, "", 0

    def write(self, text):
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            match = PROGRESS.search(line)
            if match:
                epoch, epochs, batch, batches, loss, eta = match.groups()
                self.show(f"epoch {epoch}/{epochs} batch {batch}/{batches}  loss {loss}  {eta} left")
            elif line.startswith("Evaluate on the"):
                self.show("evaluating")
        return len(text)

    def show(self, status):
        text = f"{self.label}  {status}"
        self.console.write("\r" + text.ljust(self.width))
        self.console.flush()
        self.width = len(text)

    def clear(self):
        """Blank the progress line, so that the run's result line replaces it."""
        if self.width:
            self.console.write("\r" + " " * self.width + "\r")
            self.console.flush()

    def flush(self):
        pass


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="toy_fog", help="dataset config stem (configs/datasets/<stem>.yaml)")
    parser.add_argument("--shots", type=int, default=16, help="training images per class")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trainers", nargs="+", default=["ZeroshotCLIP", "LinearProbe", "CoOp", "DPT"])
    parser.add_argument("--data", default="data", help="where the toy datasets are (generated there if missing)")
    parser.add_argument("--output", default=osp.join("output", "demo"), help="output root of the runs")
    parser.add_argument("--verbose", action="store_true", help="show every run's log, not one line per run")
    add_debug_argument(parser)
    return parser


def registered_method(trainer):
    """The registered trainer class of `trainer`: whether it trains (`eval_only`) and the folder of its
    configs (`default_config`'s); None for a name not registered (train.py then says so)."""
    import trainers  # noqa: F401  (registers the trainers)
    from trainers.base import registered_methods

    return registered_methods().get(trainer)


def is_zero_shot(trainer):
    method = registered_method(trainer)
    return method is not None and method.eval_only


def one_of(flag, value, names, what):
    """A UserError unless `value` is one of `names`, suggesting the close ones."""
    if value in names:
        return
    close = difflib.get_close_matches(value, names, n=2, cutoff=0.5)
    hint = f" Do you mean {' or '.join(close)}?" if close else ""
    raise UserError(f"{flag} {value}: {what}.{hint} Choose from {', '.join(names)}.")


def check_args(args):
    """Every argument before the first run: the dataset and trainers need shipped toy configs, shots >= 1."""
    datasets = [name for name in shipped_names("datasets") if name.startswith("toy")]
    one_of("--dataset", args.dataset, datasets, "not a toy dataset config (configs/datasets/toy_*.yaml)")
    from trainers.base import registered_methods

    recipes = set(shipped_names("trainers"))
    trainers = [name for name in registered_methods() if f"{config_folder(name)}/{CONFIG}" in recipes]
    recipe = f"configs/trainers/<TRAINER>/{CONFIG}.yaml"
    for trainer in args.trainers:
        one_of("--trainers", trainer, trainers, f"no toy recipe of that trainer ({recipe})")
    if args.shots < 1:
        raise UserError(
            f"--shots {args.shots}: give the training images per class, 1 or more (zero-shot CLIP is the "
            "ZeroshotCLIP trainer: --trainers ZeroshotCLIP ...)."
        )


def run_folder(output, dataset, trainer, shots, seed):
    """The scripts' layout: <output>/<dataset>/<TRAINER>/toy_<K>shots/seed<S> (zero-shot: toy/seed<S>)."""
    setting = CONFIG if is_zero_shot(trainer) else f"{CONFIG}_{shots}shots"
    return osp.join(output, dataset, trainer, setting, f"seed{seed}")


def config_folder(trainer):
    """The folder of the trainer's configs (configs/trainers/<folder>/): its default config's."""
    method = registered_method(trainer)
    return method.default_config.split("/")[0] if method and method.default_config else trainer


def train_args(args, trainer, out_dir):
    argv = ["--eval-only"] if is_zero_shot(trainer) else []
    return argv + [
        "--root", args.data,
        "--seed", str(args.seed),
        "--trainer", trainer,
        "--dataset-config-file", args.dataset,
        "--config-file", f"{config_folder(trainer)}/{CONFIG}",
        "--output-dir", out_dir,
        "DATASET.NUM_SHOTS", str(args.shots),
    ]


def main(argv=None):
    from dpt_tools import train

    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        check_args(args)
    for trainer in args.trainers:
        out_dir = run_folder(args.output, args.dataset, trainer, args.shots, args.seed)
        accuracy = run_accuracy(Path(out_dir)) if osp.isdir(out_dir) else None
        if accuracy is None:
            start = time.time()
            progress = ProgressLine(f"{trainer:>13}  {args.dataset} {args.shots}-shot seed {args.seed}:", sys.stdout)
            errors = io.StringIO()
            try:
                with contextlib.ExitStack() as quiet:
                    if not args.verbose:  # the run's log still goes to <out_dir>/log.txt
                        quiet.enter_context(contextlib.redirect_stdout(progress))
                        quiet.enter_context(contextlib.redirect_stderr(errors))
                    train.main(train_args(args, trainer, out_dir))
            finally:
                progress.clear()
                sys.stderr.write(errors.getvalue())  # a failed run's message (the quiet run's stderr is held)
            accuracy = run_accuracy(Path(out_dir))
            took = f"{time.time() - start:.0f} s"
        else:
            took = "done before"
        print(f"{trainer:>13}  {args.dataset} {args.shots}-shot seed {args.seed}: {accuracy:.1f}%  ({took}; {out_dir})")
    print()
    return parse_results.main(["few-shot", args.output, "--dataset", args.dataset])


if __name__ == "__main__":
    sys.exit(main())
