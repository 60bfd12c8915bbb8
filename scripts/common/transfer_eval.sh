#!/bin/bash
# Evaluate the prompts learned on ImageNet (main.sh imagenet SHOTS, all classes) on another dataset:
# cross-dataset transfer and domain generalisation (ImageNetV2 / Sketch / A / R). One folder per run:
#   output/evaluation/<TRAINER>/<CFG>_<SHOTS>shots/<variant>/<DATASET>/seed<SEED>
# Usage: bash scripts/common/transfer_eval.sh TRAINER DATASET [CFG] [SHOTS=16]
#        (normally via scripts/<method>/eval.sh or xd_test.sh)
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || usage_error "bash scripts/<method>/eval.sh DATASET [CFG] [SHOTS]"
TRAINER="$1" DATASET="$2" CFG="${3:-${DEFAULT_CFG}}" SHOTS="${4:-16}"
require_data "${DATASET}"
resolve_configs "${TRAINER}" "${CFG}" "${DATASET}"
variant_options
EPOCH="$(load_epoch)"

for SEED in ${SEEDS}; do
    MODEL_DIR="${OUTPUT}/imagenet/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT_DIR}seed${SEED}"
    DIR="${OUTPUT}/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT_DIR}${DATASET}/seed${SEED}"
    run_unless_done "${DIR}" --root "${DATA}" --seed "${SEED}" --trainer "${TRAINER}" \
        --dataset-config-file "${DATASET_FILE}" --config-file "${CONFIG_FILE}" --output-dir "${DIR}" \
        --model-dir "${MODEL_DIR}" --load-epoch "${EPOCH}" --eval-only "${COMMON_OPTS[@]}"
done
