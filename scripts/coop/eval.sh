#!/bin/bash
# CoOp: evaluate the prompts learned on ImageNet (16 shots, nctx16_cscFalse_ctpend) on DATASET, seeds 1 2 3:
# domain generalisation (imagenetv2, imagenet_sketch, imagenet_a, imagenet_r) or cross-dataset transfer.
# Loads the config's last epoch (LOAD_EPOCH overrides), as the CoOp repository's eval.sh loads 50 for *_ep50.
# Usage: bash scripts/coop/eval.sh DATASET CFG   (after bash scripts/coop/main.sh imagenet CFG end 16 16 False)
[ $# -eq 2 ] || { echo "Usage: bash scripts/coop/eval.sh DATASET CFG" >&2; exit 2; }
source "$(dirname "$0")/settings.sh"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" CoOp "$1" "$2"
