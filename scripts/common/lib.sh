# Shared by the scripts in scripts/common (sourced, not run). The variables below are their whole interface.
#
# A method's entry points (scripts/<method>/*.sh) source their settings.sh, which sets:
#   CFG_NODE      the method's config node: options go to TRAINER.<CFG_NODE>.*
#   DEFAULT_CFG   the trainer config used when no CFG argument is given (configs/trainers/<TRAINER>/<CFG>.yaml);
#                 on a toy dataset (configs/datasets/toy_*.yaml) the trainer's toy.yaml, where it has one
#   NCTX CSC CTP  TRAINER.<CFG_NODE>.{N_CTX,CSC,CLASS_TOKEN_POSITION}: each one that is set (non-empty) is
#                 passed to train.py and names the run's variant folder (nctx16_cscFalse_ctpend)
#   IMAGENET_OPTS extra "KEY VALUE ..." options for training on ImageNet
# The user may set:
#   DATA          the datasets' root folder (required, except for the toy datasets: default <repo>/data)
#   CLIP_PATH     a CLIP checkpoint file, passed as MODEL.BACKBONE.PATH (default: ~/.cache/clip)
#   SEEDS         default "1 2 3"
#   OUTPUT        the output root, default "output" (relative to the repository)
#   EXTRA_OPTS    more "KEY VALUE ..." options for train.py
#   LOAD_EPOCH    the epoch whose checkpoint evaluation scripts load (default: the config's MAX_EPOCH)
#   DRY_RUN=1     print the train.py commands instead of running them
#   PYTHON        the interpreter that runs train.py (default: python, the first on PATH)
set -euo pipefail
: "${CFG_NODE:?is set by scripts/<method>/settings.sh: run an entry point such as scripts/dpt/main.sh}"
: "${DEFAULT_CFG:?is set by scripts/<method>/settings.sh}"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SEEDS="${SEEDS:-1 2 3}"
OUTPUT="${OUTPUT:-output}"
PYTHON="${PYTHON:-python}"

usage_error() {
    echo "Usage: $1" >&2
    exit 2
}

is_toy_dataset() {
    [[ "$1" == toy_* ]]
}

# The trainer config of a run given no CFG argument: DEFAULT_CFG, or toy.yaml on a toy dataset.
default_cfg() {
    local trainer="$1" dataset="$2"
    if is_toy_dataset "${dataset}" && [ -f "${REPO_ROOT}/configs/trainers/${trainer}/toy.yaml" ]; then
        echo toy
    else
        echo "${DEFAULT_CFG}"
    fi
}

# DATA and CLIP_PATH as absolute paths (the scripts run train.py from the repository root). The toy
# datasets generate themselves, so for them DATA defaults to <repo>/data (where the demo puts them).
require_data() {
    local dataset="$1"
    if [ -z "${DATA:-}" ] && is_toy_dataset "${dataset}"; then
        DATA="${REPO_ROOT}/data"
        echo "DATA is not set: using ${DATA} for the toy dataset ${dataset} (generated there on first use)." >&2
    elif [ -z "${DATA:-}" ]; then
        echo "DATA is not set: export DATA=/path/to/datasets (the folder holding imagenet/, caltech-101/, ...;" \
             "see DATASETS.md), then run the script again." >&2
        exit 1
    elif [ ! -d "${DATA}" ]; then
        echo "DATA=${DATA} is not a folder." >&2
        exit 1
    else
        DATA="$(cd "${DATA}" && pwd)"
    fi
    if [ -n "${CLIP_PATH:-}" ]; then
        if [ ! -f "${CLIP_PATH}" ]; then
            echo "CLIP_PATH=${CLIP_PATH} is not a file." >&2
            exit 1
        fi
        CLIP_PATH="$(cd "$(dirname "${CLIP_PATH}")" && pwd)/$(basename "${CLIP_PATH}")"
    fi
    cd "${REPO_ROOT}"
}

