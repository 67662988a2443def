#!/usr/bin/env bash
# Side by side with the PyTorch peer (../shared/bench/peer_torch, README there):
# alternates the two on the same batch sizes, ROUNDS times, one process per figure.
#   bash benchmarks/peer_side_by_side.sh [ROUNDS=2] [BATCHES="32 128"]
# Needs .venv (asa-jax) and .venv-peer (torch==2.13.0 CPU), libjemalloc2. Run on an
# idle machine: the figures are compared only with the ones next to them.
set -u
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
BATCHES=${2:-32 128}
PEER=../shared/bench/peer_torch
export JAX_PLATFORMS=cpu
for round in $(seq 1 "$ROUNDS"); do
  for b in $BATCHES; do
    echo "== round $round, batch $b: peer train step (eager, jemalloc)"
    .venv-peer/bin/python $PEER/bench_train_step.py --batches "$b" --variants eager \
      --allocator jemalloc --no-save 2>&1 | grep -iE "triplets|trip/s|steps/s|rss|batch" | tail -4
    echo "== round $round, batch $b: asa-jax train step (+ tower inference at 128)"
    .venv/bin/python benchmarks/train_step.py --variants=paper --batch="$b" --steps=3 \
      2>&1 | grep "^\[paper\]"
  done
  echo "== round $round: peer tower inference, batch 128 (eager channels-last, jemalloc)"
  .venv-peer/bin/python $PEER/bench_embed.py --variants eager_cl --allocator jemalloc \
    --no-save 2>&1 | grep -iE "clips|rss" | tail -3
done
