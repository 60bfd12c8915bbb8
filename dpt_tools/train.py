"""Train or evaluate a trainer with CoOp's command line (Dassl config files + KEY VALUE opts).

    python train.py --root $DATA --trainer DPT --dataset-config-file configs/datasets/eurosat.yaml \
        --config-file configs/trainers/DPT/vit_b16.yaml --output-dir output/run --seed 1 \
        DATASET.NUM_SHOTS 16
    dpt-train --root $DATA --trainer DPT --dataset-config-file eurosat --config-file vit_b16 ...

`python train.py` in a clone and the installed `dpt-train` run this module's `main`. A config argument
is a file or a shipped config name (dpt_tools.config_files; `dpt-config` lists them).
"""
import argparse
import difflib
import importlib
import importlib.util
import os
import re
import sys

import torch
import yaml

import clip_datasets  # noqa: F401  (registers the datasets)
import trainers  # noqa: F401  (registers the trainers)
from dassl_compat import (
    DATASET_REGISTRY,
    TRAINER_REGISTRY,
    build_trainer,
    collect_env_info,
    get_cfg_default,
    set_random_seed,
    setup_logger,
)
from dpt_models.errors import UserError, add_debug_argument, exit_on_user_error
from dpt_runs.output_folder import check_recorded_config, lock_output_folder, record_run, tidy_output_folder
from dpt_tools.config_files import resolve_config
from trainers.config import check_cfg_options, extend_cfg


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=str, default="", help="path to the datasets ($DATA)")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory to resume from")
    parser.add_argument("--seed", type=int, default=None, help="seed (0 included); none keeps SEED from the config")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="trainer config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="dataset config file")
    parser.add_argument("--trainer", type=str, default="", help="name of the trainer")
    parser.add_argument("--backbone", type=str, default="", help="CLIP backbone name (MODEL.BACKBONE.NAME)")
    parser.add_argument("--head", type=str, default="", help="name of the head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load the model from this directory for eval-only")
    parser.add_argument("--load-epoch", type=int, help="load the model weights saved at this epoch")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument(
        "--eval-initial-prompts",
        action="store_true",
        help="with --eval-only and no --model-dir: evaluate the untrained initial prompts on purpose",
    )
    parser.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="load --model-dir weights of another trainer, or class-specific weights of other class names",
    )
    parser.add_argument(
        "--compare-recorded-config",
        action="store_true",
        help="only compare the options with the run recorded in --output-dir (exit 2 naming the keys that differ)",
    )
    parser.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module or .py file that registers your own trainers or datasets first; "
        "its extend_cfg(cfg), if it has one, adds config keys (repeatable)",
    )
    add_debug_argument(parser)
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="modify config options (KEY VALUE)")
    return parser


def reset_cfg(cfg, args):
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed is not None:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


TYPE_MISMATCH = re.compile(
    r"Type mismatch \(<class '(?P<expected>\w+)'> vs\. <class '(?P<given>\w+)'>\) "
    r"with values \((?P<default>.*) vs\. (?P<value>.*)\) for config key: (?P<key>\S+)",
    re.DOTALL,
)


UNKNOWN_KEY = re.compile(r"Non-existent (?:config )?key: (?P<key>[\w.]+)")


def full_keys(node, prefix=""):
    """Every leaf key of a config node, dotted ("OPTIM.LR")."""
    keys = []
    for name, value in node.items():
        keys.extend(full_keys(value, f"{prefix}{name}.") if isinstance(value, dict) else [prefix + name])
    return keys


