# CoCoOp's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=COCOOP
export DEFAULT_CFG=vit_b16_c4_ep10_batch1_ctxv1
# The context length comes from the config (c4, c8, c16) and CoCoOp has no CSC / class-token position:
# no variant options, so run folders have no variant level, as in the CoOp repository's CoCoOp scripts.
export NCTX="" CSC="" CTP=""
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
