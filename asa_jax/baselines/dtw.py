"""DTWDist pitch, volume and rhythm ratings against a reference (paper 4.2.2).

Zhang et al. (ISMIR 2021, section 4.2.2) implement the Pitch-, Volume- and
Rhythm-based Ratings of Tsai & Lee (IEEE TASLP 2012, the paper's [3]; also
Tsai, Ma & Hsu 2015, [30]): dynamic-time-warping distances between a performance
and a reference, "more similar sequences indicates better singing". The paper's
reference was MIDI (pitch, rhythm) and the recording's energy (volume); we have
the reference vocal, so every rating compares two `Contours`:

  pitch: the voiced f0 in cents of each, key transposition removed by
    subtracting each contour's median (median-centred cents: also removes
    octave and fine-tuning offsets); unvoiced frames are dropped (the pitch
    sequence, as a note sequence has no rests). Local cost
    min(|a - b|, PITCH_COST_CAP) cents (an octave error is not worse than a
    tritone).
  volume: the RMS energy in dB over the active span (first to last frame
    within 40 dB of the loudest), floored 60 dB below the loudest frame, then
    standardised (zero mean, unit variance) so that recording gain and dynamic
    range scale drop out. Local cost |a - b| (standard deviations).
  rhythm: the onset times, tempo-normalised to [0, 1] by the first and last
    onset ((t - t_0) / (t_K - t_0)), so that a uniformly faster or slower
    performance matches exactly; DTW between the two onset sequences measures
    how far the onsets deviate from a uniform tempo relative to the reference.
    Local cost |a - b| (fraction of the sung span). Fewer than 2 onsets, or a
    zero span, in either: rating -1 (the largest possible distance).

DTW is librosa.sequence.dtw (steps (1,1), (0,1), (1,0), unweighted), the
distance is the accumulated cost at the end divided by the warping path's length
(mean cost per path step), and every rating is MINUS that distance, so HIGHER =
BETTER singing (0 = identical up to time warping). Sequences longer than
MAX_FRAMES are block-averaged down to at most MAX_FRAMES (memory and time are
O(N M)).
"""

from __future__ import annotations

import numpy as np

from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import names

DTW_MEASURES = names.DTW[:3]  # The DTWDist ratings of paper 4.2.2.
PITCH_COST_CAP = 600.0  # cents.
VOLUME_ACTIVE_DB = 40.0  # active span: frames within this of the loudest.
VOLUME_FLOOR_DB = 60.0  # energy floored this far below the loudest frame.
MAX_FRAMES = 3000
MIN_FRAMES = 2


def _decimate(x: np.ndarray, max_frames: int = MAX_FRAMES) -> np.ndarray:
  """Block-averages a 1D sequence to at most max_frames values."""
  if len(x) <= max_frames:
    return x
  factor = -(-len(x) // max_frames)
  n = len(x) // factor * factor
  head = x[:n].reshape(-1, factor).mean(axis=1)
  return np.concatenate([head, [x[n:].mean()]]) if n < len(x) else head


def dtw_distance(a: np.ndarray, b: np.ndarray, *,
                 cap: float | None = None) -> float:
  """Mean local cost along the DTW path between two 1D sequences.

  Args:
    a: (N,) float sequence; b: (M,) float sequence (N, M >= 1).
    cap: if given, the local cost is min(|a_i - b_j|, cap).

  Returns:
    D[N-1, M-1] / path length, with D the accumulated cost matrix of
    librosa.sequence.dtw on the local cost |a_i - b_j|.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (slow import)
  a = np.asarray(a, np.float64)
  b = np.asarray(b, np.float64)
  cost = np.abs(a[:, None] - b[None, :])
  if cap is not None:
    cost = np.minimum(cost, cap)
  acc, path = librosa.sequence.dtw(C=cost, backtrack=True)
  return float(acc[-1, -1] / len(path))


def _check_hop(perf: contours_lib.Contours, ref: contours_lib.Contours):
  if not np.isclose(perf.hop_s, ref.hop_s):
    raise ValueError(f"contours have different frame periods: {perf.hop_s} s "
                     f"vs {ref.hop_s} s")


def centred_cents(c: contours_lib.Contours) -> np.ndarray:
  """float64 (V,) voiced cents minus their median (key transposition removed).

  Raises:
    ValueError: fewer than MIN_FRAMES voiced frames.
  """
  cents = c.voiced_cents()
  if cents.size < MIN_FRAMES:
    raise ValueError(f"too few voiced frames for a pitch rating: {cents.size}")
  return cents - np.median(cents)


def dtw_pitch_rating(perf: contours_lib.Contours,
                     ref: contours_lib.Contours) -> float:
  """Pitch-based rating (Tsai & Lee 2012; paper 4.2.2): minus the DTW distance
  in cents between the median-centred voiced pitch sequences. Higher = better.

  Raises:
    ValueError: fewer than 2 voiced frames in either, or different hop_s.
  """
  _check_hop(perf, ref)
  return -dtw_distance(_decimate(centred_cents(perf)),
                       _decimate(centred_cents(ref)), cap=PITCH_COST_CAP)


def standardised_energy(c: contours_lib.Contours) -> np.ndarray:
  """float64 (F,) energy (dB) over the active span, floored, standardised.

  Raises:
    ValueError: no energy contour (an f0-only Contours).
  """
  if c.energy_db is None:
    raise ValueError("contours have no energy (built from an f0 curve)")
  db = np.asarray(c.energy_db, np.float64)
  top = db.max()
  active = np.flatnonzero(db >= top - VOLUME_ACTIVE_DB)
  db = np.maximum(db[active[0]:active[-1] + 1], top - VOLUME_FLOOR_DB)
  std = db.std()
  return (db - db.mean()) / std if std > 1e-9 else db - db.mean()


def dtw_volume_rating(perf: contours_lib.Contours,
                      ref: contours_lib.Contours) -> float:
  """Volume-based rating (Tsai & Lee 2012; paper 4.2.2): minus the DTW distance
  between the standardised energy contours. Higher = better.

  Raises:
    ValueError: either contour has no energy, or different hop_s.
  """
  _check_hop(perf, ref)
  return -dtw_distance(_decimate(standardised_energy(perf)),
                       _decimate(standardised_energy(ref)))


def normalised_onsets(c: contours_lib.Contours) -> np.ndarray | None:
  """Onsets mapped to [0, 1] by the first and last onset; None if < 2 onsets
  or a zero span.

  Raises:
    ValueError: no onsets (an f0-only Contours).
  """
  if c.onsets_s is None:
    raise ValueError("contours have no onsets (built from an f0 curve)")
  t = np.sort(np.asarray(c.onsets_s, np.float64))
  if t.size < 2 or t[-1] - t[0] <= 0:
    return None
  return (t - t[0]) / (t[-1] - t[0])


def dtw_rhythm_rating(perf: contours_lib.Contours,
                      ref: contours_lib.Contours) -> float:
  """Rhythm-based rating (Tsai & Lee 2012; paper 4.2.2): minus the DTW distance
  between the tempo-normalised onset sequences, in [-1, 0]. Higher = better.

  Raises:
    ValueError: either contour has no onsets.
  """
  a, b = normalised_onsets(perf), normalised_onsets(ref)
  if a is None or b is None:
    return -1.0
  return -dtw_distance(a, b)


DTW_RATINGS = {
    "dtw_pitch": dtw_pitch_rating,
    "dtw_volume": dtw_volume_rating,
    "dtw_rhythm": dtw_rhythm_rating,
}