def config_error(source, err, cfg):
    """The UserError for a config file or option list that yacs or YAML refused; `source` names it."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return UserError(
            f"{source} is not valid YAML: {err.problem} at line {mark.line + 1}, column {mark.column + 1}. "
            "Fix the syntax there (`KEY: value` lines, nested keys indented by spaces, lists in [ ])."
        )
    if isinstance(err, yaml.YAMLError):
        return UserError(f"{source} is not valid YAML ({err}). Fix its syntax.")
    unknown = UNKNOWN_KEY.search(str(err))
    if unknown:
        close = difflib.get_close_matches(unknown["key"], full_keys(cfg), n=3, cutoff=0.6)
        hint = f" Do you mean {', '.join(close)}?" if close else ""
        return UserError(
            f"Config error in {source}: unknown key {unknown['key']}.{hint} Every key must exist in Dassl's "
            "defaults or in an extend_cfg (each trainers/<method>.py declares its TRAINER.<NAME> keys; a --plugin "
            "its own); fix the spelling."
        )
    mismatch = TYPE_MISMATCH.search(str(err))
    if mismatch:
        return UserError(
            f"Config error in {source}: {mismatch['key']} takes a value of type {mismatch['expected']}, like its "
            f"default ({mismatch['default']}), but got {mismatch['value']!r}. Give it a value of type "
            f"{mismatch['expected']}."
        )
    return UserError(
        f"Config error in {source}: {err}. A config file maps keys to values (`OPTIM:` then `  LR: 0.002`); "
        "command-line options are KEY VALUE pairs of existing keys."
    )


def _merge(cfg, source, merge):
    """Run a yacs merge into cfg, turning its errors (and YAML's) into a UserError that names `source`."""
    try:
        merge()
    except (yaml.YAMLError, KeyError, ValueError, TypeError, AttributeError, AssertionError) as err:
        raise config_error(source, err, cfg) from err


def merge_file(cfg, path, option):
    """Merge the YAML file given with `option` into cfg."""
    if not os.path.isfile(path):
        raise UserError(f"{option} {path}: no such file. Check the path (configs/ holds the shipped ones).")
    _merge(cfg, path, lambda: cfg.merge_from_file(path))


def import_plugin(name):
    """Import a plugin by module name (from the working directory too) or by .py file path."""
    if name.endswith(".py"):
        if not os.path.isfile(name):
            raise UserError(f"--plugin {name}: no such file. Give the path of a .py file or an importable module name.")
        module_name = os.path.splitext(os.path.basename(name))[0]
        loaded = sys.modules.get(module_name)
        if loaded is not None and getattr(loaded, "__file__", None) == os.path.abspath(name):
            return loaded  # already imported (and its trainers registered) in this process
        spec = importlib.util.spec_from_file_location(module_name, os.path.abspath(name))
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name.split(".")[0] and err.name != name:
            raise  # the plugin itself imports something missing: its own traceback says what
        raise UserError(
            f"--plugin {name}: no module of that name. Give an importable module name or the path of a .py file."
        ) from err


def default_cfg(plugins=()):
    """Dassl's defaults -> extend_cfg (ours, then the plugins')."""
    cfg = get_cfg_default()
    extend_cfg(cfg)
    for plugin in plugins:
        if hasattr(plugin, "extend_cfg"):
            plugin.extend_cfg(cfg)
    return cfg


def setup_cfg(args, plugins=()):
    """Defaults -> extend_cfg (ours, then the plugins') -> dataset yaml -> trainer yaml -> CLI args
    -> opts -> freeze."""
    cfg = default_cfg(plugins)
    if args.dataset_config_file:
        merge_file(cfg, resolve_config(args.dataset_config_file, "datasets"), "--dataset-config-file")
    if args.config_file:
        merge_file(cfg, resolve_config(args.config_file, "trainers", trainer=args.trainer), "--config-file")
    reset_cfg(cfg, args)
    if args.opts and len(args.opts) % 2:
        raise UserError(
            f"Config options must come in KEY VALUE pairs, got an odd number of words ({len(args.opts)}, the last "
            f"is {args.opts[-1]!r}). Give a value after each key (options go last, after every --flag)."
        )
    _merge(cfg, "the command-line options", lambda: cfg.merge_from_list(args.opts or []))
    cfg.freeze()
    return cfg


def check_registered(registry, name, key, how):
    """A UserError unless `name` (the value of config `key`, set `how`) is registered, suggesting close names."""
    names = sorted(registry.registered_names())
    if name in names:
        return
    if not name:
        raise UserError(f"{key} is empty: {how}. Registered: {', '.join(names)}.")
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f" Do you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UserError(
        f"{key} {name!r} is not registered.{hint} Registered: {', '.join(names)}. "
        "Fix the name, or register your own with --plugin."
    )


def check_trainer_sections(cfg, defaults):
    """A UserError when the config files or options set keys of another trainer's TRAINER.<NODE> section
    (values other than the defaults): the run's trainer would ignore them without a word. A trainer also
    reads the sections of the trainers whose config files it runs with (`shares_config_files_with`)."""
    trainer = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    own = getattr(trainer, "config_node", "")
    if not own:  # a trainer of a plugin: its sections are its own business
        return
    shared = {TRAINER_REGISTRY.get(name).config_node for name in getattr(trainer, "shares_config_files_with", ())}
    owners = {}
    for name in sorted(TRAINER_REGISTRY.registered_names()):
        owners.setdefault(getattr(TRAINER_REGISTRY.get(name), "config_node", ""), name)
    foreign = [
        f"TRAINER.{node}.{key}"
        for node, owner in owners.items()
        if node and node != own and node not in shared and node in cfg.TRAINER
        for key, value in cfg.TRAINER[node].items()
        if value != defaults.TRAINER[node].get(key)
    ]
    if foreign:
        nodes = sorted({key.split(".")[1] for key in foreign})
        raise UserError(
            f"The config sets {', '.join(foreign)}: options of {', '.join(owners[n] for n in nodes)}, which "
            f"{cfg.TRAINER.NAME} does not read (it reads TRAINER.{own}); the run would ignore them without a word. "
            f"Use a config file of {cfg.TRAINER.NAME} (configs/trainers/{cfg.TRAINER.NAME}/; `dpt-config` lists "
            f"them), or run the trainer the config is for (--trainer {owners[nodes[0]]})."
        )


