#!/bin/bash
# CoOp: base-to-new, test the base-trained prompts on the new classes, one seed.
# Usage: bash scripts/coop/base2new_test.sh DATASET SEED [CFG=vit_b16_ep50]
[ $# -ge 2 ] || { echo "Usage: bash scripts/coop/base2new_test.sh DATASET SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$2"
exec bash "$(dirname "$0")/../common/base2new_test.sh" CoOp "$1" ${3:+"$3"}
