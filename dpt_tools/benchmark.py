"""Speed and memory of the trainers side by side, on synthetic batches at a given size.

    python -m dpt_tools.benchmark --backbone ViT-B/16 --classes 1000 --batch-size 32 --precision fp16
    python -m dpt_tools.benchmark --random-weights --backbone ViT-B/16 --classes 1000   # no weight file needed
    python -m dpt_tools.benchmark --backbone ToyCLIP-ViT --classes 16 --opts TRAINER.DPT.BOTTOMLIMIT 4
    python -m dpt_tools.benchmark --backbone open_clip:ViT-B-16 --pretrained laion2b_s34b_b88k --classes 1000
    python -m dpt_tools.benchmark --random-weights --backbone open_clip:ViT-L-14 --classes 1000

Each trainer is built through train.py's config path (its configs/trainers/<TRAINER>/<config>.yaml,
then the options given here) on a throw-away one-image-per-class folder, then timed on random images:
a training step (forward, backward, optimiser step), inference of one batch (test-time text features
cached, as in test()) and, with --eval-images N, a whole evaluation of N images as test() runs it
(text features computed once, then every batch). Memory: CUDA's allocator peak on a GPU, and the
process's peak resident memory (RSS, Linux) above its level when the phase starts: what a training
step or an evaluation adds to the loaded model (activations, gradients, optimiser state, caches).
A trainer that runs out of CUDA memory is reported as such and the others still run. A benchmark,
not a test: numbers depend on the machine, on --threads and on what else runs on it.

--random-weights benchmarks one of OpenAI's architectures without its weight file: a randomly
initialised CLIP of exactly that architecture is written to a temporary file and used as
MODEL.BACKBONE.PATH. Speed and memory depend on the shapes, not on the weight values, so the numbers
are those of the released model. The same holds for any open_clip architecture (`open_clip:<model>`):
open_clip builds it without weights and it is saved as a temporary local-dir model.
"""
import argparse
import contextlib
import gc
import io
import os
import os.path as osp
import re
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from dassl_compat.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools.measure import PeakRSS, evaluate
from trainers import open_clip_backbone
from trainers.clip_backbone import OPENAI_ARCHITECTURES, load_clip, save_tiny_clip

WORDNET_ID = re.compile(r"^n\d{8}\s+")  # CoOp's ImageNet classnames.txt: "n01440764 tench"

