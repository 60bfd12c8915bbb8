#!/bin/bash
# CoCoOp: train the cross-dataset / domain-generalisation source prompts on ImageNet (16 shots), one seed
# (the CoOp repository's arguments): output/imagenet/CoCoOp/<CFG>_16shots/seed<SEED>
# Usage: bash scripts/cocoop/xd_train.sh SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1]
[ $# -ge 1 ] || { echo "Usage: bash scripts/cocoop/xd_train.sh SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$1"
exec bash "$(dirname "$0")/../common/xd_train.sh" CoCoOp ${2:+"$2"}
