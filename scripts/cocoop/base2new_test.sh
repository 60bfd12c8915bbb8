#!/bin/bash
# CoCoOp: base-to-new, test the base-trained prompts on the new classes, one seed (the CoOp repository's
# arguments): output/base2new/test_new/<DATASET>/shots_16/CoCoOp/<CFG>/seed<SEED>
# Usage: bash scripts/cocoop/base2new_test.sh DATASET SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1]
[ $# -ge 2 ] || { echo "Usage: bash scripts/cocoop/base2new_test.sh DATASET SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$2"
exec bash "$(dirname "$0")/../common/base2new_test.sh" CoCoOp "$1" ${3:+"$3"}
