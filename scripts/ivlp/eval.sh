#!/bin/bash
# IVLP: evaluate the ImageNet-trained prompts on DATASET (domain generalisation: imagenetv2, imagenet_sketch, imagenet_a, imagenet_r).
# Usage: bash scripts/ivlp/eval.sh DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/settings.sh"
export DEFAULT_CFG="${XD_CFG}"
exec bash "$(dirname "$0")/../common/transfer_eval.sh" IVLP "$@"
