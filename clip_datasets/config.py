"""The config keys the datasets here read on top of Dassl's DATASET node, and their rules."""
from dpt_runs.options import choice, integer


def extend_cfg(cfg):
    """Add the dataset keys to a Dassl default config, in place."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    # When a benchmark's split_zhou_<Name>.json is missing and cannot be downloaded, build one from
    # the raw download (sorted listings, fixed shuffle) instead of raising. Off by default: a
    # generated split differs from the official one, so its results are not comparable with papers.
    cfg.DATASET.GENERATE_SPLIT = False
    cfg.DATASET.FOLDER = ""  # ImageFolder: the dataset's folder under DATASET.ROOT


OPTIONS = {"DATASET": {"SUBSAMPLE_CLASSES": choice("all", "base", "new"), "NUM_SHOTS": integer}}  # NUM_SHOTS <= 0: all
