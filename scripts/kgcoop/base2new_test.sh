#!/bin/bash
# KgCoOp: base-to-new: test on the new classes.
# Usage: bash scripts/kgcoop/base2new_test.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/base2new_test.sh" KgCoOp "$@"
