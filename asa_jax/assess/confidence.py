"""Alignment confidence: does the performance follow the reference's melody? (issue 19)

Measures of one `alignment.align` result, on the two recordings' voiced,
octave-repaired pitch (`dtw_melody.melody_cents`):

  * band share: the fraction of the DTW path's points whose reference time lies
    within BAND_SECONDS of the global time map (reference = tempo_ratio x performance
    + latency). The same melody sung with rubato stays near that line; another melody
    forces the path to wander.
  * cost ratio: the path's mean local cost (cents, on sequences block-averaged to at
    most dtw_melody.SEARCH_FRAMES frames) over the median cost the performance gets
    against RANDOM_MELODIES random melodies made of the reference's own pitch material
    (its voiced sequence cut into RANDOM_CHUNK_SECONDS pieces and shuffled, seeded),
    each at the better of dtw_melody's two transposition seeds. The same melody gets
    well under 1; another melody about 1.
  * match gain: the fraction of the path within MATCH_CENTS (a semitone) minus the
    random melodies' (median) fraction: about 0 for another melody.

Pitch distances are taken to the nearest octave (FOLD_OCTAVES, `melody_alignment.
octave_distance`, up to a tritone), for the path and the random melodies alike:
singers drop a passage out of their range by an octave and still sing the melody
(MAST's exam phrases against piano references: BUILD_NOTES.md).

They are combined by a logistic model (INTERCEPT, COEFFICIENTS; fitted with scikit-learn on SSVD
pairs by `benchmarks/melody_confidence.py`; BUILD_NOTES.md "Alignment confidence and
"not the same melody"") into `confidence` in [0, 1]; under THRESHOLD the
answer is "not the same melody" (`errors.NotSameMelodyError`). Not in the paper (Zhang
et al. 2021 assume the performance sings the reference's song, section 3.3).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from asa_jax.assess import alignment as alignment_lib
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw_melody
from asa_jax.features import melody_alignment

BAND_SECONDS = 2.0  # half-width of the diagonal band around the global time map.
RANDOM_MELODIES = 4  # shuffled references the cost is compared with.
RANDOM_CHUNK_SECONDS = 0.5  # voiced time per shuffled piece.
RANDOM_SEED = 0
# Logistic model of P(same melody) from (band share, cost ratio) and the refusal
# threshold on it: fitted by benchmarks/melody_confidence.py (BUILD_NOTES.md).
# Fitted on half of the SSVD v1 melodies (scikit-learn LogisticRegression, C=10) on
# the octave-tolerant measures; THRESHOLD: 1 % of that half's same-melody pairs fall
# under it. Held-out SSVD half: 1.2 % of same-melody pairs refused, 100 % of
# different-melody pairs; MAST: not met (BUILD_NOTES.md).
INTERCEPT = 0.592
COEFFICIENTS = {"band_share": 2.226, "cost_ratio": -6.180, "match_gain": 5.686}
THRESHOLD = 0.4977


@dataclasses.dataclass(frozen=True)
class AlignmentConfidence:
  """How well a performance follows the reference's melody (module doc).

  Attributes:
    band_share: fraction (0..1) of the DTW path within BAND_SECONDS of the global
      time map.
    cost_cents: mean local cost of the path (cents) at the search resolution.
    random_cost_cents: median cost (cents) of the performance against random
      melodies made of the reference's pitch material.
    cost_ratio: cost_cents / random_cost_cents (about 1 for another melody).
    match_gain: fraction of the path within MATCH_CENTS minus the random melodies'
      (median) fraction (about 0 for another melody).
    confidence: P(same melody) of the logistic model, 0..1.
    threshold: the refusal threshold on confidence.
  """
  band_share: float
  cost_cents: float
  random_cost_cents: float
  cost_ratio: float
  match_gain: float
  confidence: float
  threshold: float = THRESHOLD

  @property
  def same_melody(self) -> bool:
    """Whether the confidence reaches the threshold."""
    return self.confidence >= self.threshold

  def describe(self) -> str:
    """One human-readable line of the measures."""
    return (f"{self.band_share:.0%} of the alignment path on the diagonal band, "
            f"pitch cost {self.cost_ratio:.2f} x a random melody's, "
            f"{self.match_gain:+.0%} more path within a semitone than a random "
            f"melody; confidence {self.confidence:.2f}, threshold "
            f"{self.threshold:.2f}")

  def to_dict(self) -> dict:
    """JSON-ready dict (with same_melody)."""
    return {**dataclasses.asdict(self), "same_melody": self.same_melody}


def band_share(melody: alignment_lib.MelodyMap, band_s: float = BAND_SECONDS
               ) -> float:
  """Fraction of the path's points within band_s (s) of the global time map."""
  line = melody.tempo_ratio * melody.perf_times + melody.latency_s
  return float(np.mean(np.abs(melody.ref_times - line) <= band_s))


