# DPT's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=DPT
export DEFAULT_CFG=vit_b32
export NCTX="${NCTX-16}" CSC="${CSC-False}" CTP="${CTP-end}"  # text context; NCTX= (empty) drops an option
export IMAGENET_OPTS="${IMAGENET_OPTS-OPTIM.WARMUP_EPOCH 1}"  # the reference warms the visual side up 1 epoch on ImageNet
