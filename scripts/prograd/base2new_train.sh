#!/bin/bash
# ProGrad: base-to-new: train on the base classes.
# Usage: bash scripts/prograd/base2new_train.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/base2new_train.sh" ProGrad "$@"
