#!/bin/bash
# CoCoOp: evaluate the prompts learned on ImageNet (xd_train.sh) on DATASET, seeds 1 2 3 (domain
# generalisation: imagenetv2, imagenet_sketch, imagenet_a, imagenet_r).
# Usage: bash scripts/cocoop/eval.sh DATASET [CFG=vit_b16_c4_ep10_batch1_ctxv1]
[ $# -ge 1 ] || { echo "Usage: bash scripts/cocoop/eval.sh DATASET [CFG]" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" CoCoOp "$@"
