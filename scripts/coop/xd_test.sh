#!/bin/bash
# CoOp: evaluate the ImageNet-trained prompts (xd_train.sh) on DATASET, one seed.
# Usage: bash scripts/coop/xd_test.sh DATASET SEED [CFG=vit_b16_ep50]
[ $# -ge 2 ] || { echo "Usage: bash scripts/coop/xd_test.sh DATASET SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$2"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" CoOp "$1" ${3:+"$3"}
