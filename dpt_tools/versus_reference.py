"""Speed and memory side by side with the authors' code, at the same configuration, in one run.

    python -m dpt_tools.versus_reference --dpt-repo ../DPT --coop-repo ../CoOp --dassl-repo ../Dassl.pytorch \
        --methods DPT CoOp CoCoOp --backbone ViT-B/32 --classes 100 --batch-size 4 --threads 1
    python -m dpt_tools.versus_reference --maple-repo ../multimodal-prompt-learning --promptsrc-repo ../PromptSRC \
        --dassl-repo ../Dassl.pytorch --methods MaPLe IVLP PromptSRC --backbone ViT-B/16 --threads 1

Their code is not part of this project: clone github.com/fanrena/DPT (their DPT), github.com/KaiyangZhou/CoOp
(their CoOp and CoCoOp), github.com/muzairkhattak/multimodal-prompt-learning (their MaPLe and IVLP),
github.com/muzairkhattak/PromptSRC (their PromptSRC) and github.com/KaiyangZhou/Dassl.pytorch (their engine)
and give the paths; Dassl's own requirements must be importable in this environment. Our side needs nothing
else.

For each method, each side runs in a fresh process (`versus_reference_side`), one after the other, on the
same randomly initialised CLIP of --backbone's OpenAI architecture, in fp32 on the CPU: their `build_model`,
`forward_backward` and `model_inference` (their trainer built without its data loaders; their Dassl warmup
scheduler, which fails on current torch, replaced by a plain one, off the timed path; MaPLe, IVLP and
PromptSRC read our shipped config's keys and run patched as `dpt_tools.their_code` says, with `.cuda()` and
`.half()` neutralised), and the same calls on the trainers that `dpt-benchmark` builds from the shipped
configs. Classes are named `class number <i>` on both sides. Reported, as medians of --repeats calls after
one warm-up: a training step; one evaluation batch as test() runs it ("first": eval mode entered, our text
features computed once) and a later batch (ours cached, theirs computed again); then one whole evaluation
of --eval-images images; the resident memory a training step adds and the process's peak (Linux). Then the
ratios. A benchmark, not a test: the numbers depend on the machine and on what else runs on it (one thread
per process on a loaded machine).
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

from yacs.config import CfgNode

from dassl_compat import get_cfg_default
from dpt_models.clip_backbone import OPENAI_ARCHITECTURES, save_tiny_clip
from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools.their_code import REPOSITORY_URLS, THEIR_SUCCESSORS
from dpt_tools.versus_reference_side import REPOSITORY_OPTIONS, THEIR_TRAINERS

# repository option -> (the authors' repository, a file every clone of it has)
REPOSITORIES = {
    "dpt_repo": ("https://github.com/fanrena/DPT", "trainers/DPT.py"),
    "coop_repo": ("https://github.com/KaiyangZhou/CoOp", "trainers/coop.py"),
    "maple_repo": (REPOSITORY_URLS["maple_repo"], "trainers/maple.py"),
    "promptsrc_repo": (REPOSITORY_URLS["promptsrc_repo"], "trainers/promptsrc.py"),
    "dassl_repo": ("https://github.com/KaiyangZhou/Dassl.pytorch", "dassl/config/__init__.py"),
}
VIT_B_WIDTH = 768  # their MaPLe's prompt projections are hard-coded to ViT-B's image width


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=list(THEIR_TRAINERS), choices=list(THEIR_TRAINERS))
    parser.add_argument("--dpt-repo", default="", help=f"a clone of {REPOSITORIES['dpt_repo'][0]} (for DPT)")
    parser.add_argument("--coop-repo", default="", help=f"a clone of {REPOSITORIES['coop_repo'][0]} (CoOp, CoCoOp)")
    parser.add_argument("--maple-repo", default="", help=f"a clone of {REPOSITORY_URLS['maple_repo']} (MaPLe, IVLP)")
    parser.add_argument("--promptsrc-repo", default="", help=f"a clone of {REPOSITORY_URLS['promptsrc_repo']}")
    parser.add_argument("--dassl-repo", default="", help=f"a clone of {REPOSITORIES['dassl_repo'][0]}")
    parser.add_argument("--backbone", default="ViT-B/32", choices=[n for n in OPENAI_ARCHITECTURES if "ViT" in n])
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (after one warm-up)")
    parser.add_argument("--eval-images", type=int, default=20, help="images of the whole evaluation")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each side's process")
    add_debug_argument(parser)
    return parser


def check_repositories(args):
    """A UserError naming each clone that the chosen methods need and that is not there."""
    needed = sorted({"dassl_repo"} | {THEIR_TRAINERS[method][0] for method in args.methods})
    missing = [flag for flag in needed
               if not getattr(args, flag) or not osp.isfile(osp.join(getattr(args, flag), REPOSITORIES[flag][1]))]
    if missing:
        clones = "; ".join(f"--{flag.replace('_', '-')}: git clone {REPOSITORIES[flag][0]}" for flag in missing)
        raise UserError(
            f"The authors' code is not part of this project: clone it and give each clone's path ({clones})."
        )
    if "MaPLe" in args.methods and OPENAI_ARCHITECTURES[args.backbone]["vision_width"] != VIT_B_WIDTH:
        raise UserError(f"--backbone {args.backbone}: the authors' MaPLe runs only on ViT-B (its prompt projections "
                        f"are {VIT_B_WIDTH} wide); choose ViT-B/32 or ViT-B/16, or leave MaPLe out of --methods.")


def their_config(args, method):
    """The Dassl configuration of their trainer of `method` (Dassl's defaults, the same in the bundled
    engine), with their keys at the values of their scripts: those of our shipped configs, which MaPLe, IVLP
    and PromptSRC read as they are (the file `dpt-benchmark` builds our trainer from), in fp32."""
    cfg = get_cfg_default()
    cfg.TRAINER.COOP = CfgNode(dict(N_CTX=16, CSC=False, CTX_INIT="", PREC="fp32", CLASS_TOKEN_POSITION="end"))
    cfg.TRAINER.COCOOP = CfgNode(dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32"))
    cfg.TRAINER.VPT = CfgNode(dict(N_CTX=10, LN=False))
    cfg.TRAINER.SELECTED_COVPT = CfgNode(dict(CPN=10))
    cfg.TRAINER.TOPDOWN_SECOVPT = CfgNode(dict(BOTTOMLIMIT=12, LR=0.01))
    cfg.PRETRAIN = CfgNode(dict(C=30))
    cfg.TRAINER.ALPHA = 0.3
    cfg.DATASET.NAME = "EuroSAT"  # their zero-shot template comes from the dataset's name
    cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH = "sgd", 0.002, 10
    if method in THEIR_SUCCESSORS:
        node = THEIR_SUCCESSORS[method].config_node
        cfg.TRAINER[node] = CfgNode(new_allowed=True)
        cfg.merge_from_file(shipped_config(method))
        cfg.TRAINER[node].PREC = "fp32"
    size = OPENAI_ARCHITECTURES[args.backbone]["image_resolution"]
    cfg.MODEL.BACKBONE.NAME, cfg.INPUT.SIZE = args.backbone, (size, size)
    return cfg


def shipped_config(method):
    """The file of our trainer's shipped config (`default_config`), the one `dpt-benchmark` builds it from."""
    import trainers  # noqa: F401  (registers the trainers)
    from dassl_compat import TRAINER_REGISTRY
    from dpt_tools.config_files import resolve_config

    return resolve_config(TRAINER_REGISTRY.get(method).default_config, "trainers", trainer=method)


