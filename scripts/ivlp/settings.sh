# IVLP's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
# The authors give IVLP only base-to-new recipes, so every protocol runs the MaPLe paper's one. Its configs:
# DEFAULT_CFG (few-shot), B2N_CFG (base-to-new), XD_CFG (cross-dataset / DG); the entry points set
# DEFAULT_CFG to theirs.
export CFG_NODE=IVLP
export DEFAULT_CFG="vit_b16_c2_ep5_batch4_2+2ctx"
B2N_CFG="vit_b16_c2_ep5_batch4_2+2ctx"
XD_CFG="vit_b16_c2_ep5_batch4_2+2ctx"
# The configs set the prompt tokens; no variant options, so run folders have no variant level.
export NCTX="" CSC="" CTP=""
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
