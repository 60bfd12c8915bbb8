#!/bin/bash
# PromptSRC: cross-dataset: evaluate the ImageNet-trained prompts on DATASET.
# Usage: bash scripts/promptsrc/xd_test.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
export DEFAULT_CFG="${XD_CFG}"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" PromptSRC "$@"