def print_args(args, cfg):
    print("***************")
    print("** Arguments **")
    print("***************")
    for key in sorted(args.__dict__):
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def restore_stdout(console):
    """Undo setup_logger (`dpt_runs.run_log`, under either engine): close its log file, or the devnull of a
    process other than rank 0, and give the console back (for in-process runs)."""
    logger, sys.stdout = sys.stdout, console
    logger.flush()
    logger.close()


def init_distributed():
    """Join torchrun's process group when there are several processes; returns (rank, world size).

    NCCL on GPUs (one per process, LOCAL_RANK), gloo on CPUs. Every process uses the same seed, so
    all of them draw the same few-shot sample.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    torch.distributed.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return torch.distributed.get_rank(), world_size


def main(argv=None):
    """Run train.py; input errors end in one paragraph on stderr and exit status 2 (see dpt_models.errors)."""
    args = build_parser().parse_args(argv)
    with exit_on_user_error(args.debug, output_folder=args.output_dir):
        return run(args)


def run(args):
    """Train or evaluate as the parsed command line says; returns the trainer, or the test result with --eval-only."""
    plugins = [import_plugin(name) for name in args.plugin]
    cfg = setup_cfg(args, plugins)
    check_cfg_options(cfg, plugins)
    check_registered(TRAINER_REGISTRY, cfg.TRAINER.NAME, "TRAINER.NAME (--trainer)", "give --trainer NAME")
    check_registered(
        DATASET_REGISTRY,
        cfg.DATASET.NAME,
        "DATASET.NAME",
        "give --dataset-config-file configs/datasets/<dataset>.yaml (or DATASET.NAME NAME)",
    )
    check_trainer_sections(cfg, default_cfg(plugins))
    if args.compare_recorded_config:
        check_recorded_config(cfg, cfg.OUTPUT_DIR)
        return None
    rank, world_size = init_distributed()
    stdout = sys.stdout
    lock = None
    training = not (args.eval_only or args.no_train)
    try:
        if rank == 0:  # only the first process writes into the output folder
            lock = lock_output_folder(cfg)
        if rank > 0:  # only the first process prints and writes log.txt
            sys.stdout = open(os.devnull, "w")
        if cfg.SEED >= 0:
            print(f"Setting fixed seed: {cfg.SEED}")
            set_random_seed(cfg.SEED)
        if rank == 0:
            setup_logger(cfg.OUTPUT_DIR)
            tidy_output_folder(cfg, lock)
        if world_size > 1:
            print(f"Distributed training: {world_size} processes")
        if torch.cuda.is_available() and cfg.USE_CUDA:
            torch.backends.cudnn.benchmark = True
        print_args(args, cfg)
        print("Collecting env info ...")
        print(f"** System info **\n{collect_env_info()}\n")
        trainer = build_trainer(cfg)
        if training and hasattr(trainer, "check_training_cfg"):  # before the output folder is touched
            trainer.check_training_cfg()
        if rank == 0:
            record_run(cfg, training)
        if args.eval_only:
            if not args.model_dir and trainer.get_model_names() and not args.eval_initial_prompts:
                raise UserError(
                    f"--eval-only without --model-dir would evaluate the untrained initial prompts of "
                    f"{cfg.TRAINER.NAME}. Pass --model-dir <training output folder> (and --load-epoch), or "
                    "--eval-initial-prompts if the untrained (zero-shot initialised) prompts are what you mean "
                    "to evaluate."
                )
            trainer.load_model(args.model_dir, epoch=args.load_epoch, allow_mismatch=args.allow_mismatch)
            return trainer.test()
        if not args.no_train:
            trainer.train()
        return trainer
    finally:
        if sys.stdout is not stdout:
            restore_stdout(stdout)
        if lock is not None:
            lock.release()
        if world_size > 1:
            torch.distributed.destroy_process_group()


def cli():
    """The `dpt-train` command: `main` returns the trainer (or the eval accuracy), which must not become
    the exit status (console scripts call sys.exit(<return value>))."""
    main()
    return 0


if __name__ == "__main__":
    main()
