# CoOp's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=COOP
export DEFAULT_CFG=vit_b16_ep50
export NCTX="${NCTX-16}" CSC="${CSC-False}" CTP="${CTP-end}"  # the CoOp repository's defaults
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
