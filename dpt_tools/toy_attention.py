"""Do DPT's class-aware prompts look at the object? Measured on a toy test set, whose object pixels are known.

    python -m dpt_tools.toy_attention output/demo/toy_fog/DPT/toy_16shots/seed1 [--untrained]

For every test image, the attention of each selected class's prompt over the patches (last
class-aware block, renormalised over the patches) puts some mass on the object's pixels (each patch's
mass spread evenly over its pixels); divided by the object's share of the image, that is 1 when the
prompt has no preference, above 1 when it concentrates on the object. Reported as the mean over the
test images for the label's prompt (images whose label is among the selected classes), for the other
classes' prompts, and for the CLS token in the last block. `--untrained` measures the same model with
its learned parameters left at their initialisation (the baseline the training should move away from).
"""
import argparse
import os.path as osp
import sys

import numpy as np
import torch

from dpt_models.errors import UserError
from dpt_tools.run_folder import build_run_model, run_dataset
from dpt_tools.visualize import load_image_files, object_concentration, patch_map, trace_attention
from dpt_toyworld.benchmarks import TOY_DATASETS, object_mask


def toy_spec_of(cfg):
    """The ToyDatasetSpec of a run's dataset (DATASET.NAME ToyFog or ToyDusk)."""
    if cfg.DATASET.NAME not in TOY_DATASETS:
        raise UserError(
            f"The run's dataset {cfg.DATASET.NAME} is not a toy dataset ({sorted(TOY_DATASETS)}): its object "
            "pixels are unknown. Pass a DPT run on toy_fog or toy_dusk."
        )
    return TOY_DATASETS[cfg.DATASET.NAME]


def object_attention_ratios(run_dir, untrained=False, batch_size=200):
    """{"label": [n], "other": [m], "cls": [N]}: concentration ratios over the run's toy test set."""
    run = build_run_model(run_dir, trained=not untrained)  # untrained: same model and seed, at initialisation
    spec = toy_spec_of(run.cfg)
    folders = spec.folder_names()
    items = run_dataset(run.cfg).test
    transform = run.test_transform()
    ratios = {"label": [], "other": [], "cls": []}
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = torch.stack([transform(image) for image in load_image_files([i.impath for i in chunk])])
        traced = trace_attention(run.model, images.to(run.device))
        for row, item in enumerate(chunk):
            class_index = folders.index(osp.basename(osp.dirname(item.impath)))
            image_index = int(osp.splitext(osp.basename(item.impath))[0])
            mask = object_mask(spec, "test", class_index, image_index)
            ratios["cls"].append(object_concentration(patch_map(traced["cls"][row].cpu()), mask))
            for k, selected in enumerate(traced["class_indices"][row].tolist()):
                ratio = object_concentration(patch_map(traced["cavpt"][-1, row, k].cpu()), mask)
                ratios["label" if run.classnames[selected] == item.classname else "other"].append(ratio)
    return {key: np.asarray(values) for key, values in ratios.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", help="a DPT run folder on ToyFog or ToyDusk")
    parser.add_argument("--untrained", action="store_true", help="measure the run's model at initialisation")
    args = parser.parse_args(argv)
    ratios = object_attention_ratios(args.run_dir, args.untrained)
    print("attention on the object / object's share of the image (1 = no preference), test set:")
    for key, label in (("label", "label's prompt"), ("other", "other selected classes' prompts"),
                       ("cls", "CLS token, last block")):
        values = ratios[key]
        print(f"  {label:>32}: mean {values.mean():.2f}, median {np.median(values):.2f}, "
              f"above 1 for {100 * (values > 1).mean():.0f}% ({len(values)} maps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
