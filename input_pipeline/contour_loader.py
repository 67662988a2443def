"""Batches of clean contour windows from a contour pool (issue 18).

The host only gathers clean windows by index (a few hundred kB per batch); the
degradations that make the triplets / scored pairs run on the device inside the
jitted step (`asa_jax.systems.contour`, `input_pipeline.contour_degrade`).

Like `input_pipeline.loader`: an epoch is an index table (train: the split's windows
permuted with numpy.random.default_rng((seed, epoch)), cut to whole global batches;
validation: every window in order, the last batch padded with mask-0 copies), then

  grain.MapDataset.source(table).batch(L)[p::P].map(gather)

so process p takes rows [p*L, (p+1)*L) of every global batch, the same global batch
whatever P is, and the iterator's state (`grain.DatasetIterator`) resumes an epoch.
"""

from __future__ import annotations

import grain
import numpy as np

from input_pipeline import contour_pool


class ContourLoader:
  """Process-local batches of one split of a contour pool.

  Each batch: "cents", "voiced" float32 (L, T); "note" int32 (L, T); "onset" int32
  (L, M); "row_id" float32 (L,) pool index (the per-row degradation key of eval
  batches); "mask" float32 (L,). L = global_batch_size / process_count.

  Raises:
    FileNotFoundError: the split has no windows.
  """

  def __init__(self, pool: contour_pool.Pool, split: str, *, global_batch_size: int,
               seed: int, process_index: int, process_count: int):
    self._pool = pool
    self._split = split
    self._indices = pool.indices(split)
    if not len(self._indices):
      raise FileNotFoundError(f"contour pool has no {split!r} windows")
    if global_batch_size % process_count:
      raise ValueError(f"global batch {global_batch_size} does not split over "
                       f"{process_count} processes")
    self._global = int(global_batch_size)
    self._local = self._global // process_count
    self._seed = int(seed)
    self._p, self._n = process_index, process_count

  def _table(self, epoch: int) -> np.ndarray:
    """(rows, 2) int64: pool index, mask."""
    idx = self._indices
    if self._split == "train":
      idx = idx[np.random.default_rng((self._seed, epoch)).permutation(len(idx))]
      idx = idx[:len(idx) // self._global * self._global]
      mask = np.ones(len(idx), np.int64)
    else:
      pad = (-len(idx)) % self._global
      mask = np.concatenate([np.ones(len(idx), np.int64), np.zeros(pad, np.int64)])
      idx = np.concatenate([idx, np.full(pad, idx[0])])
    return np.stack([idx, mask], axis=1)

  def num_batches(self, epoch: int) -> int:
    """Global batches in `epoch`."""
    return len(self._table(epoch)) // self._global

  def _gather(self, block: np.ndarray) -> dict:
    i = block[:, 0]
    p = self._pool
    return {"cents": p.cents[i], "voiced": p.voiced[i], "note": p.note[i],
            "onset": p.onset[i], "row_id": i.astype(np.float32),
            "mask": block[:, 1].astype(np.float32)}

  def epoch(self, epoch: int) -> grain.DatasetIterator:
    """This process's batches of `epoch` as a checkpointable grain iterator."""
    return iter(grain.MapDataset.source(self._table(epoch)).batch(self._local)
                [self._p::self._n].map(self._gather).to_iter_dataset())
