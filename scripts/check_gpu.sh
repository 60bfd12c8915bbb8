#!/usr/bin/env bash
# Check a CUDA machine in under 5 minutes: the CUDA tests (tests/test_cuda.py and the GPU cases of
# tests/test_precision.py), then the ViT-B/16 benchmark with random weights.
#
# Prints the versions (nvidia-smi, torch, CUDA, cuDNN), runs the CUDA tests, then dpt_tools.benchmark --random-weights
# (no weight file needed) at 1000 classes, batch 32, in fp16 and bf16, and in fp32 for CoOp and DPT if time is left.
#
#   bash scripts/check_gpu.sh        # from the repository root, on a CUDA machine
#
# Logs go to ${OUT:-output/gpu_check}/<step>.log; $PYTHON (default python3) runs everything. Every step runs
# even if an earlier one failed; the exit status is non-zero if any step failed. CHECK_GPU_BUDGET_S (default 270)
# bounds the total time: each step is stopped when the budget runs out, and the optional fp32 benchmark is
# skipped when less than a minute is left.
set -u -o pipefail

if [[ ! -f train.py || ! -d tests ]]; then
    echo "Run this from the repository root: bash scripts/check_gpu.sh" >&2
    exit 2
fi
LOG_DIR="${OUT:-output/gpu_check}"
PYTHON="${PYTHON:-python3}"
BUDGET_S="${CHECK_GPU_BUDGET_S:-270}"
mkdir -p "$LOG_DIR"
export PYTHONUNBUFFERED=1
failed=()

# step required|optional NAME MIN_SECONDS MAX_SECONDS COMMAND...: run COMMAND for at most MAX_SECONDS (and no
# longer than the budget left), its output shown and written to LOG_DIR/NAME.log; skipped with less than
# MIN_SECONDS left (a failure if the step is required).
step() {
    local kind=$1 name=$2 need=$3 cap=$4
    shift 4
    local left=$((BUDGET_S - SECONDS))
    if ((left < need)); then
        echo "== $name: skipped, ${left}s of the budget left"
        [[ $kind == required ]] && failed+=("$name (no time left)")
        return 0
    fi
    ((cap > left)) && cap=$left
    echo "== $name (at most ${cap}s): $*"
    timeout "$cap" "$@" 2>&1 | tee "$LOG_DIR/$name.log"
    local status=$?
    ((status == 124)) && echo "== $name: stopped after ${cap}s"
    ((status == 0)) || failed+=("$name (exit $status)")
    return 0
}

nvidia-smi 2>&1 | tee "$LOG_DIR/nvidia_smi.log" || echo "(nvidia-smi is not available)"
step required versions 10 60 "$PYTHON" - <<'PY'
import sys

import torch

print("python", sys.version.split()[0], "| torch", torch.__version__, "| CUDA", torch.version.cuda,
      "| cuDNN", torch.backends.cudnn.version(), "| GPUs", torch.cuda.device_count())
if not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device: nothing here would run on a GPU")
print("device:", torch.cuda.get_device_name(0), "| bf16 supported:", torch.cuda.is_bf16_supported())
PY
if ((${#failed[@]})); then
    echo "== FAILED: no usable CUDA device, the other steps would not run on a GPU" >&2
    exit 1
fi

step required test_cuda 60 150 "$PYTHON" -m pytest -q tests/test_cuda.py tests/test_precision.py -k cuda -rs \
    --durations=5 -p no:cacheprovider \
    --junitxml "$LOG_DIR/test_cuda.xml"

BENCH=("$PYTHON" -m dpt_tools.benchmark --random-weights --backbone ViT-B/16 --classes 1000 --batch-size 32 --steps 5
       --device cuda)
step required benchmark_fp16 45 110 "${BENCH[@]}" --precision fp16
step required benchmark_bf16 45 110 "${BENCH[@]}" --precision bf16
step optional benchmark_fp32 60 90 "${BENCH[@]}" --precision fp32 --trainers CoOp DPT

echo "== done in ${SECONDS}s; logs in $LOG_DIR"
if ((${#failed[@]})); then
    printf '== FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "== all steps passed"
