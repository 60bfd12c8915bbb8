"""Generate the downstream toy datasets (ToyFog, ToyDusk) under a data root.

    python -m dpt_tools.make_toy_data --root $DATA

writes `$DATA/toy_fog/` and `$DATA/toy_dusk/` in the layout
`{train,val,test}/<class_name_with_underscores>/<index>.png`. Generation is deterministic (the
images depend only on the dataset and --seed); an existing dataset folder is left as it is. The
registered datasets generate themselves the same way on first use, with the default seed.
"""
import argparse
import os.path as osp

from dpt_toyworld.benchmarks import TOY_DATASETS, write_toy_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="data root (DATASET.ROOT)")
    parser.add_argument("--seed", type=int, default=0, help="generation seed (the registered datasets use 0)")
    parser.add_argument("--datasets", nargs="+", default=sorted(TOY_DATASETS), choices=sorted(TOY_DATASETS))
    args = parser.parse_args(argv)
    for name in args.datasets:
        spec = TOY_DATASETS[name]
        existed = osp.isdir(osp.join(args.root, spec.dataset_dir))
        path = write_toy_dataset(spec, args.root, seed=args.seed)
        counts = ", ".join(f"{split} {n}" for split, n in spec.counts.items())
        state = "exists, left as is" if existed else "written"
        print(f"{name}: {path} ({state}); {len(spec.classnames)} classes, per class {counts}")


if __name__ == "__main__":
    main()