def _shuffled(ref: np.ndarray, chunk: int, rng: np.random.Generator) -> np.ndarray:
  pieces = [ref[i:i + chunk] for i in range(0, len(ref), chunk)]
  return np.concatenate([pieces[k] for k in rng.permutation(len(pieces))])


MATCH_CENTS = 100.0  # a path cell "matches" within a semitone.
# Distances to the nearest octave (module doc): singers who drop a passage an
# octave (out of their range) still sing the melody.
FOLD_OCTAVES = True


@dataclasses.dataclass(frozen=True)
class PathCosts:
  """Costs of the alignment path and of random melodies (`costs`).

  Attributes:
    cost_cents: mean local cost of the path, cents.
    random_cost_cents: median of the random melodies' costs, cents.
    match: fraction of path cells within MATCH_CENTS (weighted as the cost).
    random_match: median of the random melodies' match fractions.
  """
  cost_cents: float
  random_cost_cents: float
  match: float
  random_match: float


def _cost_and_match(p, r, offset, fold_octaves):
  cost, path = dtw_melody.dtw_cost(p, r, offset, fold_octaves=fold_octaves)
  w = melody_alignment.path_weights(path)
  d = p[path[:, 0]] + offset - r[path[:, 1]]
  d = melody_alignment.octave_distance(d) if fold_octaves else np.abs(d)
  return cost, float(np.sum(w * (d <= MATCH_CENTS)) / np.sum(w))


def costs(perf_cents: np.ndarray, ref_cents: np.ndarray, hop_s: float,
          offset_cents: float, *, fold_octaves: bool = FOLD_OCTAVES) -> PathCosts:
  """Path and random-melody costs at the search resolution (module doc).

  Args:
    perf_cents, ref_cents: float64 (N,), (M,) voiced, octave-repaired cents
      (`dtw_melody.melody_cents`).
    hop_s: their frame period, seconds.
    offset_cents: the alignment's transposition (added to the performance).
    fold_octaves: pitch distances to the nearest octave (module doc); False gives
      the plain distances (the measures before the octave tolerance, kept for
      benchmarks/melody_confidence.py's comparison).

  Raises:
    ValueError: lengths that admit no DTW path (as `dtw_melody.dtw_cost`).
  """
  sp, sr = melody_alignment.tempo_factors(
      len(perf_cents), len(ref_cents), dtw_melody.SEARCH_FRAMES)
  block = melody_alignment.block_mean
  p, r = block(perf_cents, sp), block(ref_cents, sr)
  cost, match = _cost_and_match(p, r, offset_cents, fold_octaves)
  chunk = max(1, int(round(RANDOM_CHUNK_SECONDS / (hop_s * sr))))
  rng = np.random.default_rng(RANDOM_SEED)
  randoms = []
  for _ in range(RANDOM_MELODIES):
    other = _shuffled(r, chunk, rng)
    seeds = (float(np.median(other) - np.median(p)),
             dtw_melody.histogram_offset(p, other))
    randoms.append(min(_cost_and_match(p, other, s, fold_octaves) for s in seeds))
  rc, rm = np.median(np.array(randoms), axis=0)
  return PathCosts(float(cost), float(rc), match, float(rm))


def probability(features: dict) -> float:
  """The logistic model's P(same melody) of the measures named in COEFFICIENTS."""
  z = INTERCEPT + sum(c * features[k] for k, c in COEFFICIENTS.items())
  return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def measure(perf: contours_lib.Contours, ref: contours_lib.Contours,
            melody: alignment_lib.MelodyMap) -> AlignmentConfidence:
  """The AlignmentConfidence of an alignment (module doc).

  Args:
    perf, ref: the contours `melody` was aligned from (same hop).
    melody: `alignment.align(perf, ref)`.

  Raises:
    ValueError: too few voiced frames (as `dtw_melody.melody_cents`).
  """
  p = dtw_melody.melody_cents(perf)
  r = dtw_melody.melody_cents(ref)
  c = costs(p, r, perf.hop_s, melody.offset_cents)
  features = {"band_share": band_share(melody),
              "cost_ratio": c.cost_cents / max(c.random_cost_cents, 1e-6),
              "match_gain": c.match - c.random_match}
  return AlignmentConfidence(cost_cents=c.cost_cents,
                             random_cost_cents=c.random_cost_cents,
                             confidence=probability(features), **features)
