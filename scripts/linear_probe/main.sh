#!/bin/bash
# Linear-probe CLIP: few-shot fit (C searched on the few-shot val split) + test, seeds 1 2 3; image
# features are cached under $DATA/clip_features and shared by every shot count and seed.
# Usage: bash scripts/linear_probe/main.sh DATASET SHOTS [CFG]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/main.sh" LinearProbe "$@"
