#!/bin/bash
# Train on ImageNet, SHOTS (16) shots, all classes: the source prompts of the cross-dataset and domain
# generalisation protocols (the same runs and folders as main.sh imagenet SHOTS).
# Usage: bash scripts/common/xd_train.sh TRAINER [CFG] [SHOTS=16]   (normally via scripts/<method>/xd_train.sh)
[ $# -ge 1 ] || { echo "Usage: bash scripts/<method>/xd_train.sh [CFG] [SHOTS]" >&2; exit 2; }
exec bash "$(dirname "$0")/main.sh" "$1" imagenet "${3:-16}" ${2:+"$2"}
