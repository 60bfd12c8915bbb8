"""Fixtures of the authors' KgCoOp and ProGrad (github.com/htyao89/KgCoOp) on the tiny CLIP, for the fidelity
tests (tests/test_kgcoop.py, tests/test_prograd.py):

    git clone https://github.com/htyao89/KgCoOp /path/to/KgCoOp
    python -m dpt_tools.fidelity_kgcoop --kgcoop-repo /path/to/KgCoOp --out tests/fixtures/

Each case runs their trainer in its own process (`fidelity_kgcoop_side`), on CPU in fp32, and writes
`<case>.pt`: their trainable values, logits, each loss term and the gradient of every trainable parameter
after their step (for ProGrad also each loss's own gradient and their projection with the distillation
loss negated).
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import tempfile

from dassl_compat.errors import UserError, add_debug_argument, exit_on_user_error

from .fidelity_kgcoop_side import CASES

THEIR_FILES = ("KgCoOp/trainers/kgcoop.py", "KgCoOp/trainers/prograd.py", "Dassl.ProGrad.pytorch/dassl/__init__.py")
PROJECT_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TINY_CLIP = osp.join(PROJECT_ROOT, "tests", "fixtures", "clip_tiny_fp16.pt")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kgcoop-repo", required=True, help="a clone of github.com/htyao89/KgCoOp")
    parser.add_argument("--weights", default=TINY_CLIP, help="the tiny CLIP's OpenAI state dict")
    parser.add_argument("--out", default="tests/fixtures", help="the folder the fixtures are written to")
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    add_debug_argument(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        write_fixtures(args)


def write_fixtures(args):
    """Check the clone and the weights, then run each case in its own process."""
    missing = [name for name in THEIR_FILES if not osp.isfile(osp.join(args.kgcoop_repo, name))]
    if missing:
        raise UserError(f"--kgcoop-repo {args.kgcoop_repo} is not a clone of github.com/htyao89/KgCoOp (it lacks "
                        f"{', '.join(missing)}): git clone https://github.com/htyao89/KgCoOp and give its path.")
    if not osp.isfile(args.weights):
        raise UserError(f"--weights {args.weights}: no such file (the tiny CLIP, tests/fixtures/clip_tiny_fp16.pt)")
    os.makedirs(args.out, exist_ok=True)
    from dassl_compat import get_cfg_default  # Dassl's defaults, handed to their side as YAML

    with tempfile.TemporaryDirectory() as folder:
        defaults = osp.join(folder, "dassl_defaults.yaml")
        with open(defaults, "w") as file:
            file.write(get_cfg_default().dump())
        for case in args.cases:
            command = [sys.executable, "-m", "dpt_tools.fidelity_kgcoop_side", case,
                       "--kgcoop-repo", osp.abspath(args.kgcoop_repo), "--weights", osp.abspath(args.weights),
                       "--out", osp.abspath(args.out), "--dassl-defaults", defaults]
            done = subprocess.run(command, capture_output=True, text=True, cwd=PROJECT_ROOT)
            if done.returncode != 0:
                raise UserError(
                    f"Their {case} run failed (exit status {done.returncode}):\n{done.stderr.strip()[-3000:]}")
            print(f"wrote {osp.join(args.out, case + '.pt')}")


if __name__ == "__main__":
    main()
