#!/bin/bash
# CoCoOp: few-shot training + test, seeds 1 2 3: output/<DATASET>/CoCoOp/<CFG>_<SHOTS>shots/seed<SEED>
# Usage: bash scripts/cocoop/main.sh DATASET SHOTS [CFG=vit_b16_c4_ep10_batch1_ctxv1]
[ $# -ge 2 ] || { echo "Usage: bash scripts/cocoop/main.sh DATASET SHOTS [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/main.sh" CoCoOp "$@"
