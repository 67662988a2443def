"""Which records make a training row: the pairing rules, plain numpy (paper 3.3).

Paper 3.3: scores >= 80 are "good", < 40 "poor"; "we randomly align a good
performance and a bad performance of the same song to form a contrasting pair",
and the positive and negative clips are "exactly aligned". Paper 3.2.3: the
anchor is the reference clip, positive = good performance clip, negative = poor
performance clip at the same position.

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

Every function takes a `RecordIndex` (the split's record metadata as arrays) and
returns int64 record indices; input_pipeline/loader.py turns them into batches.
"""

from __future__ import annotations

import collections
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RecordIndex:
  """Per-record metadata arrays of one split (global record order; `index_of`)."""
  song: np.ndarray  # object (N,) song_id
  performance: np.ndarray  # object (N,) performance_id
  reference_file: np.ndarray  # object (N,)
  reference_start: np.ndarray  # float64 (N,) seconds
  score: np.ndarray  # float64 (N,), nan when unknown
  transposition: np.ndarray  # int32 (N,)



def index_of(metas: list[dict]) -> RecordIndex:
  """The metadata arrays of records `metas` (record index dicts, global order)."""
  return RecordIndex(
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


def _records_of(index: RecordIndex) -> dict[str, list[int]]:
  """performance_id -> its record indices (record order)."""
  out = collections.defaultdict(list)
  for i, perf in enumerate(index.performance):
    out[perf].append(i)
  return out


def _match_segments(index: RecordIndex, good: np.ndarray, poor: np.ndarray,
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


def pair_triplets(index: RecordIndex, config, epoch: int) -> np.ndarray:
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


def add_negatives(index: RecordIndex, triplets: np.ndarray, config, epoch: int,
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


def pair_siamese(index: RecordIndex, config, epoch: int) -> np.ndarray:
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


def order_clips(index: RecordIndex, config, epoch: int | None) -> np.ndarray:
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
