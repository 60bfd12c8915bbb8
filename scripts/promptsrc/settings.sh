# PromptSRC's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
# The authors' few-shot, base-to-new and cross-dataset configs: DEFAULT_CFG (few-shot), B2N_CFG
# (base-to-new), XD_CFG (cross-dataset / DG); the entry points set DEFAULT_CFG to theirs.
export CFG_NODE=PROMPTSRC
export DEFAULT_CFG="vit_b16_c2_ep50_batch4_4+4ctx_few_shot"
B2N_CFG="vit_b16_c2_ep20_batch4_4+4ctx"
XD_CFG="vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets"
# The configs set the prompt tokens; no variant options, so run folders have no variant level.
export NCTX="" CSC="" CTP=""
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
