"""The shipped config files and the names that select them.

In a clone they are the repository's `configs/`; in an installed wheel the same files are package data
at `dpt_tools/configs/` (setup.py maps one to the other). A config argument is a file path, or a
shipped name: `DPT/vit_b16` (or `vit_b16` with `--trainer DPT`) for `configs/trainers/DPT/vit_b16.yaml`,
`eurosat` for `configs/datasets/eurosat.yaml`; a repository path such as `configs/datasets/eurosat.yaml`
also resolves outside a clone.

Nothing here imports torch or the engine (`dpt-config` runs inside `$(...)` on command lines); UserError
comes from `dpt_models.errors`, which imports neither.
"""
import os.path as osp
from pathlib import Path

from dpt_models.errors import UserError

_PACKAGE_DIR = Path(__file__).resolve().parent
KINDS = ("trainers", "datasets")


def shipped_config_root():
    """`dpt_tools/configs` in an installed wheel, else the clone's `configs/` next to this package."""
    for root in (_PACKAGE_DIR / "configs", _PACKAGE_DIR.parent / "configs"):
        if (root / "trainers").is_dir():
            return root
    raise UserError(f"The shipped configs are missing: neither {_PACKAGE_DIR / 'configs'} nor "
                    f"{_PACKAGE_DIR.parent / 'configs'} exists. Reinstall the package.")


def shipped_names(kind):
    """Sorted names of the shipped configs of `kind` ("trainers": `DPT/vit_b16`, "datasets": `eurosat`)."""
    folder = shipped_config_root() / kind
    return sorted(path.relative_to(folder).with_suffix("").as_posix() for path in folder.rglob("*.yaml"))


def resolve_config(value, kind, trainer=""):
    """The file for a config argument: `value` itself if it is a file, else the shipped config it names.

    kind: "trainers" (`--config-file`) or "datasets" (`--dataset-config-file`); trainer: the run's
    TRAINER.NAME, so that `vit_b16` means `<trainer>/vit_b16`. An empty value stays empty.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not value or osp.isfile(value):
        return value
    name = Path(value).as_posix()
    for prefix in (f"configs/{kind}/", f"{kind}/"):
        name = name[len(prefix):] if name.startswith(prefix) else name
    name = name[: -len(".yaml")] if name.endswith(".yaml") else name
    candidates = [name] if "/" in name or kind == "datasets" or not trainer else [f"{trainer}/{name}", name]
    folder = shipped_config_root() / kind
    for candidate in candidates:
        path = folder / f"{candidate}.yaml"
        if path.is_file():
            return str(path)
    flag = "--config-file" if kind == "trainers" else "--dataset-config-file"
    raise UserError(
        f"{flag} {value}: no such file, and no shipped config of that name. Check the path, or give one of "
        f"the shipped {kind} configs: {', '.join(shipped_names(kind))}."
    )


def main(argv=None):
    """`dpt-config`: list the shipped config names, or print the file of each name given."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("names", nargs="*", help="trainer config names (DPT/vit_b16) or dataset names (eurosat)")
    args = parser.parse_args(argv)
    if not args.names:
        for kind in KINDS:
            print(f"{kind}: {' '.join(shipped_names(kind))}")
        return 0
    for name in args.names:
        kind = "trainers" if "/" in name else "datasets"
        try:
            print(resolve_config(name, kind))
        except UserError as err:
            raise SystemExit(f"Error: {err}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
