#!/bin/bash
# PromptSRC: few-shot training + test, seeds 1 2 3.
# Usage: bash scripts/promptsrc/main.sh DATASET SHOTS [CFG]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/main.sh" PromptSRC "$@"
