#!/bin/bash
# ProGrad: cross-dataset: evaluate the ImageNet-trained prompts on DATASET.
# Usage: bash scripts/prograd/xd_test.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" ProGrad "$@"
