#!/bin/bash
# Few-shot training and testing, seeds SEEDS (1 2 3), one folder per run:
#   output/<DATASET>/<TRAINER>/<CFG>_<SHOTS>shots/<variant>/seed<SEED>
# Usage: bash scripts/common/main.sh TRAINER DATASET SHOTS [CFG]   (normally via scripts/<method>/main.sh)
source "$(dirname "$0")/lib.sh"
[ $# -ge 3 ] || usage_error "bash scripts/<method>/main.sh DATASET SHOTS [CFG]"
TRAINER="$1" DATASET="$2" SHOTS="$3" CFG="${4:-$(default_cfg "$1" "$2")}"
require_data "${DATASET}"
resolve_configs "${TRAINER}" "${CFG}" "${DATASET}"
variant_options
dataset_options "${DATASET}"

for SEED in ${SEEDS}; do
    DIR="${OUTPUT}/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/${VARIANT_DIR}seed${SEED}"
    run_unless_done "${DIR}" --root "${DATA}" --seed "${SEED}" --trainer "${TRAINER}" \
        --dataset-config-file "${DATASET_FILE}" --config-file "${CONFIG_FILE}" --output-dir "${DIR}" \
        DATASET.NUM_SHOTS "${SHOTS}" "${COMMON_OPTS[@]}" "${DATASET_OPTS[@]}"
done
