#!/bin/bash
# CoOp: train the cross-dataset / domain-generalisation source prompts on ImageNet (16 shots), one seed.
# Usage: bash scripts/coop/xd_train.sh SEED [CFG=vit_b16_ep50]
[ $# -ge 1 ] || { echo "Usage: bash scripts/coop/xd_train.sh SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$1"
exec bash "$(dirname "$0")/../common/xd_train.sh" CoOp ${2:+"$2"}
