#!/usr/bin/env bash
# One device session, in one go (the GPU is lent for minutes, not hours):
#   1. scripts/gpu_train.sh: train the default model (a few objective variants side by side on the one GPU, each
#      with a time budget, validation and its best checkpoint; the best variant wins);
#   2. scripts/gpu_check.sh: the engine's GPU tests and benchmark, under a time limit (CHECK_SECONDS, 300 by default:
#      a device session is 15 minutes in all, start-up and training included). gpu_check.sh starts with TensorRT
#      when it imports; its own steps need up to 10 minutes then, so on a machine with TensorRT run
#      scripts/gpu_check.sh alone, as one device call of 600 s.
# The device tool returns at most 8 files, so $OUT receives, flat: model.safetensors, model.card.json, grid.png,
# variants.txt, train-logs.tar.gz, gpu_check.log, gpu_check.tar.gz (its JSON), session.log.
#
#   SALIENCY_DATA=.gpu/data OUT=out MINUTES=5 scripts/gpu_session.sh
# CPU dry run of the logic:
#   PYTHON=.venv/bin/python SALIENCY_DATA=.gpu/data DEVICE=cpu MINUTES=0.2 STEPS=2 BATCH=2 CHECK_SECONDS=5 \
#       scripts/gpu_session.sh --threads 1
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL_OUT=${OUT:-out}
CHECK_SECONDS=${CHECK_SECONDS:-300}
mkdir -p "$FINAL_OUT" runs
exec > >(tee -a "$FINAL_OUT/session.log") 2>&1
date
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"

OUT=runs/out-train bash scripts/gpu_train.sh "$@"
echo "gpu_train exit status $?"
for name in model.safetensors model.card.json grid.png variants.txt; do
    cp "runs/out-train/$name" "$FINAL_OUT/" 2>/dev/null || echo "no $name from the training"
done
tar czf "$FINAL_OUT/train-logs.tar.gz" --exclude='*.safetensors' --exclude='*.png' --exclude='*.pt' -C runs out-train 2>/dev/null
cat runs/out-train/variants.txt 2>/dev/null
date

if [[ -f scripts/gpu_check.sh ]]; then
    OUT=runs/out-check timeout "$CHECK_SECONDS" bash scripts/gpu_check.sh > "$FINAL_OUT/gpu_check.log" 2>&1
    echo "gpu_check exit status $? (124 = stopped at its time limit of ${CHECK_SECONDS}s)"
    tail -60 "$FINAL_OUT/gpu_check.log"
    tar czf "$FINAL_OUT/gpu_check.tar.gz" -C runs out-check 2>/dev/null
fi
date
ls -la "$FINAL_OUT"
