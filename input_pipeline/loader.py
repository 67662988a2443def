"""Triplet batches (paper 3.2.3, 3.3, 3.4) and scored-clip batches (regression
systems, 3.2.1, 3.2.2, 3.2.4: `ClipLoader`) from feature records with Grain.

Paper 3.3: scores >= 80 are "good", < 40 "poor"; "we randomly align a good
performance and a bad performance of the same song to form a contrasting pair",
and the positive and negative clips are "exactly aligned". Paper 3.2.3: the
anchor is the reference clip, positive = good performance clip, negative = poor
performance clip at the same position. Paper 3.4: batch size 128.

Pairing (`pair_triplets`), redone every epoch from (config.seed, epoch):
  * per song (sorted song_id), good = performances with score >= good_threshold,
    poor = score < poor_threshold (unscored performances take no part);
  * both lists are shuffled; max(len(good), len(poor)) pairs are formed, the
    shorter list cycled;
  * in each pair, every good segment is matched to the poor segment of the same
    reference file with the nearest reference_start, if within
    data.pair_tolerance_seconds; triplet = (anchor = the good record's reference
    clip, positive = its performance clip, negative = the poor clip);
  * all triplets are shuffled with the same generator.

Batching: global batches of train.global_batch_size rows in that order; process
p of P receives rows [p*L, (p+1)*L) of every global batch (L = global / P), so
the global batch is the same whatever P is, and a process reads only its own
rows' records. Train drops the incomplete last batch; other splits use the
epoch-0 pairing every time, pad the last batch (mask 0 rows) and keep it. Every
batch has "mask" float32 (L,) (ones for train).

Per clip: float16 -> float32, key alignment (data.key_align 'shift': performance
clips move by -transposition semitones, `shift_pitch_channels`), then channel
selection (features.channels) and normalisation with stats.json.

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

import collections
import dataclasses
import logging
import os
from typing import Iterator

import grain
import numpy as np

from asa_jax.features import constants
from input_pipeline import records as records_lib


def normalise(x: np.ndarray, stats: dict, channels) -> np.ndarray:
  """Channel selection + per-channel standardisation.

  Args:
    x: (..., 5, 96, 94) features with all constants.CHANNELS in stacking order.
    stats: {"mean": [5], "std": [5], "channels": [5 names]} (stats.json).
    channels: names to keep, in this order.

  Returns:
    float32 (..., len(channels), 96, 94): (x[c] - mean[c]) / std[c].

  Raises:
    ValueError: unknown channel name or x without 5 channels.
  """
  x = np.asarray(x)
  if x.shape[-3] != constants.N_CHANNELS:
    raise ValueError(f"expected (..., {constants.N_CHANNELS}, 96, 94) features,"
                     f" got {x.shape}")
  names = list(stats["channels"])
  try:
    idx = [names.index(c) for c in channels]
  except ValueError:
    raise ValueError(f"channels {list(channels)} not all in {names}") from None
  mean = np.asarray(stats["mean"], np.float32)[idx][:, None, None]
  std = np.asarray(stats["std"], np.float32)[idx][:, None, None]
  return (x[..., idx, :, :].astype(np.float32) - mean) / std


def prepare_clips(x: np.ndarray, stats: dict, config, *,
                  transpositions=None) -> np.ndarray:
  """The model input of stored clips: key shift (if any), channels, normalisation.

  Args:
    x: (B, 5, 96, 94) stored features (any float dtype).
    stats: stats.json dict.
    config: reads features.channels and data.key_align.
    transpositions: (B,) ints (semitones performance minus reference) for
      performance clips; None for reference clips (never shifted).

  Returns:
    float32 (B, len(features.channels), 96, 94).
  """
  x = np.asarray(x, dtype=np.float32)
  if transpositions is not None and config.data.key_align == "shift":
    from asa_jax.features import keyshift  # pylint: disable=g-import-not-at-top
    x = x.copy()
    for i, t in enumerate(np.asarray(transpositions).reshape(-1)):
      if int(t) != 0:
        x[i] = keyshift.shift_pitch_channels(
            x[i], -int(t), channels=constants.CHANNELS)
  elif config.data.key_align not in ("none", "shift"):
    raise ValueError(f"data.key_align must be 'none' or 'shift', not "
                     f"{config.data.key_align!r}")
  return normalise(x, stats, config.features.channels)


@dataclasses.dataclass(frozen=True)
class _Index:
  """Per-record metadata arrays of one split (global record order)."""
  song: np.ndarray  # object (N,) song_id
  performance: np.ndarray  # object (N,) performance_id
  reference_file: np.ndarray  # object (N,)
  reference_start: np.ndarray  # float64 (N,) seconds
  score: np.ndarray  # float64 (N,), nan when unknown
  transposition: np.ndarray  # int32 (N,)


def _read_index(records_dir: str, split: str
                ) -> tuple[records_lib.SplitSource, _Index]:
  """The split's records (`records.SplitSource`) and their metadata arrays."""
  source = records_lib.SplitSource(records_dir, split)
  metas = source.metadata
  index = _Index(
      song=np.array([m["song_id"] for m in metas], dtype=object),
      performance=np.array([m["performance_id"] for m in metas], dtype=object),
      reference_file=np.array([m.get("reference_file", "") for m in metas],
                              dtype=object),
      reference_start=np.array([m["reference_start"] for m in metas],
                               dtype=np.float64),
      score=np.array([np.nan if m["score"] is None else m["score"]
                      for m in metas], dtype=np.float64),
      transposition=np.array([m["transposition"] for m in metas],
                             dtype=np.int32),
  )
  return source, index


