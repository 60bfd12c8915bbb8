#!/bin/bash
# Base-to-new, training on the base classes (first half of the sorted labels), seeds SEEDS:
#   output/base2new/train_base/<DATASET>/shots_<SHOTS>/<TRAINER>/<CFG>/seed<SEED>
# Usage: bash scripts/common/base2new_train.sh TRAINER DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || usage_error "bash scripts/<method>/base2new_train.sh DATASET [CFG] [SHOTS]"
TRAINER="$1" DATASET="$2" CFG="${3:-$(default_cfg "$1" "$2")}" SHOTS="${4:-16}"
require_data "${DATASET}"
resolve_configs "${TRAINER}" "${CFG}" "${DATASET}"
variant_options
dataset_options "${DATASET}"

for SEED in ${SEEDS}; do
    DIR="${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}"
    run_unless_done "${DIR}" --root "${DATA}" --seed "${SEED}" --trainer "${TRAINER}" \
        --dataset-config-file "${DATASET_FILE}" --config-file "${CONFIG_FILE}" --output-dir "${DIR}" \
        DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES base \
        "${COMMON_OPTS[@]}" "${DATASET_OPTS[@]}"
done
