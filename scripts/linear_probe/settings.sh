# Linear-probe CLIP's settings for the scripts in scripts/common (scripts/common/lib.sh documents each variable).
export CFG_NODE=LINEAR_PROBE
export DEFAULT_CFG=vit_b16
export NCTX= CSC= CTP=  # no text context: run folders have no variant level
export IMAGENET_OPTS="${IMAGENET_OPTS-}"
