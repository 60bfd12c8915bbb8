"""Write the fidelity fixtures of MaPLe, IVLP and PromptSRC from the authors' own code.

    python -m dpt_tools.fidelity_multimodal --maple-repo ../multimodal-prompt-learning \\
        --promptsrc-repo ../PromptSRC --dassl ../Dassl.pytorch --out tests/fixtures/

Each method runs in its own process (`fidelity_multimodal_side`) that imports the authors' trainer from
their clone (MaPLe and IVLP from muzairkhattak/multimodal-prompt-learning, PromptSRC from
muzairkhattak/PromptSRC) and Dassl from `--dassl` (a clone, or the 0.6.3 wheel file: Python imports
from it directly; Dassl's own requirements must be installed in the `--python` interpreter), on the
CPU in fp32. IVLP and PromptSRC run on the tiny CLIP of tests/fixtures/clip_tiny_fp16.pt; MaPLe
hard-codes ViT-B's widths (768 image, 512 text), so it runs on a small CLIP with those widths drawn
from a fixed seed (`MAPLE_CLIP`, redrawn by the tests; no weight file is written). The fixtures
(`<method>_reference.pt`) hold the inputs, the trainable values, the eval logits, their loss and the
gradient of every trainable parameter at the first step (a seeded sketch of the large MaPLe
matrices), and for PromptSRC each loss term, a later epoch's loss and gradients and GPA's weights,
inputs and result. tests/test_successors_fidelity.py checks our models against them.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile

import torch

from dassl_compat.errors import UserError, exit_on_user_error
from dpt_tools.fidelity_multimodal_side import METHODS
from dpt_tools.their_code import REPOSITORY_URLS, THEIR_SUCCESSORS

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CLIP = osp.join(ROOT, "tests", "fixtures", "clip_tiny_fp16.pt")
# MaPLe's small CLIP: ViT-B's widths, 2 blocks per tower, 32 px in 2 x 2 patches of 16, embed 32.
MAPLE_CLIP = {"embed_dim": 32, "image_resolution": 32, "vision_layers": 2, "vision_width": 768,
              "vision_patch_size": 16, "transformer_width": 512, "transformer_layers": 2, "seed": 2023}
INPUT_SIZE = 32


def maple_clip_state_dict():
    """MaPLe's small CLIP (`MAPLE_CLIP`), the same tensors at fixture time and at test time."""
    from dpt_models.clip_backbone import tiny_clip_state_dict

    return tiny_clip_state_dict(**MAPLE_CLIP)


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--maple-repo", default="", help=f"a clone of {REPOSITORY_URLS['maple_repo']}")
    parser.add_argument("--promptsrc-repo", default="", help=f"a clone of {REPOSITORY_URLS['promptsrc_repo']}")
    parser.add_argument("--dassl", required=True, help="a Dassl.pytorch clone or the dassl-0.6.3 wheel file")
    parser.add_argument("--out", default=osp.join(ROOT, "tests", "fixtures"), help="the fixtures' folder")
    parser.add_argument("--methods", nargs="+", default=["maple", "ivlp", "promptsrc"], choices=list(METHODS))
    parser.add_argument("--python", default=sys.executable, help="the interpreter that runs the authors' code")
    return parser


def check_repository(path, flag, method):
    if not path or not osp.isfile(osp.join(path, "trainers", "__init__.py")):
        raise UserError(f"{method} needs --{flag.replace('_', '-')}: a clone of the authors' repository (a folder "
                        f"with trainers/ and clip/: git clone {REPOSITORY_URLS[flag]}), got {path!r}")


def run_method(args, method, workdir):
    flag = THEIR_SUCCESSORS[METHODS[method][0]].repository
    repository = getattr(args, flag)
    check_repository(repository, flag, method)
    weights = TINY_CLIP
    if method == "maple":
        weights = osp.join(workdir, "maple_clip.pt")
        torch.save({k: v.half() for k, v in maple_clip_state_dict().items()}, weights)
    out = osp.join(args.out, f"{method}_reference.pt")
    command = [args.python, "-m", "dpt_tools.fidelity_multimodal_side", method, "--repo", osp.abspath(repository),
               "--dassl", osp.abspath(args.dassl), "--weights", weights, "--input-size", str(INPUT_SIZE),
               "--out", out]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise UserError(f"The authors' {method} failed in {args.python} (their code, Dassl and its requirements "
                        f"must import there):\n{result.stderr[-3000:]}")
    print(f"{method}: wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB)")


def main(argv=None):
    args = build_parser().parse_args(argv)
    with exit_on_user_error():
        if not osp.exists(args.dassl):
            raise UserError(f"--dassl {args.dassl} does not exist: give a Dassl.pytorch clone or the wheel file")
        os.makedirs(args.out, exist_ok=True)
        with tempfile.TemporaryDirectory() as workdir:
            for method in args.methods:
                run_method(args, method, workdir)


if __name__ == "__main__":
    main()