# Sets CONFIG_FILE and DATASET_FILE from a trainer config name and a dataset name, checking both exist.
resolve_configs() {
    local trainer="$1" cfg="$2" dataset="$3"
    CONFIG_FILE="configs/trainers/${trainer}/${cfg}.yaml"
    DATASET_FILE="configs/datasets/${dataset}.yaml"
    [ -f "${CONFIG_FILE}" ] || { echo "No trainer config ${CONFIG_FILE}" >&2; exit 1; }
    [ -f "${DATASET_FILE}" ] || { echo "No dataset config ${DATASET_FILE} (names: configs/datasets/*.yaml)" >&2; exit 1; }
}

# Sets VARIANT_TAG (e.g. nctx16_cscFalse_ctpend; empty for a method without these options, such as
# CoCoOp, whose run folders then have no variant level, as in CoOp's scripts), VARIANT_DIR (the
# folder level: "<VARIANT_TAG>/" or nothing) and COMMON_OPTS (the variant's options, the CLIP file and
# EXTRA_OPTS, as an array of KEY VALUE words).
variant_options() {
    local parts=()
    COMMON_OPTS=()
    if [ -n "${NCTX:-}" ]; then parts+=("nctx${NCTX}"); COMMON_OPTS+=("TRAINER.${CFG_NODE}.N_CTX" "${NCTX}"); fi
    if [ -n "${CSC:-}" ]; then parts+=("csc${CSC}"); COMMON_OPTS+=("TRAINER.${CFG_NODE}.CSC" "${CSC}"); fi
    if [ -n "${CTP:-}" ]; then
        parts+=("ctp${CTP}")
        COMMON_OPTS+=("TRAINER.${CFG_NODE}.CLASS_TOKEN_POSITION" "${CTP}")
    fi
    VARIANT_TAG="$(IFS=_; echo "${parts[*]:-}")"
    VARIANT_DIR="${VARIANT_TAG:+${VARIANT_TAG}/}"
    if [ -n "${CLIP_PATH:-}" ]; then COMMON_OPTS+=("MODEL.BACKBONE.PATH" "${CLIP_PATH}"); fi
    local extra=()
    read -r -a extra <<< "${EXTRA_OPTS:-}"
    COMMON_OPTS+=("${extra[@]}")
}

# Sets DATASET_OPTS: IMAGENET_OPTS when training on ImageNet, else nothing.
dataset_options() {
    DATASET_OPTS=()
    if [ "$1" = "imagenet" ]; then read -r -a DATASET_OPTS <<< "${IMAGENET_OPTS:-}"; fi
}

# The epoch of the checkpoints to evaluate: LOAD_EPOCH, or OPTIM.MAX_EPOCH of the trainer config.
load_epoch() {
    if [ -n "${LOAD_EPOCH:-}" ]; then echo "${LOAD_EPOCH}"; return; fi
    awk '/^[[:space:]]+MAX_EPOCH:/ {print $2; exit}' "${CONFIG_FILE}"
}

# Runs train.py with the given arguments into run folder $1, unless the folder already holds a
# result (an accuracy line in one of its logs): then the run is skipped, as in CoOp's scripts, after
# checking that the folder's recorded config (config.yaml) has the options requested now; if they
# differ, train.py names the keys, and if the check itself fails (no torch for $PYTHON, ...) its error
# is what shows: either way the script stops. A folder without a result is an interrupted
# run: it runs again and train.py resumes it from its last checkpoint (CoOp would skip it and lose it).
run_unless_done() {
    local dir="$1"
    shift
    if [ -d "${dir}" ] && grep -qs '^\* accuracy:' "${dir}"/log.txt*; then
        if [ -f "${dir}/config.yaml" ] && ! "${PYTHON}" train.py --compare-recorded-config "$@"; then
            echo "Stopped: ${dir} holds a result, and checking its recorded options against these failed" \
                 "(${PYTHON} train.py --compare-recorded-config: its error is above)." >&2
            exit 1
        fi
        echo "Results are available in ${dir}. Skip this job"
        return 0
    fi
    if [ -d "${dir}" ]; then
        echo "${dir} has no result yet: running it again (training resumes from its last checkpoint)"
    fi
    run_train "$@"
}

run_train() {
    if [ "${DRY_RUN:-0}" = "1" ]; then
        echo "${PYTHON} train.py $*"
    else
        "${PYTHON}" train.py "$@"
    fi
}
