"""Where do DPT's class-aware prompts look? Attention maps of a trained run, drawn over its images.

    dpt-visualize RUN_DIR --split test --num-images 8 --out figures/
    dpt-visualize RUN_DIR --images a.png b.jpg --out figures/

For a run of a trainer with class-aware visual prompts (DPT and its subclasses), rebuilds the model
from the run folder (its recorded config, the class names and weights of its last checkpoint; the
dataset is read only for the images of `--split`) and writes, per image, a PNG with the
image, the CLS token's attention over the patches in the last ViT block (heads averaged), and, for each
of the top `--classes` classes that the frozen zero-shot selector picked (name and selector score), the
CAVPT attention of that class's prompt over the patches in the last class-aware block; plus
`grid.png` with one row per image (image, CLS, top-1 class). Maps are the attention renormalised over
the patches (CLS and CAVPT's extra tokens left out), upsampled to the image and overlaid as heat maps.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from dassl_compat.images import to_rgb8
from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_tools.arguments import int_at_least
from dpt_tools.run_folder import build_run_model, run_dataset


def require_class_aware_prompts(run, run_dir):
    """The run's model (a RunModel's), if it has class-aware visual prompts (else a UserError)."""
    model = run.model
    if not hasattr(model, "cavpt") or not hasattr(model, "select_classes"):
        raise UserError(
            f"The run {run_dir} was trained with {run.cfg.TRAINER.NAME}, which has no class-aware visual prompts "
            "(CAVPT): there is no class-prompt attention to draw. Pass the run folder of a DPT training run."
        )
    return model


@torch.no_grad()
def trace_attention(model, images):
    """DPT's attention on images [B, 3, H, W] (the model in eval mode), from its forward with
    `return_attention=True`: a dict of `logits` [B, C], `class_indices` [B, K], `selector_scores` [B, K]
    (the zero-shot selector's softmax probabilities of the selected classes), `cavpt` [L_ca, B, K, N] and
    `cls` [B, N] (the attention maps over CLS + patches, `DPTCLIP`'s docstring)."""
    outputs = model(images, return_attention=True)
    return {
        "logits": outputs["logits"],
        "class_indices": outputs["class_indices"],
        "selector_scores": outputs["selector_logits"].softmax(dim=-1).gather(1, outputs["class_indices"]),
        "cavpt": outputs["cavpt_attention"],
        "cls": outputs["cls_attention"],
    }


def patch_map(weights):
    """Attention over CLS + patches [..., 1 + g*g] -> over the patches only, renormalised: [..., g, g]."""
    patches = weights[..., 1:]
    grid = int(round(patches.shape[-1] ** 0.5))
    patches = patches / patches.sum(dim=-1, keepdim=True)
    return patches.reshape(*patches.shape[:-1], grid, grid)


def object_patch_share(mask, grid):
    """The share of each patch's pixels that belong to the object: mask [H, W] -> [grid, grid]."""
    mask = torch.as_tensor(mask, dtype=torch.float32)[None, None]
    return F.adaptive_avg_pool2d(mask, grid)[0, 0]


def object_concentration(patch_attention, mask):
    """Attention mass on the object's pixels / the object's share of the image (1 = no preference).

    patch_attention [g, g] sums to 1 over the patches; mask [H, W] in {0, 1}, H and W multiples of g.
    Each patch's mass is spread evenly over its pixels.
    """
    coverage = object_patch_share(mask, patch_attention.shape[-1])
    return float((patch_attention * coverage).sum() / coverage.mean())


def load_image_files(paths):
    """PIL RGB images of `paths`; a path that is no image is a UserError."""
    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(to_rgb8(image))
        except (UnidentifiedImageError, IsADirectoryError, FileNotFoundError) as error:
            raise UserError(
                f"{path} is not an image file ({type(error).__name__}): pass PNG or JPEG files to --images, "
                "or use --split test to draw images of the run's dataset."
            ) from None
    return images


def draw_row(axes, image, rows, title, fontsize):
    """The image in axes[0] (titled `title`), then each (label, map [g, g]) of `rows` overlaid on it, on one
    colour scale (0 to the row's largest patch weight: a flat map looks flat)."""
    pixels = np.asarray(image)
    axes[0].imshow(pixels)
    axes[0].set_title(title, fontsize=fontsize)
    vmax = max(float(heat.max()) for _, heat in rows)
    for axis, (label, heat) in zip(axes[1:], rows):
        axis.imshow(pixels)
        axis.imshow(upsample(heat, pixels.shape[:2]), cmap="jet", alpha=0.5, vmin=0, vmax=vmax)
        axis.set_title(label, fontsize=fontsize)
    for axis in axes:
        axis.axis("off")


def draw_figure(path, image, rows, title):
    """One figure: the image, then one heat map per (label, map [g, g]) in `rows`, side by side, on one
    colour scale (0 to the largest patch weight of the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 1 + len(rows), figsize=(2.2 * (1 + len(rows)), 2.6), squeeze=False)
    draw_row(axes[0], image, rows, "image", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def draw_grid(path, entries):
    """`entries`: (image, [(label, map), ...], title) per image -> one row each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_cols = 1 + max(len(rows) for _, rows, _ in entries)
    fig, axes = plt.subplots(len(entries), n_cols, figsize=(2.0 * n_cols, 2.1 * len(entries)), squeeze=False)
    for axes_row, (image, rows, title) in zip(axes, entries):
        draw_row(axes_row, image, rows, title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def upsample(heat, size):
    """A patch map [g, g] -> [H, W] (bilinear), for the overlay."""
    return F.interpolate(heat[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def visualize(run_dir, out_dir, split="test", num_images=8, image_files=None, n_classes=3, root=None):
    """Write one PNG per image and grid.png into `out_dir`; returns the paths written."""
    run = build_run_model(run_dir, root=root)
    model = require_class_aware_prompts(run, run_dir)
    classnames = run.classnames
    if image_files:
        pil_images, names, labels = load_image_files(image_files), image_files, [None] * len(image_files)
    else:
        items = getattr(run_dataset(run.cfg), split)
        chosen = np.linspace(0, len(items) - 1, min(num_images, len(items))).round().astype(int)
        items = [items[i] for i in chosen]
        pil_images = load_image_files([item.impath for item in items])
        names = [f"{osp.basename(osp.dirname(item.impath))}_{osp.basename(item.impath)}" for item in items]
        labels = [item.classname for item in items]
    transform = run.test_transform()
    batch = torch.stack([transform(image) for image in pil_images]).to(run.device)
    traced = trace_attention(model, batch)
    mean = torch.tensor(run.input_cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    std = torch.tensor(run.input_cfg.INPUT.PIXEL_STD).view(3, 1, 1)
    # What the model saw, as uint8 [B, H, W, 3].
    seen = ((batch.cpu() * std + mean).clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    os.makedirs(out_dir, exist_ok=True)
    written, entries = [], []
    for i, (name, label) in enumerate(zip(names, labels)):
        shown = seen[i]
        prediction = classnames[int(traced["logits"][i].argmax())]
        title = f"predicted: {prediction}" + (f"   label: {label}" if label is not None else "")
        rows = [("CLS, last block", patch_map(traced["cls"][i]))]
        for k in range(min(n_classes, traced["class_indices"].shape[1])):
            class_name = classnames[int(traced["class_indices"][i, k])]
            score = float(traced["selector_scores"][i, k])
            rows.append((f"{class_name} ({score:.2f})", patch_map(traced["cavpt"][-1, i, k])))
        path = osp.join(out_dir, f"{i:03d}_{osp.splitext(osp.basename(name))[0]}.png")
        draw_figure(path, shown, rows, title)
        written.append(path)
        entries.append((shown, rows[:2], title.replace("   ", "\n")))
    grid_path = osp.join(out_dir, "grid.png")
    draw_grid(grid_path, entries)
    return written + [grid_path]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="dpt-visualize", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", help="a DPT train.py run folder (its --output-dir)")
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    parser.add_argument("--images", nargs="+", help="image files (default: images of the run's dataset split)")
    parser.add_argument("--split", default="test", choices=("train_x", "val", "test"), help="dataset split")
    parser.add_argument("--num-images", type=int_at_least(1), default=8, help="images of the split, evenly spaced")
    parser.add_argument("--classes", type=int_at_least(1), default=3,
                        help="selected classes drawn per image (top first)")
    parser.add_argument("--root", help="the datasets' root, if not the run's DATASET.ROOT (read for --split images)")
    add_debug_argument(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug):
        paths = visualize(args.run_dir, args.out, args.split, args.num_images, args.images, args.classes, args.root)
    print(f"Wrote {len(paths)} figures to {args.out} (grid: {paths[-1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
