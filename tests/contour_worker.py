"""Degrades a fixed synthetic contour batch on this run's mesh and saves it; used as
a subprocess by tests/test_contour_degrade.py (1 device, 4 devices, 2 processes).

Usage: python tests/contour_worker.py OUT.npz
Multi-process: set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID.
"""

import os
import sys

if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from asa_jax.train.distributed import maybe_initialize
  maybe_initialize()

import jax  # pylint: disable=g-import-not-at-top
import numpy as np

from asa_jax.train import mesh as mesh_lib
from input_pipeline import contour_degrade as cd
from input_pipeline import contour_pool

BATCH = 8
FRAMES = 320


def synthetic_batch(rows: int = BATCH, frames: int = FRAMES, seed: int = 0) -> dict:
  """(rows,) windows of sung-like contours: notes of 150-400 ms on a random melody,
  5.5 Hz vibrato of 30 cents, rests between phrases; numpy dict of Contour fields."""
  rng = np.random.default_rng(seed)
  out = {k: [] for k in ("cents", "voiced", "note", "onset")}
  while len(out["cents"]) < rows:
    cents, t = [], 0
    pitch = 6000.0
    while t < frames:
      n = int(rng.integers(15, 40))
      pitch += 100.0 * rng.integers(-3, 4)
      vib = 30.0 * np.sin(2 * np.pi * 5.5 * np.arange(n) * 0.01)
      rest = rng.random() < 0.15
      cents.extend(np.zeros(n) if rest else pitch + vib)
      t += n
    windows = contour_pool.window_contour(np.asarray(cents[:frames]), frames)
    for w in windows[:1]:
      for k, x in zip(out, w):
        out[k].append(x)
  return {k: np.stack(v) for k, v in out.items()}


def tiny_config(system: str, frames: int):
  """configs/contour.py's `small` config of `system` shrunk for tests: windows of
  `frames` 10 ms frames, an 8-channel tower with 8-d embeddings."""
  from configs import contour as contour_configs  # pylint: disable=g-import-not-at-top
  c = contour_configs.get_config(system, "small", file="test")
  c.contour.window_frames = frames
  c.model.conv_channels = (8, 8, 8)
  c.model.attention_hidden = 16
  c.model.attention_mlp = 16
  c.model.embedding_dim = 8
  c.model.head_hidden = (8, 8)
  return c


def run() -> dict:
  """The degraded global batch of key 7 (numpy, on every process)."""
  mesh = mesh_lib.make_mesh()
  batch = synthetic_batch()
  rows = BATCH // jax.process_count()
  p = jax.process_index()
  local = {k: v[p * rows:(p + 1) * rows] for k, v in batch.items()}
  g = mesh_lib.to_global(local, mesh)
  fn = jax.jit(lambda key, c: cd.degrade_batch(key, cd.Contour(**c))[1],
               out_shardings=mesh_lib.replicated(mesh))
  res = fn(jax.random.PRNGKey(7), g)
  return {k: np.asarray(v.addressable_data(0)) for k, v in res._asdict().items()
          if v is not None}


if __name__ == "__main__":
  result = run()
  if jax.process_index() == 0:
    np.savez(sys.argv[1], devices=jax.device_count(), **result)
