"""The project's config keys on top of Dassl's defaults (CoOp's `extend_cfg`, plus ours).

Every key any trainer, dataset or tool of this project reads is declared here, so that yacs
rejects a misspelt key in a yaml file or on the command line.
"""
from yacs.config import CfgNode as CN


def extend_cfg(cfg):
    """Add the project's keys to a Dassl default config, in place."""
    # Where CLIP weights come from: MODEL.BACKBONE.NAME is an OpenAI name (ViT-B/16, RN50, ...);
    # PATH, when set, is a checkpoint file to load instead of ~/.cache/clip/<file>.
    cfg.MODEL.BACKBONE.PATH = ""
    # Gradient checkpointing of the text encoder while training (memory for many classes, e.g. ImageNet).
    cfg.MODEL.TEXT_GRAD_CHECKPOINT = False

    # CoOp / CoCoOp (names and defaults of the CoOp repo).
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16
    cfg.TRAINER.COOP.CSC = False
    cfg.TRAINER.COOP.CTX_INIT = ""
    cfg.TRAINER.COOP.PREC = "fp16"
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"

    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"

    cfg.TRAINER.ZSCLIP = CN()
    cfg.TRAINER.ZSCLIP.PREC = "fp32"

    # DPT / VLP / VPT (README, "DPT"). Defaults are the values of the reference run script
    # (github.com/fanrena/DPT); values hard-coded there are keys here, with that value as default.
    cfg.TRAINER.DPT = CN()
    _add_text_prompt_keys(cfg.TRAINER.DPT)
    cfg.TRAINER.DPT.VPT_N_CTX = 10  # deep visual prompt tokens per block (upstream TRAINER.VPT.N_CTX)
    cfg.TRAINER.DPT.BOTTOMLIMIT = 12  # blocks BOTTOMLIMIT-1..depth-1 are class-aware (1 = all of them)
    cfg.TRAINER.DPT.CPN = 10  # class prompts per class-aware block: the top-K classes, K = min(CPN, C)
    cfg.TRAINER.DPT.ALPHA = 0.3  # weight of CAVPT's auxiliary loss
    cfg.TRAINER.DPT.CAVPT_EXTRA_TOKENS = 10  # learnable key/value tokens of the CAVPT attention
    cfg.TRAINER.DPT.CAVPT_ATTN_DIM = 32  # query/key dimension of the CAVPT attention
    _add_guidance_keys(cfg.TRAINER.DPT)

    cfg.TRAINER.VLP = CN()
    _add_text_prompt_keys(cfg.TRAINER.VLP)
    cfg.TRAINER.VLP.VPT_N_CTX = 10
    _add_guidance_keys(cfg.TRAINER.VLP)

    cfg.TRAINER.VPT = CN()
    cfg.TRAINER.VPT.N_CTX = 10  # deep visual prompt tokens per block
    cfg.TRAINER.VPT.PREC = "fp16"

    # Datasets.
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all, base or new
    # When a benchmark's split_zhou_<Name>.json is missing and cannot be downloaded, build one from
    # the raw download (sorted listings, fixed shuffle) instead of raising. Off by default: a
    # generated split differs from the official one, so its results are not comparable with papers.
    cfg.DATASET.GENERATE_SPLIT = False
    cfg.DATASET.FOLDER = ""  # ImageFolder: the dataset's folder under DATASET.ROOT
    return cfg


def _add_text_prompt_keys(node):
    """CoOp's text-context keys, with CoOp's defaults (shared by DPT and VLP)."""
    node.N_CTX = 16
    node.CSC = False
    node.CTX_INIT = ""
    node.CLASS_TOKEN_POSITION = "end"
    node.PREC = "fp16"


def _add_guidance_keys(node):
    """DPT's general-knowledge guidance and the text context's own optimiser settings (DPT and VLP)."""
    node.C_PRE = 30  # guidance epochs (upstream PRETRAIN.C): guidance loss while epoch < C_PRE
    node.GUIDANCE_WEIGHT = 0.1  # weight of CE(logits) during the guidance epochs
    node.TEXT_LR = 0.002  # learning rate of the text context (visual prompts use OPTIM.LR)
    node.TEXT_WARMUP_EPOCH = 1  # warmup epochs of the text context (visual: OPTIM.WARMUP_EPOCH)
