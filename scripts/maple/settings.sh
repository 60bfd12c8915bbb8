# MaPLe's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
# The authors give MaPLe no few-shot recipe, so main.sh runs the base-to-new config. Its configs:
# DEFAULT_CFG (few-shot), B2N_CFG (base-to-new), XD_CFG (cross-dataset / DG); the entry points set
# DEFAULT_CFG to theirs.
export CFG_NODE=MAPLE
export DEFAULT_CFG="vit_b16_c2_ep5_batch4_2ctx"
B2N_CFG="vit_b16_c2_ep5_batch4_2ctx"
XD_CFG="vit_b16_c2_ep5_batch4_2ctx_cross_datasets"
# The configs set the prompt tokens; no variant options, so run folders have no variant level.
export NCTX="" CSC="" CTP=""
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
