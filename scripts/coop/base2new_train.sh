#!/bin/bash
# CoOp: base-to-new, train on the base classes (16 shots), one seed (CoCoOp's base-to-new arguments).
# Usage: bash scripts/coop/base2new_train.sh DATASET SEED [CFG=vit_b16_ep50]
[ $# -ge 2 ] || { echo "Usage: bash scripts/coop/base2new_train.sh DATASET SEED [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
export SEEDS="$2"
exec bash "$(dirname "$0")/../common/base2new_train.sh" CoOp "$1" ${3:+"$3"}
