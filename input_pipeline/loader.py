"""Triplet batches (paper 3.2.3, 3.3, 3.4) and scored-clip batches (regression
systems, 3.2.1, 3.2.2, 3.2.4: `ClipLoader`) from feature records with Grain.

Paper 3.4: batch size 128. Which records make a row (the paper 3.3 pairing):
input_pipeline/pairing.py; the model input of a clip (key shift,
channels, normalisation): input_pipeline/model_input.py. This module is the Grain
pipeline.

Batching: global batches of train.global_batch_size rows in that order; process
p of P receives rows [p*L, (p+1)*L) of every global batch (L = global / P), so
the global batch is the same whatever P is, and a process reads only its own
rows' records. Train drops the incomplete last batch; other splits use the
epoch-0 pairing every time, pad the last batch (mask 0 rows) and keep it. Every
batch has "mask" float32 (L,) (ones for train).

Reading, the way Grain is meant to be used (`_RecordsLoader`): the epoch's rows are
an index table, `grain.MapDataset.source(table).batch(L)[p::P].map(fetch_decode)`,
one batched `ArrayRecordDataSource` read per batch, then `to_iter_dataset` with
reader threads and prefetch (data.loader_threads, data.loader_prefetch). The
iterator's state is what the training loop checkpoints (`grain.checkpoint`), so a
resumed epoch continues at its next batch without reading the ones before. No
decoded-record cache: a benchmark (benchmarks/loader.py, BUILD_NOTES.md) shows the
loader far ahead of the step without one.
"""

from __future__ import annotations

import logging
import os
from typing import Iterator

import grain
import numpy as np

from input_pipeline import model_input
from input_pipeline import pairing
from input_pipeline import records as records_lib


def _read_index(records_dir: str, split: str
                ) -> tuple[records_lib.SplitSource, pairing.RecordIndex]:
  """The split's records (`records.SplitSource`) and their metadata arrays."""
  source = records_lib.SplitSource(records_dir, split)
  return source, pairing.index_of(source.metadata)


def _as_table(rows: np.ndarray) -> np.ndarray:
  """(N, ...) rows as (N, width) (a 1-D row order is width 1; N may be 0)."""
  return rows.reshape(len(rows), int(np.prod(rows.shape[1:], dtype=np.int64)))


