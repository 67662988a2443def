"""Throughput of the Grain train loader (input_pipeline.loader.TripletLoader).

Writes a synthetic records folder in the build's layout (random float16 features,
`records.write_shard`, data.shard_performances performances per shard, so the file
format and the sharding are the real ones), then times whole epochs of the train
loader for each reader-thread count and prints triplets/s, records/s and records/s
per reader thread, and the ratio to what the train step consumes.

  python -m benchmarks.loader [--songs=6 --perfs_per_song=8 --segments=40
      --shard_performances=16 --batch=32 --epochs=2 --threads=1,2
      --step_triplets_per_s=6.0 --key_align=none --channels=all]

--step_triplets_per_s is the paper-config train step's rate on the same machine
(`python benchmarks/train_step.py --variants=paper --batch=32`); the loader should
deliver at least 10x that (issue 11).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np

from asa_jax.features import constants
from configs import base
from input_pipeline import loader
from input_pipeline import records


def write_synthetic(root: str, songs: int, perfs_per_song: int, segments: int,
                    shard_performances: int, seed: int = 0) -> int:
  """Writes songs x perfs_per_song performances (half good, half poor) into shards of
  `shard_performances` performances; returns the number of records."""
  rng = np.random.default_rng(seed)
  shape = (segments,) + constants.FEATURE_SHAPE
  pending: list = []
  shards = 0

  def flush():
    nonlocal pending, shards
    if pending:
      metas = [m for p in pending for m in p[0]]
      perf = np.concatenate([p[1] for p in pending])
      ref = np.concatenate([p[2] for p in pending])
      records.write_shard(root, "train", f"shard-train-{shards:05d}", metas, perf, ref)
      shards += 1
      pending = []

  for s in range(songs):
    for p in range(perfs_per_song):
      pid = f"song{s}_perf{p}"
      score = 90.0 if p % 2 == 0 else 20.0
      metas = [dict(index=k, song_id=f"song{s}", performance_id=pid,
                    split="train", segment_start=1.5 * k,
                    reference_start=1.5 * k, reference_span=3.0,
                    voiced_fraction=1.0, score=score,
                    transposition=int(rng.integers(-2, 3)),
                    performance_audio=f"{pid}.wav",
                    reference_file=f"song{s}.wav") for k in range(segments)]
      pending.append((metas, rng.normal(size=shape).astype(np.float16),
                      rng.normal(size=shape).astype(np.float16)))
      if len(pending) == shard_performances:
        flush()
  flush()
  keys = records.complete_keys(root, "train")
  with open(os.path.join(root, "stats.json"), "w") as f:
    json.dump(records.compute_stats(root, keys, "train"), f)
  return songs * perfs_per_song * segments


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--songs", type=int, default=6)
  parser.add_argument("--perfs_per_song", type=int, default=8)
  parser.add_argument("--segments", type=int, default=40)
  parser.add_argument("--shard_performances", type=int, default=16)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--threads", default="1,2",
                      help="Comma-separated reader-thread counts to time.")
  parser.add_argument("--step_triplets_per_s", type=float, default=6.0)
  parser.add_argument("--key_align", default="none")
  parser.add_argument("--channels", default="all")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as root:
    t0 = time.perf_counter()
    n = write_synthetic(root, args.songs, args.perfs_per_song, args.segments,
                        args.shard_performances)
    folder = os.path.join(root, "train")
    size = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder))
    print(f"wrote {n} records in {len(records.complete_keys(root, 'train'))} shards "
          f"({size / 2**20:.1f} MiB) in {time.perf_counter() - t0:.1f} s")
    for threads in (int(t) for t in args.threads.split(",")):
      config = base.get_config()
      config.train.global_batch_size = args.batch
      config.data.loader_threads = threads
      config.data.key_align = args.key_align
      if args.channels != "all":
        config.features.channels = tuple(args.channels.split(","))
      ld = loader.TripletLoader(root, "train", config, process_index=0,
                                process_count=1)
      for epoch in range(args.epochs):
        t0 = time.perf_counter()
        triplets = reads = 0
        for batch in ld.epoch(epoch):
          triplets += batch["anchor"].shape[0]
        dt = time.perf_counter() - t0
        # Records read: the distinct records of each batch (one batched read each).
        rows = ld.rows(epoch)[:ld.num_batches(epoch) * args.batch]
        for b in range(ld.num_batches(epoch)):
          reads += len(np.unique(rows[b * args.batch:(b + 1) * args.batch]))
        per_thread = reads / dt / max(threads, 1)
        print(f"threads {threads}, epoch {epoch}: {triplets} triplets in {dt:.2f} s = "
              f"{triplets / dt:.1f} triplets/s, {reads / dt:.0f} records/s "
              f"({per_thread:.0f} per reader thread); "
              f"{triplets / dt / args.step_triplets_per_s:.0f}x the step's "
              f"{args.step_triplets_per_s:g} triplets/s (batch {args.batch}, "
              f"key_align {args.key_align})", flush=True)


if __name__ == "__main__":
  main()