def _records_of(index: _Index) -> dict[str, list[int]]:
  """performance_id -> its record indices (record order)."""
  out = collections.defaultdict(list)
  for i, perf in enumerate(index.performance):
    out[perf].append(i)
  return out


def _match_segments(index: _Index, good: np.ndarray, poor: np.ndarray,
                    tolerance: float) -> list[tuple[int, int]]:
  """(good record, poor record) pairs at the nearest reference position."""
  out = []
  for ref_file in sorted(set(index.reference_file[good])):
    g = good[index.reference_file[good] == ref_file]
    p = poor[index.reference_file[poor] == ref_file]
    if not len(p):
      continue
    p = p[np.argsort(index.reference_start[p], kind="stable")]
    p_starts = index.reference_start[p]
    for i in g:
      s = index.reference_start[i]
      k = int(np.searchsorted(p_starts, s))
      cands = [j for j in (k - 1, k) if 0 <= j < len(p)]
      best = min(cands, key=lambda j: (abs(p_starts[j] - s), j))
      if abs(p_starts[best] - s) <= tolerance + 1e-9:
        out.append((int(i), int(p[best])))
  return out


def pair_triplets(index: _Index, config, epoch: int) -> np.ndarray:
  """Triplets of one epoch in global order (paper 3.3 pairing, see module doc).

  data.pairing 'threshold' (paper 3.3): good (score >= good_threshold) against poor
  (score < poor_threshold) performances of a song, max(len(good), len(poor)) pairs.
  data.pairing 'gap' (labelled degradations, not in the paper): every two scored
  performances of a song whose scores differ by at least data.min_score_gap form a
  pair, the better one giving anchor and positive; with K versions of one recording
  this ranks the versions against each other, not only the extremes.

  Returns:
    int64 (T, 2): (better record index -> anchor and positive, worse record index
    -> negative); deterministic in (config.seed, epoch).

  Raises:
    ValueError: unknown data.pairing.
  """
  d = config.data
  if d.pairing not in ("threshold", "gap"):
    raise ValueError(f"data.pairing must be 'threshold' or 'gap', not {d.pairing!r}")
  rng = np.random.default_rng([int(config.seed), int(epoch), 0x5EED])
  triplets = []
  records_of = _records_of(index)
  tolerance = float(d.pair_tolerance_seconds)
  if d.pairing == "gap":
    by_song = collections.defaultdict(list)
    for perf, recs in records_of.items():
      if not np.isnan(index.score[recs[0]]):
        by_song[index.song[recs[0]]].append(perf)
    for song in sorted(by_song):
      perfs = sorted(by_song[song])
      scores = {p: index.score[records_of[p][0]] for p in perfs}
      pairs = [(a, b) for a in perfs for b in perfs
               if scores[a] - scores[b] >= float(d.min_score_gap)]
      for k in rng.permutation(len(pairs)):
        better, worse = pairs[k]
        triplets.extend(_match_segments(index, np.array(records_of[better]),
                                        np.array(records_of[worse]), tolerance))
    out = np.array(triplets, dtype=np.int64).reshape(-1, 2)
    return out[rng.permutation(len(out))]
  songs = collections.defaultdict(lambda: ([], []))
  for perf, recs in records_of.items():
    score = index.score[recs[0]]
    song = index.song[recs[0]]
    if np.isnan(score):
      continue
    if score >= d.good_threshold:
      songs[song][0].append(perf)
    elif score < d.poor_threshold:
      songs[song][1].append(perf)
  for song in sorted(songs):
    good, poor = (sorted(x) for x in songs[song])
    if not good or not poor:
      continue
    good = [good[i] for i in rng.permutation(len(good))]
    poor = [poor[i] for i in rng.permutation(len(poor))]
    for k in range(max(len(good), len(poor))):
      triplets.extend(_match_segments(
          index, np.array(records_of[good[k % len(good)]]),
          np.array(records_of[poor[k % len(poor)]]), tolerance))
  out = np.array(triplets, dtype=np.int64).reshape(-1, 2)
  return out[rng.permutation(len(out))]


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
    return pair_triplets(self._index, self.config, 0 if epoch is None else epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows)
    good = [recs[i] for i in rows[:, 0].tolist()]
    poor = [recs[i] for i in rows[:, 1].tolist()]
    anchor = np.stack([r["reference"] for r in good])
    positive = np.stack([r["performance"] for r in good])
    negative = np.stack([r["performance"] for r in poor])
    t = self._index.transposition
    return dict(
        anchor=prepare_clips(anchor, self.stats, self.config),
        positive=prepare_clips(positive, self.stats, self.config,
                               transpositions=t[rows[:, 0]]),
        negative=prepare_clips(negative, self.stats, self.config,
                               transpositions=t[rows[:, 1]]),
        mask=mask.astype(np.float32),
    )


