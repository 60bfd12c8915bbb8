"""One side of `versus_reference`, in its own process: build the authors' trainer or ours, measure it and
print one JSON line. Started by `python -m dpt_tools.versus_reference`, not by hand.

The authors' side must not see our modules: their code imports `trainers`, `clip` and `dassl` from their
clones, names that ours share. So this module imports only torch, yacs, `dpt_tools.measure` and
`dpt_tools.their_code` at the top, and our trainers only on our side; their configuration arrives as a YAML
file (`versus_reference` builds it from Dassl's defaults), so nothing here imports Dassl itself.
"""
import argparse
import contextlib
import importlib
import io
import json
import statistics
import sys
import tempfile
import time
import types
from collections import OrderedDict

import torch
from yacs.config import CfgNode

from dpt_tools.measure import PeakRSS, evaluate, rss_kib
from dpt_tools.their_code import THEIR_SUCCESSORS, import_their_trainer

# method -> (repository option, their module under trainers/, their class)
THEIR_TRAINERS = {
    "DPT": ("dpt_repo", "DPT", "DPT"),
    "CoOp": ("coop_repo", "coop", "CoOp"),
    "CoCoOp": ("coop_repo", "cocoop", "CoCoOp"),
    **{method: their[:3] for method, their in THEIR_SUCCESSORS.items()},
}
REPOSITORY_OPTIONS = sorted({"dassl_repo"} | {repository for repository, *_ in THEIR_TRAINERS.values()})


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("side", choices=["ours", "theirs"])
    parser.add_argument("method", choices=list(THEIR_TRAINERS))
    parser.add_argument("--weights", required=True, help="an OpenAI CLIP state dict (ViT)")
    parser.add_argument("--their-config", default="", help="their side: the Dassl configuration (YAML)")
    parser.add_argument("--backbone", required=True, help="its architecture's name, e.g. ViT-B/32")
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--classes", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--repeats", type=int, required=True)
    parser.add_argument("--eval-images", type=int, required=True)
    for option in REPOSITORY_OPTIONS:
        parser.add_argument(f"--{option.replace('_', '-')}", default="")
    return parser


def classnames(n_classes):
    return [f"class number {i}" for i in range(n_classes)]


def their_module(args, cfg):
    """Their trainer's module, loading the weights file as their CLIP. MaPLe, IVLP and PromptSRC load CLIP
    in their own ways (prompted blocks, PromptSRC's frozen copies): their `clip` is pointed at the file
    (`their_code`); the others' `load_clip_to_cpu` is replaced."""
    repo_flag, module_name, _ = THEIR_TRAINERS[args.method]
    if args.method in THEIR_SUCCESSORS:
        return import_their_trainer(args.method, getattr(args, repo_flag), args.dassl_repo,
                                    cfg.MODEL.BACKBONE.NAME, args.weights)
    sys.path[:0] = [getattr(args, repo_flag), args.dassl_repo]
    module = importlib.import_module(f"trainers.{module_name}")
    their_clip = importlib.import_module("clip.clip")
    state_dict = torch.load(args.weights, weights_only=True)
    module.load_clip_to_cpu = lambda cfg: their_clip.build_model(dict(state_dict))
    return module


def their_trainer(args):
    """The authors' trainer of args.method, built by their own build_model on the weights file."""
    with open(args.their_config) as config_file:
        cfg = CfgNode.load_cfg(config_file)
    module = their_module(args, cfg)
    # Dassl's warmup scheduler fails on current torch; the scheduler is not on the timed path.
    module.build_lr_scheduler = lambda optim, cfg: torch.optim.lr_scheduler.StepLR(optim, 10)
    cls = getattr(module, THEIR_TRAINERS[args.method][2])
    trainer = cls.__new__(cls)  # without TrainerX.__init__, which builds the data loaders
    trainer._models, trainer._optims, trainer._scheds = OrderedDict(), OrderedDict(), OrderedDict()
    trainer._writer = None
    trainer.cfg, trainer.num_classes, trainer.device = cfg, args.classes, torch.device("cpu")
    trainer.dm = types.SimpleNamespace(
        dataset=types.SimpleNamespace(classnames=classnames(args.classes)), num_classes=args.classes
    )
    with contextlib.redirect_stdout(io.StringIO()):
        trainer.build_model()
    trainer.model.float()  # fp32 throughout (their DPT builds its class-aware prompt generator in fp16)
    return trainer


def our_trainer(args, data_root):
    """Our trainer of args.method as `dpt-benchmark` builds it (shipped config, fp32, CPU)."""
    from dpt_tools import benchmark

    options = benchmark.build_parser().parse_args(
        ["--backbone", args.backbone, "--path", args.weights, "--precision", "fp32", "--device", "cpu"])
    benchmark.write_class_folder(data_root, classnames(args.classes))
    return benchmark.build(args.method, options, data_root, args.input_size)


def median_seconds(fn, repeats):
    """Median seconds of `repeats` calls of fn(), after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(trainer, args):
    """One side's row: seconds and MiB (see `versus_reference`)."""
    images = torch.randn(args.batch_size, 3, args.input_size, args.input_size)
    batch = {"img": images, "label": torch.randint(0, args.classes, (args.batch_size,))}
    trainer.epoch, trainer.batch_idx, trainer.num_batches = 0, 0, 10**9  # no end-of-epoch scheduler step
    rss = PeakRSS()
    trainer.set_model_mode("train")
    rss.start()
    row = {"train_s": median_seconds(lambda: trainer.forward_backward(batch), args.repeats)}
    row.update(train_rss_mib=rss.mib(), peak_rss_mib=rss_kib("VmHWM") / 1024)
    row["eval_first_s"] = median_seconds(lambda: evaluate(trainer, images, args.batch_size), args.repeats)
    trainer.set_model_mode("eval")
    with torch.no_grad():
        row["eval_later_s"] = median_seconds(lambda: trainer.model_inference(images), args.repeats)
    start = time.perf_counter()
    evaluate(trainer, images, args.eval_images)
    row["eval_set_s"] = time.perf_counter() - start
    return row


def main(argv=None):
    args = build_parser().parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as data_root:
        trainer = their_trainer(args) if args.side == "theirs" else our_trainer(args, data_root)
        print(json.dumps(measure(trainer, args)))


if __name__ == "__main__":
    main()
