#!/bin/bash
# CoOp: few-shot training + test, seeds 1 2 3, with the CoOp repository's arguments:
#   output/<DATASET>/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<SEED>
# Usage: bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
#   e.g. bash scripts/coop/main.sh caltech101 rn50_ep50 end 16 1 False
[ $# -eq 6 ] || { echo "Usage: bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export CTP="$3" NCTX="$4" CSC="$6"
exec bash "$(dirname "$0")/../common/main.sh" CoOp "$1" "$5" "$2"
