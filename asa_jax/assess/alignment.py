"""Key offset, tempo ratio and a time map between a performance and its reference.

The two recordings' CREPE f0 contours are aligned by `asa_jax.baselines.dtw_melody.
align_melodies` (Molina et al., ICASSP 2013: octave repair, the transposition that
minimises the DTW cost, slope-constrained DTW). From its path we take
  * the key offset: the transposition, rounded to semitones (performance minus
    reference, octaves folded to [-6, 5] like `input_pipeline.segments`);
  * a global linear time map reference = tempo_ratio * performance + latency, fitted
    to the path by Theil-Sen (scipy.stats.theilslopes), robust to local errors: a
    constant microphone latency and a uniformly slower performance are absorbed here
    and not reported as timing errors;
  * a local time map (the line plus the path's smoothed offset from it) and, per
    window, a detune-invariant lag search (`local_fit`): per-segment pitch and timing.
Not in the paper (Zhang et al. 2021 score without alignment, section 3.3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw_melody
from asa_jax.features import melody_alignment

THEIL_SEN_POINTS = 400  # path points used by the robust global fit.
# The local time map: the DTW path's offset from the global fit, running median over
# this many seconds either side. It follows rubato over phrases but not the DTW's
# note-level pulls (a detuned stepwise phrase warped onto the neighbouring notes).
SMOOTH_SECONDS = 3.0


@dataclasses.dataclass(frozen=True)
class MelodyMap:
  """The alignment of a performance's melody to the reference's.

  Attributes:
    offset_cents: cents ADDED to the performance to reach the reference's pitch
      (octaves included; e.g. -300 for a performance 3 semitones above).
    key_offset_semitones: performance minus reference key, semitones, in [-6, 5].
    tempo_ratio: d(reference time) / d(performance time) of the global fit: 1.0 =
      same tempo, 0.8 = the performance takes 1.25x as long.
    latency_s: intercept of the global fit (reference time at performance time 0),
      seconds.
    perf_times: float64 (L,) performance times (s) of the DTW path, ascending.
    ref_times: float64 (L,) matching reference times (s), non-decreasing.
    cost_cents: mean absolute deviation along the path (dtw_melody's cost).
    smooth_offsets: float64 (L,) reference-time offset (s) of the path from the
      global fit, running median over +-SMOOTH_SECONDS (`local_reference`).
  """
  offset_cents: float
  key_offset_semitones: int
  tempo_ratio: float
  latency_s: float
  perf_times: np.ndarray
  ref_times: np.ndarray
  cost_cents: float
  smooth_offsets: np.ndarray

  def local_reference(self, t) -> np.ndarray:
    """Reference times (s) of performance times t (s) on the smoothed local map:
    global fit + the smoothed DTW offset (held constant beyond the path)."""
    t = np.asarray(t, np.float64)
    return (self.tempo_ratio * t + self.latency_s
            + np.interp(t, self.perf_times, self.smooth_offsets))


def align(perf: contours_lib.Contours, ref: contours_lib.Contours) -> MelodyMap:
  """Aligns two recordings' f0 contours (module doc).

  Args:
    perf, ref: contours on the same frame grid, f0 0 where unvoiced.

  Returns:
    The MelodyMap.

  Raises:
    ValueError: different frame periods, too few voiced frames in either (names
      which), or sequences that admit no DTW path.
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top
  if not np.isclose(perf.hop_s, ref.hop_s):
    raise ValueError(f"contours have different frame periods: {perf.hop_s} s vs "
                     f"{ref.hop_s} s")
  p_cents = dtw_melody.melody_cents(perf)
  r_cents = dtw_melody.melody_cents(ref)
  result = dtw_melody.align_melodies(p_cents, r_cents)
  fp, fr = result.perf_factor, result.ref_factor
  # Block means exactly as align_melodies formed its sequences.
  block = melody_alignment.block_mean
  p_times = block(np.flatnonzero(perf.voiced) * perf.hop_s, fp)
  r_times = block(np.flatnonzero(ref.voiced) * ref.hop_s, fr)
  i, j = result.path[:, 0], result.path[:, 1]
  perf_t, ref_t = p_times[i], r_times[j]
  # Path points of one performance time: keep the mean reference time (np.interp
  # needs increasing x).
  uniq, inverse = np.unique(perf_t, return_inverse=True)
  ref_u = np.bincount(inverse, ref_t) / np.bincount(inverse)
  pick = np.linspace(0, len(uniq) - 1, min(len(uniq), THEIL_SEN_POINTS)).astype(int)
  if len(uniq) >= 2:
    slope = scipy.stats.theilslopes(ref_u[pick], uniq[pick])[0]
  else:
    slope = 1.0
  if not np.isfinite(slope) or slope <= 0:
    slope = 1.0
  # Centre the line on the path (theilslopes' intercept is median(y) - slope *
  # median(x), which need not leave the median residual at 0).
  intercept = float(np.median(ref_u - slope * uniq))
  ref_mono = np.maximum.accumulate(ref_u)
  offsets = ref_mono - (slope * uniq + intercept)
  lo = np.searchsorted(uniq, uniq - SMOOTH_SECONDS)
  hi = np.searchsorted(uniq, uniq + SMOOTH_SECONDS, side="right")
  smooth = np.array([np.median(offsets[a:b]) for a, b in zip(lo, hi)])
  semitones = int(round(-result.offset_cents / 100.0)) % 12
  return MelodyMap(
      offset_cents=float(result.offset_cents),
      key_offset_semitones=semitones - 12 if semitones >= 6 else semitones,
      tempo_ratio=float(slope), latency_s=float(intercept), perf_times=uniq,
      ref_times=ref_mono,
      cost_cents=float(result.cost_cents), smooth_offsets=smooth)


MAX_LAG_SECONDS = 0.5  # local timing search, either side of the global map.
LAG_PENALTY_CENTS_PER_S = 20.0  # prefers the smaller lag among near-equal fits.


def frame_cents(c: contours_lib.Contours) -> np.ndarray:
  """float64 (T,) pitch in cents re A4 per frame, octave errors repaired
  (dtw_melody.repair_octaves); nan where unvoiced."""
  out = np.full(c.n_frames, np.nan)
  voiced = c.voiced
  if voiced.sum() >= dtw_melody.MIN_FRAMES:
    out[voiced] = dtw_melody.repair_octaves(c.voiced_cents(), c.hop_s)[0]
  return out


@dataclasses.dataclass(frozen=True)
class LocalFit:
  """Pitch and timing of one performance window against the reference.

  Attributes:
    lag_s: reference-time shift (s) added to the local map for this window.
    timing_offset_s: how much later (> 0) than the global map (tempo ratio and
      latency) predicts the window is sung, seconds of performance time: minus
      (the local map's median offset in the window + lag_s) / tempo_ratio.
    deviation_cents: median of performance + offset - reference pitch at that
      lag, cents.
    aligned_s: voiced time compared (both voiced), seconds.
  """
  lag_s: float
  timing_offset_s: float
  deviation_cents: float
  aligned_s: float


def local_fit(perf_cents: np.ndarray, ref_cents: np.ndarray, hop_s: float,
              melody: MelodyMap, start_s: float, end_s: float,
              min_aligned_s: float) -> LocalFit | None:
  """Local timing and pitch of the window [start_s, end_s) of the performance.

  The DTW path of `align` follows pitch, so a phrase sung a semitone flat in a
  stepwise melody can be warped onto the neighbouring note and read as early. Here
  the window's frames are compared with the reference at the smoothed local map
  (`MelodyMap.local_reference`) plus a constant lag in [-MAX_LAG_SECONDS, MAX_LAG_SECONDS] (one-frame steps), choosing the lag
  that minimises the median absolute deviation of the pitch difference from its own
  median, plus LAG_PENALTY_CENTS_PER_S * |lag|. That cost ignores a constant detune,
  so detuning shows as `deviation_cents` and timing as the lag.

  Args:
    perf_cents, ref_cents: `frame_cents` of the two recordings (same hop).
    hop_s: their frame period, seconds.
    melody: the global alignment (offset, tempo ratio, latency).
    start_s, end_s: the window, performance seconds.
    min_aligned_s: least voiced time compared for a result.

  Returns:
    The LocalFit, or None when no lag compares min_aligned_s of voiced frames.
  """
  k = np.arange(max(int(np.ceil(start_s / hop_s)), 0),
                min(int(np.ceil(end_s / hop_s)), len(perf_cents)))
  k = k[np.isfinite(perf_cents[k])]
  if k.size * hop_s < min_aligned_s:
    return None
  p = perf_cents[k] + melody.offset_cents
  base = melody.local_reference(k * hop_s)
  drift = float(np.median(base - (melody.tempo_ratio * (k * hop_s)
                                  + melody.latency_s)))
  lags = np.arange(-MAX_LAG_SECONDS, MAX_LAG_SECONDS + hop_s / 2, hop_s)
  idx = np.round((base[None, :] + lags[:, None]) / hop_s).astype(int)
  inside = (idx >= 0) & (idx < len(ref_cents))
  r = np.where(inside, ref_cents[np.clip(idx, 0, len(ref_cents) - 1)], np.nan)
  d = p[None, :] - r  # (lags, frames), nan where either is unvoiced.
  count = np.isfinite(d).sum(axis=1)
  ok = count * hop_s >= min_aligned_s
  if not ok.any():
    return None
  with np.errstate(all="ignore"):
    import warnings  # pylint: disable=g-import-not-at-top
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)
      med = np.nanmedian(d, axis=1)
      mad = np.nanmedian(np.abs(d - med[:, None]), axis=1)
  cost = np.where(ok, mad + LAG_PENALTY_CENTS_PER_S * np.abs(lags), np.inf)
  best = int(np.argmin(cost))
  lag = float(lags[best])
  return LocalFit(lag_s=lag, timing_offset_s=-(drift + lag) / melody.tempo_ratio,
                  deviation_cents=float(med[best]),
                  aligned_s=float(count[best] * hop_s))
