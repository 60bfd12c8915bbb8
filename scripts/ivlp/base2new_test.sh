#!/bin/bash
# IVLP: base-to-new: test on the new classes.
# Usage: bash scripts/ivlp/base2new_test.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
export DEFAULT_CFG="${B2N_CFG}"
exec bash "$(dirname "$0")/../common/base2new_test.sh" IVLP "$@"
