#!/usr/bin/env bash
# One short accelerator check (issue 11): the paper config's train step at batch 128
# in bfloat16 and float32 with MFU, and CREPE full throughput, on one GPU.
#   bash benchmarks/device_check.sh [PEAK_BF16_TFLOPS] [PEAK_FP32_TFLOPS]
# Defaults are an H100/H200 SXM's dense peaks (989 bf16 tensor, 67 fp32). Needs a
# CUDA jaxlib (pip install "jax[cuda12]" at the locked jax version) on the machine.
# Each part has its own time limit; the whole script stays under 8 minutes.
#
# DEVICE_CHECK_SMALL=1 runs the same parts with small shapes (the :small tower at
# batch 2, CREPE tiny on 2 clips), so that the script runs end to end on a CPU in CI
# (tests/test_device_check.py) and cannot rot. DEVICE_CHECK_LIMIT_S overrides each
# part's time limit (a loaded CI machine). Exits 1 when a part fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
BF16="${1:-989}"; FP32="${2:-67}"
if [ "${DEVICE_CHECK_SMALL:-0}" = "1" ]; then
  STEP_ARGS=(--variants=small --batch=2 --steps=1 --warmup=0 --infer_batch=2
             --infer_steps=1)
  CREPE_ARGS=(--n=2 --batch=2 --capacity=tiny)
  LABEL="small shapes (CPU smoke run)"
else
  STEP_ARGS=(--variants=paper --batch=128 --steps=10)
  CREPE_ARGS=(--n=256 --batch=64 --capacity=full)
  LABEL="paper config, batch 128"
fi
failed=0
check() {  # check NAME: notes a failure of the part just run (status in $?).
  local status=$?
  [ "$status" -eq 0 ] || { echo "FAILED: $1 (status $status)"; failed=1; return 1; }
}
echo "== devices"
timeout "${DEVICE_CHECK_LIMIT_S:-60}" "$PY" -c "import jax; print(jax.devices())"; check devices
for dtype in bfloat16 float32; do
  peak="$BF16"; [ "$dtype" = float32 ] && peak="$FP32"
  echo "== train step, $LABEL, $dtype"
  step_out="$(timeout "${DEVICE_CHECK_LIMIT_S:-150}" "$PY" benchmarks/train_step.py \
    "${STEP_ARGS[@]}" --dtype="$dtype" --peak_tflops="$peak" --conv=auto 2>&1)"
  check "train step, $dtype (124: over the time limit)" || echo "$step_out" | tail -5
  echo "$step_out" | grep '^\['
done
echo "== CREPE feature extraction throughput (${CREPE_ARGS[*]})"
crepe_out="$(timeout "${DEVICE_CHECK_LIMIT_S:-120}" "$PY" benchmarks/features.py "${CREPE_ARGS[@]}" 2>&1)"; check CREPE
echo "$crepe_out" | tail -12
# features.py reports a CREPE failure and goes on; here it is a failed part.
if echo "$crepe_out" | grep -q "not measured"; then echo "FAILED: CREPE"; failed=1; fi
exit "$failed"
