#!/bin/bash
# IVLP: few-shot training + test, seeds 1 2 3.
# Usage: bash scripts/ivlp/main.sh DATASET SHOTS [CFG]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/main.sh" IVLP "$@"
