#!/bin/bash
# ProGrad: train the cross-dataset / DG source prompts on ImageNet (16 shots, all classes).
# Usage: bash scripts/prograd/xd_train.sh [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/xd_train.sh" ProGrad "$@"
