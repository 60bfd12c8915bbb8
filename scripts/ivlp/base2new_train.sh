#!/bin/bash
# IVLP: base-to-new: train on the base classes.
# Usage: bash scripts/ivlp/base2new_train.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
export DEFAULT_CFG="${B2N_CFG}"
exec bash "$(dirname "$0")/../common/base2new_train.sh" IVLP "$@"
