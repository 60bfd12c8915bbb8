"""Pretrain the toy CLIP (`dpt_models/weights/toyclip_vit.pt`) on procedural image-caption pairs, on CPU.

    python -m dpt_tools.pretrain_toy_clip                       # 800 steps, about 5-8 minutes on one CPU core
    python -m dpt_tools.pretrain_toy_clip --output /tmp/toy.pt --steps 50
    python -m dpt_tools.pretrain_toy_clip --evaluate dpt_models/weights/toyclip_vit.pt      # only the report

The run is seeded (model init and every batch), so the same command on the same machine and
thread count reproduces the file (checked: identical tensors). After training it reports, on the
test split of each downstream toy dataset (generated in memory), the zero-shot accuracy and the
accuracy of a linear probe on the frozen image features (fitted to the training split): the gap
between the two is what prompt tuning can learn.
"""
import argparse
import functools
import os
import os.path as osp

import torch

from dpt_models.clip_backbone import SHIPPED_WEIGHTS, clip
from dpt_models.templates import class_prompts, template_for
from dpt_toyworld.benchmarks import TOY_DATASETS, render_split
from dpt_toyworld.pretrain import ToyClipConfig, export_state_dict, images_to_tensor, pretrain
from dpt_toyworld.zeroshot import accuracy_of, image_features, linear_probe_accuracy, prompt_text_features

DEFAULT_OUTPUT = SHIPPED_WEIGHTS["ToyCLIP-ViT"]


def main(argv=None):
    defaults = ToyClipConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where to write the fp16 state dict")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (results depend on it)")
    parser.add_argument("--evaluate", metavar="WEIGHTS", help="do not train: report on this weight file")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.evaluate:
        return report(args.evaluate)
    config = ToyClipConfig(steps=args.steps, batch_size=args.batch_size, seed=args.seed)
    model = pretrain(config, log=functools.partial(print, flush=True))
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    torch.save(export_state_dict(model), args.output)
    print(f"Saved {args.output} ({osp.getsize(args.output) / 1e6:.1f} MB)")
    return report(args.output)


def report(weights_path):
    """Print, per toy dataset (seed 0), the saved model's zero-shot and linear-probe test accuracy;
    returns {dataset name: (zero-shot, linear probe)} in [0, 1]."""
    model = clip.model.build_model(torch.load(weights_path, weights_only=True)).float().eval()
    results = {}
    for name, spec in sorted(TOY_DATASETS.items()):
        train_images, train_labels = render_split(spec, "train")
        test_images, test_labels = render_split(spec, "test")
        test_features = image_features(model, images_to_tensor(test_images))  # [N, E], shared by both
        text_features = prompt_text_features(model, class_prompts(template_for(name), spec.classnames))
        zero_shot = accuracy_of(test_features @ text_features.t(), test_labels)
        train_features = image_features(model, images_to_tensor(train_images))
        probe = linear_probe_accuracy(train_features, train_labels, test_features, test_labels)
        results[name] = (zero_shot, probe)
        print(f"{name}: zero-shot {100 * zero_shot:.1f}%, linear probe {100 * probe:.1f}% on {len(test_labels)} "
              f"test images (chance {100 / len(spec.classnames):.1f}%)")
    return results


if __name__ == "__main__":
    main()