DEFAULT_CONFIGS = {
    "ZeroshotCLIP": "CoOp/vit_b16",
    "CoOp": "CoOp/vit_b16",
    "CoCoOp": "CoCoOp/vit_b16_c4_ep10_batch1",
    "VPT": "VPT/vit_b16",
    "VLP": "VLP/vit_b16",
    "DPT": "DPT/vit_b16",
    "MaPLe": "MaPLe/vit_b16_c2_ep5_batch4_2ctx",
    "IVLP": "IVLP/vit_b16_c2_ep5_batch4_2+2ctx",
    "PromptSRC": "PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx",
}


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainers", nargs="+", default=list(DEFAULT_CONFIGS), choices=list(DEFAULT_CONFIGS))
    parser.add_argument("--backbone", default="ViT-B/16", help="MODEL.BACKBONE.NAME")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--path", default="", help="MODEL.BACKBONE.PATH (a CLIP checkpoint file)")
    weights.add_argument("--pretrained", default="", help="MODEL.BACKBONE.PRETRAINED (an open_clip weight tag)")
    weights.add_argument(
        "--random-weights",
        action="store_true",
        help="use a randomly initialised CLIP of the --backbone architecture instead of its weight file "
        f"(one of {', '.join(OPENAI_ARCHITECTURES)}, or any open_clip:<model>); speed and memory do not depend "
        "on the weight values",
    )
    parser.add_argument("--classes", type=int, default=100, help="number of classes C (synthetic names 'class <i>')")
    parser.add_argument(
        "--classnames", default="",
        help="a file of class names, one per line (or CoOp's classnames.txt lines 'n01440764 tench'); C is their "
        "number. The text side's cost depends on the names' token lengths: benchmark a dataset with its own names",
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after 2 untimed ones)")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "amp", "bf16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cuda", "cpu"])
    add_debug_argument(parser)
    parser.add_argument("--eval-images", type=int, default=0,
                        help="also time a whole evaluation of this many images (batches of --batch-size)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads of torch (default: torch's choice)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="more KEY VALUE config options")
    return parser


def read_classnames(path):
    """Class names from a file, one per line; a leading WordNet id (`n01440764 tench`) is dropped."""
    if not osp.isfile(path):
        raise UserError(f"--classnames {path}: no such file. Give a text file with one class name per line.")
    with open(path, encoding="utf-8") as lines:
        names = [WORDNET_ID.sub("", line.strip(), count=1) for line in lines if line.strip()]
    if not names:
        raise UserError(f"--classnames {path}: the file has no class names (one per line).")
    return names


def class_folder_names(classnames):
    """Folder names whose class names (`_` -> space) are `classnames`, made unique and path-safe."""
    folders = []
    for name in classnames:
        folder = name.replace(" ", "_").replace(os.sep, "-")
        while folder in folders:  # a name listed twice (ImageNet has two "missile" classes)
            folder += "_"
        folders.append(folder)
    return folders


def write_class_folder(root, classnames):
    """`root/bench/{train,test}/<name>/0.png`: one 8-px image per class, only to build the trainers
    (their class names and data loaders); the timed batches are random tensors of the input size."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in class_folder_names(classnames):
            folder = osp.join(root, "bench", split, name)
            os.makedirs(folder, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(osp.join(folder, "0.png"))


def random_open_clip_folder(backbone, folder):
    """A randomly initialised open_clip model of `backbone`'s architecture, saved as a local-dir model."""
    open_clip = open_clip_backbone.import_open_clip()
    model = open_clip_backbone.load_open_clip(backbone, random_weights=True)
    model_cfg = open_clip.get_model_config(open_clip_backbone.model_name(backbone).replace("/", "-"))
    return open_clip_backbone.save_model_folder(folder, model, model_cfg, model.visual.preprocess_cfg)


def build(trainer_name, args, data_root, input_size):
    from dassl_compat import TRAINER_REGISTRY, build_trainer
    from dpt_tools import train

    precision_node = TRAINER_REGISTRY.get(trainer_name).config_node
    config_file = DEFAULT_CONFIGS[trainer_name]  # a shipped config name
    argv = [
        "--root", data_root, "--trainer", trainer_name, "--config-file", config_file,
        "--output-dir", osp.join(data_root, "out", trainer_name),
        "DATASET.NAME", "ImageFolder", "DATASET.FOLDER", "bench",
        "MODEL.BACKBONE.NAME", args.backbone, "MODEL.BACKBONE.PATH", args.path,
        "MODEL.BACKBONE.PRETRAINED", args.pretrained,
        "INPUT.SIZE", f"({input_size}, {input_size})", "DATALOADER.NUM_WORKERS", "0",
        f"TRAINER.{precision_node}.PREC", args.precision,
        "USE_CUDA", str(args.device == "cuda"), "VERBOSE", "False", *args.opts,
    ]
    cfg = train.setup_cfg(train.build_parser().parse_args(argv))
    with contextlib.redirect_stdout(io.StringIO()):
        return build_trainer(cfg)


def timed(device, fn, steps, warmup=2):
    """Seconds per call of fn() over `steps` calls, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def peak_mib(device):
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def reset_peak(device, rss):
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    rss.start()


def benchmark(trainer, args, input_size):
    """One row: trainable parameters, train / eval images per second, peak memory (MiB, CUDA and RSS),
    seconds of a whole evaluation of --eval-images images."""
    device = trainer.device.type
    rss = PeakRSS()
    images = torch.randn(args.batch_size, 3, input_size, input_size, device=trainer.device)
    labels = torch.randint(0, args.classes, (args.batch_size,), device=trainer.device)
    row = {"trainer": type(trainer).__name__}
    models = list(trainer._models.values())
    row["trainable"] = sum(p.numel() for m in models for p in m.parameters() if p.requires_grad)
    if models:
        trainer.set_model_mode("train")
        trainer.epoch, trainer.batch_idx, trainer.num_batches = 0, 0, 10**9
        batch = {"img": images, "label": labels}
        reset_peak(device, rss)
        seconds = timed(device, lambda: trainer.forward_backward(batch), args.steps)
        row.update(train_img_s=args.batch_size / seconds, train_mib=peak_mib(device), train_rss_mib=rss.mib())
    trainer.set_model_mode("eval")
    reset_peak(device, rss)
    with torch.no_grad():
        seconds = timed(device, lambda: trainer.model_inference(images), args.steps)
    row.update(eval_img_s=args.batch_size / seconds, eval_mib=peak_mib(device), eval_rss_mib=rss.mib())
    if args.eval_images:  # warm already: one timed evaluation
        row["eval_set_s"] = timed(device, lambda: evaluate(trainer, images, args.eval_images), 1, warmup=0)
    return row


def table_header(eval_images=0):
    """The Markdown header of the table (a last column for the whole evaluation with --eval-images)."""
    columns = ["trainer", "trainable params", "train img/s", "train CUDA MiB", "train RSS MiB", "eval img/s",
               "eval CUDA MiB", "eval RSS MiB"]
    if eval_images:
        columns.append(f"eval of {eval_images} img, s")
    return "| " + " | ".join(columns) + " |\n" + "|---" * len(columns) + "|"


def format_row(row, eval_images=0):
    """One Markdown table line under table_header(eval_images)."""
    if row.get("out_of_memory"):
        return f"| {row['trainer']} | - | out of memory |" + " - |" * (5 + bool(eval_images))

    def cell(value, fmt):
        return "-" if value is None else format(value, fmt)

    def rate(value):  # three significant digits: slow CPU runs are fractions of an image per second
        return cell(value, ".3g" if value is not None and value < 100 else ".0f")

    cells = [row["trainer"], f"{row['trainable']:,}", rate(row.get("train_img_s")),
             cell(row.get("train_mib"), ".0f"), cell(row.get("train_rss_mib"), ".0f"), rate(row["eval_img_s"]),
             cell(row["eval_mib"], ".0f"), cell(row["eval_rss_mib"], ".0f")]
    if eval_images:
        cells.append(cell(row.get("eval_set_s"), ".2f"))
    return "| " + " | ".join(cells) + " |"


def main(argv=None):
    """Print the table, one line per trainer as soon as it is measured; returns the rows."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.random_weights and not open_clip_backbone.is_open_clip(args.backbone) \
            and args.backbone not in OPENAI_ARCHITECTURES:
        parser.error(f"--random-weights needs --backbone one of {', '.join(OPENAI_ARCHITECTURES)} or "
                     f"open_clip:<model>, got {args.backbone!r}")
    with exit_on_user_error(args.debug):
        return run_benchmarks(args)


def run_benchmarks(args):
    """Measure each trainer of `args.trainers`; the rows of the table."""
    open_clip = open_clip_backbone.is_open_clip(args.backbone)
    if args.threads:
        torch.set_num_threads(args.threads)
    classnames = read_classnames(args.classnames) if args.classnames else [f"class {i}" for i in range(args.classes)]
    args.classes = len(classnames)
    weights = ", random weights" if args.random_weights else ""
    print(f"{args.backbone}{weights}, C = {args.classes}, batch {args.batch_size}, {args.precision}, {args.device}, "
          f"{torch.get_num_threads()} threads")
    print(table_header(args.eval_images), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as data_root:
        if args.random_weights and open_clip:
            args.backbone = random_open_clip_folder(args.backbone, osp.join(data_root, "random_open_clip"))
        elif args.random_weights:
            args.path = save_tiny_clip(osp.join(data_root, "random_clip.pt"), **OPENAI_ARCHITECTURES[args.backbone])
        if open_clip:
            model = open_clip_backbone.load_open_clip(args.backbone, args.pretrained, args.path)
            input_size = open_clip_backbone.preprocess_settings(model)["SIZE"][0]
        else:
            input_size = load_clip(args.backbone, args.path).visual.input_resolution
        write_class_folder(data_root, classnames)
        for name in args.trainers:
            try:
                rows.append(benchmark(build(name, args, data_root, input_size), args, input_size))
            except torch.cuda.OutOfMemoryError:
                rows.append({"trainer": name, "out_of_memory": True})
                gc.collect()  # the failed trainer's tensors, should a reference cycle hold them
            print(format_row(rows[-1], args.eval_images), flush=True)
    return rows


if __name__ == "__main__":
    main()
