#!/bin/bash
# CoCoOp: evaluate the ImageNet-trained prompts on DATASET, one seed (the CoOp repository's arguments):
#   output/evaluation/CoCoOp/<CFG>_16shots/<DATASET>/seed<SEED>
# Usage: bash scripts/cocoop/xd_test.sh DATASET SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1]
[ $# -ge 2 ] || { echo "Usage: bash scripts/cocoop/xd_test.sh DATASET SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$2"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" CoCoOp "$1" ${3:+"$3"}
