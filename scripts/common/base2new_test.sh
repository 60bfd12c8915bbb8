#!/bin/bash
# Base-to-new, testing the base-trained prompts on the new classes (SUBSAMPLE_CLASSES new):
#   output/base2new/test_new/<DATASET>/shots_<SHOTS>/<TRAINER>/<CFG>/seed<SEED>
# The base accuracy is in the training run's log; dpt_tools/ turns both into base / new / harmonic mean.
# Usage: bash scripts/common/base2new_test.sh TRAINER DATASET [CFG] [SHOTS=16]
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || usage_error "bash scripts/<method>/base2new_test.sh DATASET [CFG] [SHOTS]"
TRAINER="$1" DATASET="$2" CFG="${3:-$(default_cfg "$1" "$2")}" SHOTS="${4:-16}"
require_data "${DATASET}"
resolve_configs "${TRAINER}" "${CFG}" "${DATASET}"
variant_options
EPOCH="$(load_epoch)"

for SEED in ${SEEDS}; do
    MODEL_DIR="${OUTPUT}/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}"
    DIR="${OUTPUT}/base2new/test_new/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}"
    run_unless_done "${DIR}" --root "${DATA}" --seed "${SEED}" --trainer "${TRAINER}" \
        --dataset-config-file "${DATASET_FILE}" --config-file "${CONFIG_FILE}" --output-dir "${DIR}" \
        --model-dir "${MODEL_DIR}" --load-epoch "${EPOCH}" --eval-only \
        DATASET.NUM_SHOTS "${SHOTS}" DATASET.SUBSAMPLE_CLASSES new "${COMMON_OPTS[@]}"
done