def add_negatives(index: _Index, triplets: np.ndarray, config, epoch: int,
                  negatives: int) -> np.ndarray:
  """Extends (better, worse) triplets to `negatives` negatives each (Lee & Nam 2019).

  The first negative is the triplet's own; each other one is a segment of a random
  performance of the same song that is worse than the positive's by the pairing
  rule (data.pairing 'threshold': score < poor_threshold; 'gap': at least
  min_score_gap lower), on the same reference file, nearest in reference position
  within data.pair_tolerance_seconds; a row without such a segment repeats its own
  negative.

  Args:
    index: the split's record index.
    triplets: int64 (T, 2) from `pair_triplets`.
    config: reads seed and data.{pairing, poor_threshold, min_score_gap,
      pair_tolerance_seconds}.
    epoch: seeds the draws with (config.seed, epoch).
    negatives: K >= 1.

  Returns:
    int64 (T, 1 + K): positive record, then K negative records.

  Raises:
    ValueError: K < 1.
  """
  if negatives < 1:
    raise ValueError(f"negatives must be >= 1, got {negatives}")
  d = config.data
  rng = np.random.default_rng([int(config.seed), int(epoch), 0x4E45])
  out = np.zeros((len(triplets), 1 + negatives), np.int64)
  out[:, :2] = triplets
  if negatives == 1 or not len(triplets):
    return out
  records_of = _records_of(index)
  perfs_of_song = collections.defaultdict(list)
  for perf in sorted(records_of):
    rec = records_of[perf][0]
    if not np.isnan(index.score[rec]):
      perfs_of_song[index.song[rec]].append(perf)
  tolerance = float(d.pair_tolerance_seconds)

  def worse(song, score):
    if d.pairing == "gap":
      return [p for p in perfs_of_song[song]
              if score - index.score[records_of[p][0]] >= float(d.min_score_gap)]
    return [p for p in perfs_of_song[song]
            if index.score[records_of[p][0]] < float(d.poor_threshold)]

  cache = {}
  for t, (pos, neg) in enumerate(triplets):
    key = (index.song[pos], index.score[pos])
    if key not in cache:
      cache[key] = worse(*key)
    cands = cache[key]
    for k in range(2, 1 + negatives):
      out[t, k] = neg
      if not cands:
        continue
      perf = cands[int(rng.integers(len(cands)))]
      match = _match_segments(index, np.array([pos]), np.array(records_of[perf]),
                              tolerance)
      if match:
        out[t, k] = match[0][1]
  return out


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
    return add_negatives(self._index, pair_triplets(self._index, self.config, e),
                         self.config, e, int(self.config.loss.negatives))

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows)
    t = self._index.transposition
    pos = rows[:, 0]
    negs = rows[:, 1:].reshape(-1)
    negatives = prepare_clips(np.stack([recs[i]["performance"] for i in negs.tolist()]),
                              self.stats, self.config, transpositions=t[negs])
    return dict(
        anchor=prepare_clips(np.stack([recs[i]["reference"] for i in pos.tolist()]),
                             self.stats, self.config),
        positive=prepare_clips(np.stack([recs[i]["performance"] for i in pos.tolist()]),
                               self.stats, self.config, transpositions=t[pos]),
        negatives=negatives.reshape(rows.shape[0], rows.shape[1] - 1,
                                    *negatives.shape[1:]),
        mask=mask.astype(np.float32),
    )


