"""Note-sequence measures of a (performance, reference) pair, for melody_confidence.py.

Measured for issue 19's "not the same melody" test, not shipped (BUILD_NOTES.md
"Alignment confidence and "not the same melody"": they add little over the
octave-tolerant frame measures of `asa_jax.assess.confidence`). They compare the
two recordings' NOTE sequences (`asa_jax.assess.notes.segment`, the per-note
feedback's segmentation), each normalised by what random orders of the reference's
own notes get, so that a threshold could transfer across corpora:

  * note cost ratio: DTW (librosa) cost of the performance's note pitches against
    the reference's (local cost min(distance, CAP_CENTS), mean over the path, at the
    best of 12 semitone transpositions) over the median cost against RANDOM_ORDERS
    random orders of the reference's notes (each at its own best transposition);
  * interval cost ratio: the same on the interval sequences (cents between successive
    notes: transposition-free), against the random orders' intervals;
  * note match gain: the share of the reference's notes the note path meets within
    MATCH_CENTS, minus the random orders' median share.
With fold=True the distances go to the nearest octave (`melody_alignment.
octave_distance`); with subseq=True a performance with fewer notes than the
reference may match any part of it (librosa's subsequence DTW).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asa_jax.features import melody_alignment

CAP_CENTS = 300.0  # a local cost saturates at a minor third: a wrong note is wrong.
MATCH_CENTS = 100.0
RANDOM_ORDERS = 16
SEED = 0
MIN_NOTES = 3


@dataclasses.dataclass(frozen=True)
class NoteMatch:
  """Note-sequence measures of a pair (module doc).

  Attributes:
    note_cost_ratio: note DTW cost / random orders' median (about 1: another melody).
    interval_cost_ratio: the same on intervals.
    note_match_gain: share of reference notes met within MATCH_CENTS minus random's.
  """
  note_cost_ratio: float
  interval_cost_ratio: float
  note_match_gain: float


def _distance(d: np.ndarray, fold: bool) -> np.ndarray:
  return melody_alignment.octave_distance(d) if fold else np.abs(d)


def _dtw(cost: np.ndarray, subseq: bool) -> tuple[float, np.ndarray]:
  """(mean local cost on the path, path int (L, 2))."""
  import librosa  # pylint: disable=g-import-not-at-top
  if subseq and cost.shape[0] < cost.shape[1]:  # the performance within the ref.
    d, path = librosa.sequence.dtw(C=cost, backtrack=True, subseq=True)
    return float(np.min(d[-1]) / len(path)), path
  d, path = librosa.sequence.dtw(C=cost, backtrack=True)
  return float(d[-1, -1] / len(path)), path


def _note_cost(p, r, fold, subseq) -> tuple[float, float]:
  """(best mean path cost over transpositions, share of r's notes met)."""
  base = float(np.median(r) - np.median(p))
  best = (np.inf, 0.0)
  for k in base + 100.0 * (np.arange(-5, 7) if fold else np.arange(-2, 3)):
    c = np.minimum(_distance(p[:, None] + k - r[None, :], fold), CAP_CENTS)
    cost, path = _dtw(c, subseq)
    if cost < best[0]:
      hit = c[path[:, 0], path[:, 1]] <= MATCH_CENTS
      best = (cost, np.unique(path[hit, 1]).size / len(r))
  return best


def _interval_cost(p, r, fold, subseq) -> float:
  dp, dr = np.diff(p), np.diff(r)
  return _dtw(np.minimum(_distance(dp[:, None] - dr[None, :], fold), CAP_CENTS),
              subseq)[0]


def measure(perf_notes: np.ndarray, ref_notes: np.ndarray, *, fold: bool = True,
            subseq: bool = False) -> NoteMatch:
  """Note-sequence measures of two recordings' note pitches (module doc).

  Args:
    perf_notes, ref_notes: float64 (K,), (L,) median note pitches in cents, in time
      order.
    fold, subseq: module doc.

  Raises:
    ValueError: fewer than MIN_NOTES notes in either.
  """
  p = np.asarray(perf_notes, np.float64)
  r = np.asarray(ref_notes, np.float64)
  if min(len(p), len(r)) < MIN_NOTES:
    raise ValueError(f"too few notes to compare: {len(p)} and {len(r)} "
                     f"(at least {MIN_NOTES})")
  cost, met = _note_cost(p, r, fold, subseq)
  icost = _interval_cost(p, r, fold, subseq)
  rng = np.random.default_rng(SEED)
  rand = []
  for _ in range(RANDOM_ORDERS):
    o = r[rng.permutation(len(r))]
    rand.append((*_note_cost(p, o, fold, subseq), _interval_cost(p, o, fold, subseq)))
  rc, rm, ric = np.median(np.array(rand), axis=0)
  return NoteMatch(cost / max(rc, 1e-6), icost / max(ric, 1e-6), met - rm)


def pitch_class_correlation(perf_cents: np.ndarray, ref_cents: np.ndarray) -> float:
  """Largest Pearson's r of the two 12-bin pitch-class histograms (voiced frames'
  cents rounded to semitones, mod 12) over the 12 transpositions."""
  def hist(x):
    h = np.bincount(np.round(np.asarray(x) / 100.0).astype(int) % 12, minlength=12)
    return h / max(h.sum(), 1)
  hp, hr = hist(perf_cents), hist(ref_cents)
  return max(float(np.corrcoef(np.roll(hp, s), hr)[0, 1]) for s in range(12))
