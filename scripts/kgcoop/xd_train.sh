#!/bin/bash
# KgCoOp: train the cross-dataset / DG source prompts on ImageNet (16 shots, all classes). (The KgCoOp
# repository's xd_train.sh is a few-shot run of every dataset at 4 shots: bash scripts/kgcoop/main.sh DATASET 4.)
# Usage: bash scripts/kgcoop/xd_train.sh [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/xd_train.sh" KgCoOp "$@"
