# KgCoOp's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=KGCOOP
export DEFAULT_CFG=vit_b16_ep100_ctxv1
# The KgCoOp repository's script arguments (N_CTX 4 is the number of words of CTX_INIT "a photo of a").
# W (TRAINER.KGCOOP.W) comes from the config: EXTRA_OPTS="TRAINER.KGCOOP.W 2.0" changes it.
export NCTX="${NCTX-4}" CSC="${CSC-False}" CTP="${CTP-end}"
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
