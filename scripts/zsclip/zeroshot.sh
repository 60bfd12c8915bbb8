#!/bin/bash
# Zero-shot CLIP with the dataset's hand-written template, evaluated on DATASET's test set with the
# CoOp config CFG (backbone and input settings), as in the CoOp repository:
#   output/ZeroshotCLIP/<CFG>/<DATASET>
# TRAINER=ZeroshotCLIP2 uses the ImageNet template ensemble instead.
# Usage: bash scripts/zsclip/zeroshot.sh DATASET CFG   (CFG: rn50, rn101, vit_b32, vit_b16, ...)
[ $# -eq 2 ] || { echo "Usage: bash scripts/zsclip/zeroshot.sh DATASET CFG" >&2; exit 2; }
export CFG_NODE=ZSCLIP DEFAULT_CFG=vit_b16 NCTX="" CSC="" CTP=""
source "$(dirname "$0")/../common/lib.sh"
TRAINER="${TRAINER:-ZeroshotCLIP}" DATASET="$1" CFG="$2"
require_data "${DATASET}"
resolve_configs CoOp "${CFG}" "${DATASET}"
variant_options

DIR="${OUTPUT}/${TRAINER}/${CFG}/${DATASET}"
run_unless_done "${DIR}" --root "${DATA}" --trainer "${TRAINER}" \
    --dataset-config-file "${DATASET_FILE}" --config-file "${CONFIG_FILE}" --output-dir "${DIR}" \
    --eval-only "${COMMON_OPTS[@]}"
