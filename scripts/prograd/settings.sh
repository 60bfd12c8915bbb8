# ProGrad's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=PROGRAD
export DEFAULT_CFG=vit_b16_ep100
export NCTX="${NCTX-16}" CSC="${CSC-False}" CTP="${CTP-end}"  # CoOp's defaults, as in the ProGrad configs
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
