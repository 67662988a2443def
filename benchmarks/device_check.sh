#!/usr/bin/env bash
# One short accelerator check (issue 11): the paper config's train step at batch 128
# in bfloat16 and float32 with MFU, and CREPE full throughput, on one GPU.
#   bash benchmarks/device_check.sh [PEAK_BF16_TFLOPS] [PEAK_FP32_TFLOPS]
# Defaults are an H100/H200 SXM's dense peaks (989 bf16 tensor, 67 fp32). Needs a
# CUDA jaxlib (pip install "jax[cuda12]" at the locked jax version) on the machine.
# Each part has its own time limit; the whole script stays under 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
BF16="${1:-989}"; FP32="${2:-67}"
echo "== devices"; timeout 60 "$PY" -c "import jax; print(jax.devices())"
echo "== train step, paper config, batch 128, bfloat16"
timeout 150 "$PY" benchmarks/train_step.py --variants=paper --batch=128 --steps=10 \
  --dtype=bfloat16 --peak_tflops="$BF16" --conv=auto 2>&1 | grep '^\['
echo "== train step, paper config, batch 128, float32"
timeout 150 "$PY" benchmarks/train_step.py --variants=paper --batch=128 --steps=10 \
  --dtype=float32 --peak_tflops="$FP32" --conv=auto 2>&1 | grep '^\['
echo "== CREPE full, feature extraction throughput"
timeout 120 "$PY" benchmarks/features.py --n=256 --batch=64 --capacity=full 2>&1 | tail -12
