#!/bin/bash
# Run one protocol's entry point of one method on every dataset it covers:
#   bash scripts/run_all_datasets.sh PROTOCOL METHOD [ARGS...]
# runs `bash scripts/<METHOD>/<script>.sh <DATASET> [ARGS...]` for each DATASET, where ARGS are the entry
# point's arguments after DATASET. PROTOCOL (-> scripts run, datasets):
#   main, base2new_train, base2new_test, zeroshot   the 11 benchmarks
#   base2new       base2new_train.sh then base2new_test.sh, per benchmark
#   xd_test        the 10 benchmarks other than ImageNet (cross-dataset transfer)
#   eval           imagenetv2, imagenet_sketch, imagenet_a, imagenet_r (domain generalisation)
# METHOD is a folder of scripts/ (coop, cocoop, dpt, vlp, vpt, zsclip, maple, ivlp, promptsrc). A dataset that fails is
# reported and the others still run; the exit status is 1 if any failed (2 on a usage error).
# Examples:
#   bash scripts/run_all_datasets.sh main coop rn50_ep50 end 16 1 False
#   bash scripts/run_all_datasets.sh base2new cocoop 1
#   bash scripts/run_all_datasets.sh main dpt 16
#   bash scripts/run_all_datasets.sh zeroshot zsclip vit_b16
set -uo pipefail

BENCHMARKS="imagenet caltech101 oxford_pets stanford_cars oxford_flowers food101 fgvc_aircraft sun397 dtd eurosat ucf101"
IMAGENET_VARIANTS="imagenetv2 imagenet_sketch imagenet_a imagenet_r"
USAGE="Usage: bash scripts/run_all_datasets.sh PROTOCOL METHOD [ARGS...]
  PROTOCOL: main, base2new, base2new_train, base2new_test, xd_test, eval, zeroshot"

[ $# -ge 2 ] || { echo "${USAGE}" >&2; exit 2; }
PROTOCOL="$1" METHOD="$2"
shift 2
SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)/${METHOD}"

case "${PROTOCOL}" in
    main | base2new_train | base2new_test | zeroshot) SCRIPTS="${PROTOCOL}" DATASETS="${BENCHMARKS}" ;;
    base2new) SCRIPTS="base2new_train base2new_test" DATASETS="${BENCHMARKS}" ;;
    xd_test) SCRIPTS="xd_test" DATASETS="${BENCHMARKS#imagenet }" ;;
    eval) SCRIPTS="eval" DATASETS="${IMAGENET_VARIANTS}" ;;
    *) echo "Unknown PROTOCOL '${PROTOCOL}'. ${USAGE}" >&2; exit 2 ;;
esac
for script in ${SCRIPTS}; do
    if [ ! -f "${SCRIPT_DIR}/${script}.sh" ]; then
        echo "No script scripts/${METHOD}/${script}.sh (METHOD is a folder of scripts/ that has it)" >&2
        exit 2
    fi
done

if [ -z "${DATA:-}" ]; then
    echo "DATA is not set: export DATA=/path/to/datasets (see DATASETS.md), then run the script again." >&2
    exit 1
fi

failed=()
for dataset in ${DATASETS}; do
    for script in ${SCRIPTS}; do
        echo "=== ${METHOD}/${script}.sh ${dataset} $*"
        bash "${SCRIPT_DIR}/${script}.sh" "${dataset}" "$@"
        status=$?
        [ ${status} -eq 2 ] && exit 2  # a usage error: the same for every dataset
        if [ ${status} -ne 0 ]; then
            failed+=("${dataset} (${script})")
            break
        fi
    done
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "Failed: ${failed[*]}" >&2
    exit 1
fi
