"""Throughput of input_pipeline.loader.TripletLoader on synthetic records.

Writes a synthetic records folder (random float16 features, written through
`records.write_shard`, one shard per performance, so the file format is the real
one), then times whole epochs of the train loader and prints triplets per second.

  python -m benchmarks.loader [--songs=6 --perfs_per_song=8 --segments=40
      --batch=32 --epochs=2 --threads=2 --channels=all|spec,chroma,...]

The training step of the paper config consumes about 6.5 triplets/s at batch
32 (CPU); the loader should deliver at least 10x a step's rate.
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
                    seed: int = 0) -> int:
  """Writes songs x perfs_per_song performances (half good, half poor)."""
  rng = np.random.default_rng(seed)
  n = 0
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
      shape = (segments,) + constants.FEATURE_SHAPE
      perf = rng.normal(size=shape).astype(np.float16)
      ref = rng.normal(size=shape).astype(np.float16)
      records.write_shard(root, "train", pid, metas, perf, ref)
      n += segments
  keys = records.complete_keys(root, "train")
  with open(os.path.join(root, "stats.json"), "w") as f:
    json.dump(records.compute_stats(root, keys, "train"), f)
  return n


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--songs", type=int, default=6)
  parser.add_argument("--perfs_per_song", type=int, default=8)
  parser.add_argument("--segments", type=int, default=40)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--threads", type=int, default=2)
  parser.add_argument("--key_align", default="none")
  parser.add_argument("--channels", default="all")
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as root:
    t0 = time.perf_counter()
    n = write_synthetic(root, args.songs, args.perfs_per_song, args.segments)
    size = sum(os.path.getsize(os.path.join(root, "train", f))
               for f in os.listdir(os.path.join(root, "train")))
    print(f"wrote {n} records ({size / 2**20:.1f} MiB) in "
          f"{time.perf_counter() - t0:.1f} s")
    config = base.get_config()
    config.train.global_batch_size = args.batch
    config.data.loader_threads = args.threads
    config.data.key_align = args.key_align
    if args.channels != "all":
      config.features.channels = tuple(args.channels.split(","))
    ld = loader.TripletLoader(root, "train", config, process_index=0,
                              process_count=1)
    for epoch in range(args.epochs):
      t0 = time.perf_counter()
      count = 0
      for batch in ld.epoch(epoch):
        count += batch["anchor"].shape[0]
      dt = time.perf_counter() - t0
      print(f"epoch {epoch}: {count} triplets in {dt:.2f} s = "
            f"{count / dt:.1f} triplets/s (batch {args.batch}, "
            f"threads {args.threads}, key_align {args.key_align})")


if __name__ == "__main__":
  main()
