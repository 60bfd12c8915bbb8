"""What did the text prompts learn? The vocabulary words nearest to each learned context vector.

    dpt-interpret RUN_DIR [--topk 5]

For a trained run of any trainer with a text context (CoOp, CoCoOp, VLP, DPT), loads the context
vectors ctx [M, W] (class-specific: [C, M, W]) from the run's `prompt_learner` checkpoint and the
token-embedding table [V, W] of the run's CLIP, and prints, per context position, the `topk`
vocabulary tokens at the smallest Euclidean distance, as the CoOp repository's `interpret_prompt.py`
does. A learned vector usually lies far from every word (CoOp, section 4.3): the distances say how far.
"""
import argparse
import sys

import torch
from tabulate import tabulate

from dassl_compat import load_checkpoint
from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_models.text import tokenizer_of
from dpt_tools.arguments import int_at_least
from dpt_tools.run_folder import checkpoint_files, load_run_config
from trainers.base import load_backbone

CONTEXT_KEY = "prompt_learner.ctx"


def learned_context(run_dir):
    """The run's text context vectors: [M, W] (shared) or [C, M, W] (class-specific)."""
    for name, path in checkpoint_files(run_dir).items():
        for key, value in load_checkpoint(path)["state_dict"].items():
            if f"{name}.{key}".endswith(CONTEXT_KEY):
                return value.float()
    raise UserError(
        f"{run_dir} has no learned text context (no '{CONTEXT_KEY}' in its checkpoints): its trainer "
        "(e.g. VPT, LinearProbe) does not tune text prompts. Pass the run folder of CoOp, CoCoOp, VLP or DPT."
    )


def token_text(tokenizer, token_id):
    """A vocabulary token as text; '</w>' (end of word) is dropped, a word piece keeps a trailing '~'."""
    token = tokenizer.decoder[token_id]
    return token[: -len("</w>")] if token.endswith("</w>") else token + "~"


@torch.no_grad()
def nearest_words(context, token_embedding, topk):
    """For context [M, W] and embeddings [V, W]: (distances [M, topk], token ids [M, topk]), nearest first."""
    distances = torch.cdist(context, token_embedding, compute_mode="donot_use_mm_for_euclid_dist")  # [M, V]
    return distances.topk(topk, dim=-1, largest=False)


def interpret(run_dir, topk=5):
    """Tables (one per context position, per class when class-specific) as text."""
    context = learned_context(run_dir)
    clip_model = load_backbone(load_run_config(run_dir))
    token_embedding = clip_model.token_embedding.weight.float()
    tokenizer = tokenizer_of(clip_model)  # OpenAI's BPE or the open_clip model's own
    if context.shape[-1] != token_embedding.shape[1]:
        raise UserError(
            f"The context vectors of {run_dir} are {context.shape[-1]}-dimensional but the run's CLIP "
            f"({clip_model.token_embedding.weight.shape}) embeds tokens in {token_embedding.shape[1]}: the "
            "checkpoint was trained with another backbone than its log.txt names."
        )
    topk = min(topk, token_embedding.shape[0])
    groups = [("", context)] if context.dim() == 2 else [(f"class {c}, ", ctx) for c, ctx in enumerate(context)]
    blocks = []
    for prefix, ctx in groups:
        distances, token_ids = nearest_words(ctx, token_embedding, topk)
        for position in range(ctx.shape[0]):
            rows = [
                (rank + 1, token_text(tokenizer, int(token_ids[position, rank])),
                 f"{float(distances[position, rank]):.4f}")
                for rank in range(topk)
            ]
            title = f"{prefix}context position {position + 1} (norm {float(ctx[position].norm()):.4f})"
            blocks.append(title + "\n" + tabulate(rows, headers=("rank", "token", "distance")))
    return "\n\n".join(blocks) + "\n"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="dpt-interpret", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a train.py run folder (its --output-dir) of a trainer with text context")
    parser.add_argument("--topk", type=int_at_least(1), default=5,
                        help="nearest tokens per context position (default 5)")
    add_debug_argument(parser)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error("--topk must be >= 1")
    with exit_on_user_error(args.debug):
        sys.stdout.write(interpret(args.run_dir, args.topk))
    return 0


if __name__ == "__main__":
    sys.exit(main())