def pair_siamese(index: _Index, config, epoch: int) -> np.ndarray:
  """Clip pairs of one epoch, same / different quality class 1:1 (siamese systems).

  Classes are paper 3.3's: good (score >= data.good_threshold) and poor (score <
  data.poor_threshold); other performances take no part. Different-class pairs are
  the threshold pairing's (good, poor) segment pairs (`pair_triplets` with
  pairing 'threshold'); as many same-class pairs are drawn (with replacement) from
  the segment pairs of two different performances of one song and one class, matched
  by reference position like the triplets.

  Returns:
    int64 (T, 3): (first record, second record, 1 if same class else 0), shuffled;
    deterministic in (config.seed, epoch).
  """
  threshold = config.copy_and_resolve_references()
  threshold.data.pairing = "threshold"
  different = pair_triplets(index, threshold, epoch)
  d = config.data
  rng = np.random.default_rng([int(config.seed), int(epoch), 0x51A3])
  records_of = _records_of(index)
  groups = collections.defaultdict(list)
  for perf in sorted(records_of):
    rec = records_of[perf][0]
    score = index.score[rec]
    if np.isnan(score):
      continue
    cls = ("good" if score >= d.good_threshold else
           "poor" if score < d.poor_threshold else None)
    if cls is not None:
      groups[(index.song[rec], cls)].append(perf)
  same = []
  for key in sorted(groups):
    perfs = groups[key]
    for a in range(len(perfs)):
      for b in range(a + 1, len(perfs)):
        same.extend(_match_segments(index, np.array(records_of[perfs[a]]),
                                    np.array(records_of[perfs[b]]),
                                    float(d.pair_tolerance_seconds)))
  n = len(different)
  rows = [np.concatenate([different.reshape(-1, 2), np.zeros((n, 1), np.int64)], 1)]
  if same and n:
    pick = np.array(same, np.int64)[rng.integers(len(same), size=n)]
    rows.append(np.concatenate([pick, np.ones((n, 1), np.int64)], 1))
  out = np.concatenate(rows).astype(np.int64)
  return out[rng.permutation(len(out))]


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
    return pair_siamese(self._index, self.config, 0 if epoch is None else epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    recs = self._fetch(rows[:, :2])
    t = self._index.transposition
    clips = lambda col: prepare_clips(
        np.stack([recs[i]["performance"] for i in rows[:, col].tolist()]),
        self.stats, self.config, transpositions=t[rows[:, col]])
    return dict(first=clips(0), second=clips(1),
                same=rows[:, 2].astype(np.float32), mask=mask.astype(np.float32))


def order_clips(index: _Index, config, epoch: int | None) -> np.ndarray:
  """Scored clips of one epoch in global order (regression systems, paper 3.2.1).

  Every record whose performance has a human score takes part (target = that
  score). epoch None: record order (evaluation); otherwise a permutation drawn from
  (config.seed, epoch).

  Returns:
    int64 (N,) record indices.
  """
  scored = np.flatnonzero(~np.isnan(index.score)).astype(np.int64)
  if epoch is None:
    return scored
  rng = np.random.default_rng([int(config.seed), int(epoch), 0xC11F])
  return scored[rng.permutation(len(scored))]


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
    return order_clips(self._index, self.config, epoch)

  def _make_batch(self, rows: np.ndarray, mask: np.ndarray) -> dict:
    rows = rows.reshape(-1)
    recs = self._fetch(rows)
    chosen = [recs[i] for i in rows.tolist()]
    return dict(
        performance=prepare_clips(np.stack([r["performance"] for r in chosen]),
                                  self.stats, self.config,
                                  transpositions=self._index.transposition[rows]),
        reference=prepare_clips(np.stack([r["reference"] for r in chosen]),
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
