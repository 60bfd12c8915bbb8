# VPT's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=VPT
export DEFAULT_CFG=vit_b32
export NCTX="${NCTX-10}"  # visual prompt tokens per block
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