def side_row(args, side, method, weights, config_file):
    """Run one side of one method in a fresh process; its row (a dict)."""
    command = [
        sys.executable, "-m", "dpt_tools.versus_reference_side", side, method, "--weights", weights,
        "--backbone", args.backbone, "--input-size", str(OPENAI_ARCHITECTURES[args.backbone]["image_resolution"]),
        "--classes", str(args.classes), "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
        "--eval-images", str(args.eval_images), "--their-config", config_file,
    ]
    for option in REPOSITORY_OPTIONS:
        if getattr(args, option):
            command += [f"--{option.replace('_', '-')}", osp.abspath(getattr(args, option))]
    threads = str(args.threads)
    environment = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
    done = subprocess.run(command, capture_output=True, text=True, env=environment)
    if done.returncode != 0:
        raise UserError(f"The {side} side of {method} failed (exit status {done.returncode}):\n"
                        f"{done.stderr.strip()[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table_header(args):
    return [
        f"{args.backbone}, random weights, C = {args.classes}, batch {args.batch_size}, fp32, cpu, "
        f"{args.threads} threads per process, medians of {args.repeats}",
        "| method | side | training step, s | one evaluation batch, s: first / later | "
        f"evaluation of {args.eval_images} images, s | training step, RSS added / process peak, MiB |",
        "|---|---|---|---|---|---|",
    ]


def format_rows(method, theirs, ours):
    """Three markdown rows: theirs, ours, and how much faster and lighter ours is."""
    def seconds(row):
        return f"{row['train_s']:.3g} | {row['eval_first_s']:.3g} / {row['eval_later_s']:.3g} | {row['eval_set_s']:.3g}"

    def memory(row):
        return "n/a (no /proc)" if row["train_rss_mib"] is None else \
            f"{row['train_rss_mib']:,.0f} / {row['peak_rss_mib']:,.0f}"

    def faster(key):
        return f"{theirs[key] / ours[key]:.1f}x"

    def memory_ratio(key):
        return f"{ours[key] / theirs[key]:.2f}x"

    lighter = "n/a (no /proc)" if not theirs["train_rss_mib"] else \
        f"{memory_ratio('train_rss_mib')} / {memory_ratio('peak_rss_mib')}"
    return [
        f"| {method} | authors | {seconds(theirs)} | {memory(theirs)} |",
        f"| {method} | ours | {seconds(ours)} | {memory(ours)} |",
        f"| {method} | ours: faster / memory | {faster('train_s')} | {faster('eval_first_s')} / "
        f"{faster('eval_later_s')} | {faster('eval_set_s')} | {lighter} |",
    ]


def main(argv=None):
    """Print the table, three rows per method as soon as both sides are measured; returns the rows."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        check_repositories(args)
        print("\n".join(table_header(args)), flush=True)
        rows = {}
        with tempfile.TemporaryDirectory() as folder:
            weights = save_tiny_clip(osp.join(folder, "random_clip.pt"), **OPENAI_ARCHITECTURES[args.backbone])
            for method in args.methods:
                config_file = osp.join(folder, f"their_config_{method}.yaml")
                with open(config_file, "w") as config:
                    config.write(their_config(args, method).dump())
                rows[method] = {side: side_row(args, side, method, weights, config_file)
                                for side in ("theirs", "ours")}
                print("\n".join(format_rows(method, rows[method]["theirs"], rows[method]["ours"])), flush=True)
        return rows


if __name__ == "__main__":
    main()