class _RecordsLoader:
  """Shared part of the loaders: records, stats, and the Grain pipeline of an epoch.

  An epoch is an index table of rows (`_epoch_rows`: int64, first axis = row, e.g.
  (good record, poor record) for triplets) with a mask column appended, cut to whole
  global batches (train: the incomplete last batch is dropped; other splits: padded
  with mask-0 copies of row 0). Then

    grain.MapDataset.source(table).batch(L)[p::P].map(fetch_decode)
      .to_iter_dataset(ReadOptions(data.loader_threads, data.loader_prefetch))

  i.e. global batch b is local batches b*P .. b*P+P-1, and process p takes its own
  one: rows [p*L, (p+1)*L) of every global batch, the same global batch whatever P
  is. `fetch_decode` (the subclass's `_make_batch`) reads the batch's records with
  one `ArrayRecordDataSource.__getitems__` call. The iterator is a
  `grain.DatasetIterator`: its `get_state()` / `set_state()` (saved by the training
  loop through `grain.checkpoint`) resume an epoch exactly, without reading the
  batches before it.

  Subclasses define `_epoch_rows(epoch)` (`epoch` is None outside training, where the
  order is fixed), `_make_batch(rows, mask)` and ROWS (what a row is, for messages).
  """
  ROWS = "rows"

  def __init__(self, records_dir: str, split: str, config, *,
               process_index: int | None = None,
               process_count: int | None = None, train: bool | None = None):
    if process_index is None or process_count is None:
      import jax  # pylint: disable=g-import-not-at-top
      process_index = jax.process_index() if process_index is None else (
          process_index)
      process_count = jax.process_count() if process_count is None else (
          process_count)
    self.records_dir = os.path.abspath(records_dir)
    self.split = split
    self.config = config
    self.train = (split == "train") if train is None else bool(train)
    self.process_index = int(process_index)
    self.process_count = int(process_count)
    self.global_batch_size = int(config.train.global_batch_size)
    if self.global_batch_size % self.process_count:
      raise ValueError(
          f"train.global_batch_size {self.global_batch_size} is not divisible "
          f"by the process count {self.process_count}")
    if not 0 <= self.process_index < self.process_count:
      raise ValueError(f"process_index {self.process_index} not in "
                       f"[0, {self.process_count})")
    self.local_batch_size = self.global_batch_size // self.process_count
    self._source, self._index = _read_index(self.records_dir, split)
    self.metadata = self._source.metadata
    if not self.metadata:
      raise FileNotFoundError(
          f"no complete records for split {split!r} in {self.records_dir} "
          "(run build.build_records first)")
    stats_path = os.path.join(self.records_dir, "stats.json")
    if not os.path.exists(stats_path):
      raise FileNotFoundError(
          f"{stats_path} missing: build the train split or pass stats_from")
    self.stats = records_lib.load_stats(stats_path)
    self._read_options = grain.ReadOptions(
        num_threads=int(config.data.loader_threads),
        prefetch_buffer_size=int(config.data.loader_prefetch))
    self._rows_cache: dict = {}
    if self.train and self.num_batches(0) == 0:
      logging.warning(
          "%s/%s: %d %s, fewer than one global batch of %d: no training batches",
          self.records_dir, split, len(self.rows(0)), self.ROWS,
          self.global_batch_size)

  def __len__(self) -> int:
    return len(self.metadata)

  def rows(self, epoch: int) -> np.ndarray:
    """Global row order of an epoch (int64, first axis = rows); outside training
    every epoch has the same order. Only the latest epoch's order is kept."""
    key = int(epoch) if self.train else None
    if key not in self._rows_cache:
      self._rows_cache = {key: self._epoch_rows(key)}
    return self._rows_cache[key]

  def _epoch_rows(self, epoch: int | None) -> np.ndarray:
    raise NotImplementedError

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    raise NotImplementedError

  def num_batches(self, epoch: int = 0) -> int:
    """Number of (global = local) batches of an epoch."""
    n = len(self.rows(epoch))
    if self.train:
      return n // self.global_batch_size
    return -(-n // self.global_batch_size)

  def _table(self, epoch: int) -> np.ndarray:
    """int64 (num_batches * global batch, row width + 1): the epoch's rows cut or
    padded to whole global batches, the last column the mask (1 real, 0 padding)."""
    rows = _as_table(self.rows(epoch))
    total = self.num_batches(epoch) * self.global_batch_size
    n = min(total, len(rows))
    table = np.zeros((total, rows.shape[1] + 1), np.int64)
    table[:n, :-1] = rows[:n]
    table[n:, :-1] = rows[0] if len(rows) else 0  # Padding: real data, masked out.
    table[:n, -1] = 1
    return table

  def dataset(self, epoch: int) -> grain.MapDataset:
    """This process's batches of an epoch as a `grain.MapDataset` (see class doc)."""
    table = self._table(epoch)

    def fetch_decode(block: np.ndarray) -> dict:
      return self._make_batch(block[:, :-1], block[:, -1].astype(np.float32))

    return (grain.MapDataset.source(table)
            .batch(self.local_batch_size)
            [self.process_index::self.process_count]
            .map(fetch_decode))

  def _fetch(self, indices) -> dict:
    """record index -> decoded record, for the distinct `indices` (one batched read)."""
    uniq = sorted(set(int(i) for i in np.asarray(indices).reshape(-1)))
    return dict(zip(uniq, self._source.read(uniq)))

  def epoch(self, epoch: int) -> grain.DatasetIterator:
    """Process-local batches of an epoch (see the subclass docs for the keys), as a
    checkpointable `grain.DatasetIterator` (`get_state()` / `set_state()`).

    Every batch has "mask" float32 (L,) (1 = real row, 0 = padding), L =
    global_batch_size / process_count; features are float32 (L, C, 96, 94), C =
    len(features.channels).
    """
    return iter(self.dataset(epoch).to_iter_dataset(self._read_options))


class TripletLoader(_RecordsLoader):
  """Process-local triplet batches of one split (paper 3.2.3 / 3.3 / 3.4).

  Args:
    records_dir: folder written by `build.build_records`.
    split: 'train' | 'validation' | 'test'.
    config: reads seed, train.global_batch_size, features.channels and
      data.{good_threshold, poor_threshold, pair_tolerance_seconds, key_align,
      loader_threads, loader_prefetch}.
    process_index, process_count: this process and the process count (None:
      jax.process_index() / jax.process_count()).
    train: True -> per-epoch pairing, drop_remainder; False -> epoch-0
      pairing, padded last batch. None: split == 'train'.

  Batches: {"anchor", "positive", "negative"}: float32 (L, C, 96, 94), "mask".

  Raises:
    FileNotFoundError: no complete records for the split, or no stats.json.
    ValueError: global batch not divisible by process_count.
  """

  ROWS = "triplets (good/poor pairs)"

  def triplets(self, epoch: int) -> np.ndarray:
    """int64 (T, 2) (good, poor) record indices of an epoch, global order."""
    return self.rows(epoch)

  def _epoch_rows(self, epoch: int | None) -> np.ndarray:
    return pairing.pair_triplets(self._index, self.config, 0 if epoch is None else epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows)
    good = [recs[i] for i in rows[:, 0].tolist()]
    poor = [recs[i] for i in rows[:, 1].tolist()]
    anchor = np.stack([r["reference"] for r in good])
    positive = np.stack([r["performance"] for r in good])
    negative = np.stack([r["performance"] for r in poor])
    t = self._index.transposition
    return dict(
        anchor=model_input.prepare_clips(anchor, self.stats, self.config),
        positive=model_input.prepare_clips(positive, self.stats, self.config,
                               transpositions=t[rows[:, 0]]),
        negative=model_input.prepare_clips(negative, self.stats, self.config,
                               transpositions=t[rows[:, 1]]),
        mask=mask.astype(np.float32),
    )


class RankLoader(_RecordsLoader):
  """Process-local batches of one positive and K negatives (Lee & Nam 2019).

  Rows are `pair_triplets`' (better, worse) pairs extended by `add_negatives` to
  K = loss.negatives negatives of the same song, each worse than the positive.

  Batches: "anchor", "positive": float32 (L, C, 96, 94); "negatives": float32
  (L, K, C, 96, 94); "mask".

  Raises:
    FileNotFoundError: no complete records for the split, or no stats.json.
    ValueError: global batch not divisible by process_count; loss.negatives < 1.
  """

  ROWS = "ranked rows (a positive and K negatives)"

  def _epoch_rows(self, epoch: int | None) -> np.ndarray:
    e = 0 if epoch is None else epoch
    return pairing.add_negatives(self._index, pairing.pair_triplets(self._index, self.config, e),
                         self.config, e, int(self.config.loss.negatives))

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows)
    t = self._index.transposition
    pos = rows[:, 0]
    negs = rows[:, 1:].reshape(-1)
    negatives = model_input.prepare_clips(np.stack([recs[i]["performance"] for i in negs.tolist()]),
                              self.stats, self.config, transpositions=t[negs])
    return dict(
        anchor=model_input.prepare_clips(np.stack([recs[i]["reference"] for i in pos.tolist()]),
                             self.stats, self.config),
        positive=model_input.prepare_clips(np.stack([recs[i]["performance"] for i in pos.tolist()]),
                               self.stats, self.config, transpositions=t[pos]),
        negatives=negatives.reshape(rows.shape[0], rows.shape[1] - 1,
                                    *negatives.shape[1:]),
        mask=mask.astype(np.float32),
    )


