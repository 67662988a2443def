#!/usr/bin/env bash
# Side by side with the PyTorch peer (../shared/bench/peer_torch, README there):
# alternates the two on the same batch sizes, ROUNDS times, one process per figure.
#   bash benchmarks/peer_side_by_side.sh [ROUNDS=2] [BATCHES="32 128"]
# Needs .venv (asa-jax) and .venv-peer (torch==2.13.0 CPU), libjemalloc2. Run on an
# idle machine: the figures are compared only with the ones next to them.
# Environment: INFER_ONLY=1 times only tower inference at batch 128 (asa-jax's
# unfolded and BatchNorm-folded towers, the peer's eager channels-last);
# JAX_PY / PEER_PY name other interpreters; PEER_ALLOCATOR=default where
# libjemalloc2 is not installed.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
BATCHES=${2:-32 128}
PEER=../shared/bench/peer_torch
JAX_PY=${JAX_PY:-.venv/bin/python}
PEER_PY=${PEER_PY:-.venv-peer/bin/python}
ALLOC=${PEER_ALLOCATOR:-jemalloc}
export JAX_PLATFORMS=cpu
for round in $(seq 1 "$ROUNDS"); do
  if [ "${INFER_ONLY:-0}" != "1" ]; then
    for b in $BATCHES; do
      echo "== round $round, batch $b: peer train step (eager, $ALLOC)"
      "$PEER_PY" $PEER/bench_train_step.py --batches "$b" --variants eager \
        --allocator "$ALLOC" --no-save 2>&1 | grep -iE "triplets|trip/s|steps/s|rss|batch" | tail -4
      echo "== round $round, batch $b: asa-jax train step (+ tower inference at 128)"
      "$JAX_PY" benchmarks/train_step.py --variants=paper --batch="$b" --steps=3 \
        2>&1 | grep "^\[paper\]"
    done
  else
    echo "== round $round: asa-jax tower inference, batch 128 (load $(cut -d' ' -f1 /proc/loadavg))"
    "$JAX_PY" benchmarks/train_step.py --variants=paper --notrain --infer_steps=3 \
      2>&1 | grep "^\[paper\]"
  fi
  echo "== round $round: peer tower inference, batch 128 (eager channels-last, $ALLOC; load $(cut -d' ' -f1 /proc/loadavg))"
  "$PEER_PY" $PEER/bench_embed.py --variants eager_cl --allocator "$ALLOC" \
    --no-save 2>&1 | grep -iE "clips|rss" | tail -3
done
