#!/bin/bash
# MaPLe: train the cross-dataset / DG source prompts on ImageNet (16 shots, all classes).
# Usage: bash scripts/maple/xd_train.sh [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
export DEFAULT_CFG="${XD_CFG}"
exec bash "$(dirname "$0")/../common/xd_train.sh" MaPLe "$@"