class PairLoader(_RecordsLoader):
  """Process-local batches of clip pairs for siamese systems (`pair_siamese`).

  Batches: "first", "second": float32 (L, C, 96, 94) performance clips; "same":
  float32 (L,) 1 = same quality class; "mask".

  Raises:
    FileNotFoundError: no complete records for the split, or no stats.json.
    ValueError: global batch not divisible by process_count.
  """

  ROWS = "clip pairs (same / different quality class)"

  def _epoch_rows(self, epoch: int | None) -> np.ndarray:
    return pairing.pair_siamese(self._index, self.config, 0 if epoch is None else epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows[:, :2])
    t = self._index.transposition
    clips = lambda col: model_input.prepare_clips(
        np.stack([recs[i]["performance"] for i in rows[:, col].tolist()]),
        self.stats, self.config, transpositions=t[rows[:, col]])
    return dict(first=clips(0), second=clips(1),
                same=rows[:, 2].astype(np.float32), mask=mask.astype(np.float32))


class ClipLoader(_RecordsLoader):
  """Process-local batches of scored clips for the regression systems (Direct 3.2.1,
  Delta 3.2.2, EmbDirect 3.2.4).

  Rows: every clip whose performance has a human score, shuffled per epoch from
  (config.seed, epoch) for train (incomplete last batch dropped), record order with
  a padded last batch (mask 0) otherwise. Process p of P gets rows [p*L, (p+1)*L) of
  each global batch, like TripletLoader (same Args).

  Batches: {"performance", "reference"}: float32 (L, C, 96, 94) model inputs
  (performance key-shifted when data.key_align = 'shift', both normalised with
  stats.json), "target": float32 (L,) human scores (score units, 0..100), "mask".

  Raises:
    FileNotFoundError: no complete records for the split, or no stats.json.
    ValueError: global batch not divisible by process_count.
  """

  ROWS = "scored clips"

  def _epoch_rows(self, epoch: int | None) -> np.ndarray:
    """int64 (N,) record indices of an epoch's scored clips, global order."""
    return pairing.order_clips(self._index, self.config, epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    rows = rows.reshape(-1)
    recs = self._fetch(rows)
    chosen = [recs[i] for i in rows.tolist()]
    return dict(
        performance=model_input.prepare_clips(np.stack([r["performance"] for r in chosen]),
                                  self.stats, self.config,
                                  transpositions=self._index.transposition[rows]),
        reference=model_input.prepare_clips(np.stack([r["reference"] for r in chosen]),
                                self.stats, self.config),
        target=self._index.score[rows].astype(np.float32),
        mask=mask.astype(np.float32),
    )


def load_segments(records_dir: str, split: str
                  ) -> Iterator[tuple[dict, np.ndarray, np.ndarray]]:
  """All records of a split in file order, for scoring (paper 3.2.3 / 4).

  Yields:
    (metadata, performance, reference): the index's record dict (song_id,
    performance_id, split, segment_start, reference_start, score (None if
    unknown), transposition, ...), and float32 (5, 96, 94) un-normalised
    features (use `prepare_clips` / `normalise` for model input).
  """
  records_dir = os.path.abspath(records_dir)
  source, _ = _read_index(records_dir, split)
  metas = source.metadata
  for start in range(0, len(metas), 64):
    keys = list(range(start, min(len(metas), start + 64)))
    for k, rec in zip(keys, source.read(keys)):
      yield (metas[k], rec["performance"].astype(np.float32),
             rec["reference"].astype(np.float32))
