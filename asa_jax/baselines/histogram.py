"""Pitch-histogram measures of singing quality without a reference (paper 4.2.1).

Zhang et al. (ISMIR 2021, section 4.2.1) evaluate the measures of Gupta, Li and
Wang, "Automatic evaluation of singing quality without a reference" (APSIPA ASC
2018, the paper's [5]): kurtosis, skewness, peakBW, peakConc50, peakConc110,
kMeans and binning, computed from an octave-folded pitch histogram with 100-cent
bins; "good singings will usually have sharp peaks on specific note values, while
poor singings will have dispersed distribution". Gupta et al.'s text was not
available to us; the definitions below are our reconstruction from the measure
names and 4.2.1, written down here (and in BUILD_NOTES.md).

Common steps, on the voiced frames of one performance (f0 > 0):
  c = 1200 log2(f0 / 440) cents.
  tuning t = circular mean of c modulo 100 cents (the singer's own tuning of the
    semitone grid: an unaccompanied singer need not sing at A = 440 Hz).
  folded pitch p = (c - t) mod 1200 in [0, 1200): the octave-folded pitch; the
    100-cent bins of 4.2.1 are centred on p = 0, 100, ..., 1100 (semitones).
  deviation d = ((c - t + 50) mod 100) - 50 in [-50, 50): the offset from the
    nearest semitone, i.e. the folded histogram's 12 bins stacked into one.
  fine histogram h: p in 1-cent bins, circularly smoothed (Gaussian, sigma
    PEAK_SMOOTH_CENTS = 5 cents); its peaks are the local maxima
    (scipy.signal.find_peaks, circular) with prominence >= PEAK_PROMINENCE (10%)
    of the maximum and at least PEAK_DISTANCE_CENTS (100) apart (the higher
    one wins): at most one peak per semitone, so a note sung at several
    different detunings forms one broad peak, not several sharp ones.

Measures, every one oriented so that HIGHER = BETTER singing:
  kurtosis: Fisher (excess) kurtosis of d weighted by h (the smoothed
    histogram of d): mass concentrated at the note centres with few far values
    is leptokurtic (a perfectly steady in-tune melody gives the smoothing
    Gaussian's 0; scattered intonation tends to a uniform's -1.2).
  skewness: skewness of |d| weighted by h: accurate notes pile |d| up near 0
    with a thin right tail (half-normal: ~1); scattered intonation spreads |d|
    over [0, 50] (uniform: 0).
  peakBW: minus the height-weighted mean full width at half maximum of the
    peaks of h (scipy.signal.peak_widths, rel_height 0.5), in cents.
  peakConc50, peakConc110: the fraction of voiced frames whose p lies within a
    window of 50 (110) cents total width (+-25, +-55 cents) centred on a peak
    of h.
  kMeans: minus the mean distance in cents from each p to its cluster centre,
    k-means (scipy.cluster.vq.kmeans2) with one cluster per peak of h,
    initialised at the peaks, on the circle (p as an angle) so that the octave
    wraps.
  binning: minus the mean |d| in cents: the mean distance of every frame to the
    centre of its 100-cent bin.
"""

from __future__ import annotations

import numpy as np
import scipy.cluster.vq
import scipy.ndimage
import scipy.signal

from asa_jax.baselines import names

MIN_VOICED_FRAMES = 10  # fewer voiced frames: no histogram.
PEAK_SMOOTH_CENTS = 5.0  # Gaussian sigma of the fine histogram.
PEAK_PROMINENCE = 0.1  # peaks need this fraction of the maximum as prominence.
PEAK_DISTANCE_CENTS = 100  # at most one peak per semitone (find_peaks distance).
OCTAVE = 1200


def _voiced_cents(f0_hz) -> np.ndarray:
  f0 = np.asarray(f0_hz, np.float64).reshape(-1)
  f0 = f0[np.isfinite(f0) & (f0 > 0)]
  if f0.size < MIN_VOICED_FRAMES:
    raise ValueError(f"too few voiced frames for a pitch histogram: {f0.size} "
                     f"< {MIN_VOICED_FRAMES}")
  return 1200.0 * np.log2(f0 / 440.0)


def folded_pitch(f0_hz) -> tuple[np.ndarray, np.ndarray, float]:
  """Octave-folded pitch of the voiced frames, with the singer's tuning removed.

  Args:
    f0_hz: (T,) f0 in Hz; frames with f0 <= 0 or non-finite are unvoiced.

  Returns:
    (p, d, t): p float64 (V,) folded pitch in [0, 1200) cents; d float64 (V,)
    deviation from the nearest semitone in [-50, 50) cents; t the tuning offset
    in cents (circular mean of the cents modulo 100, in [-50, 50]).

  Raises:
    ValueError: fewer than MIN_VOICED_FRAMES voiced frames.
  """
  c = _voiced_cents(f0_hz)
  angle = np.angle(np.mean(np.exp(2j * np.pi * c / 100.0)))
  t = float(angle * 100.0 / (2 * np.pi))
  p = np.mod(c - t, OCTAVE)
  d = np.mod(c - t + 50.0, 100.0) - 50.0
  return p, d, t


def fine_histogram(p: np.ndarray) -> np.ndarray:
  """float64 (1200,) 1-cent histogram of folded pitch p, circularly smoothed
  (Gaussian sigma PEAK_SMOOTH_CENTS), normalised to sum 1."""
  counts = np.bincount(np.floor(p).astype(int) % OCTAVE, minlength=OCTAVE)
  h = scipy.ndimage.gaussian_filter1d(counts.astype(np.float64),
                                      PEAK_SMOOTH_CENTS, mode="wrap")
  return h / h.sum()


def histogram_peaks(h: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                            np.ndarray]:
  """Circular peaks of a (1200,) folded histogram.

  Returns:
    (positions in cents (P,), heights (P,), full widths at half maximum in
    cents (P,)); P >= 1 (the maximum is a peak even for a flat histogram).
  """
  n = len(h)
  tiled = np.concatenate([h, h, h])
  peaks, _ = scipy.signal.find_peaks(tiled, prominence=PEAK_PROMINENCE * h.max(),
                                    distance=PEAK_DISTANCE_CENTS)
  peaks = peaks[(peaks >= n) & (peaks < 2 * n)]
  if peaks.size == 0:
    peaks = np.array([n + int(np.argmax(h))])
  widths = scipy.signal.peak_widths(tiled, peaks, rel_height=0.5)[0]
  return (peaks - n).astype(np.float64), tiled[peaks], widths


def _circular_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  diff = np.abs(a - b) % OCTAVE
  return np.minimum(diff, OCTAVE - diff)


def _kmeans_spread(p: np.ndarray, centres: np.ndarray) -> float:
  """Mean circular distance (cents) of p to its k-means centre (k = len(centres))."""
  radius = OCTAVE / (2 * np.pi)
  theta = p / radius
  points = np.stack([np.cos(theta), np.sin(theta)], axis=1) * radius
  phi = centres / radius
  init = np.stack([np.cos(phi), np.sin(phi)], axis=1) * radius
  if len(centres) == 1:
    cent = init
    labels = np.zeros(len(p), int)
    # One cluster: its centre is the circular mean of the points.
    mean = points.mean(axis=0)
    if np.linalg.norm(mean) > 1e-9:
      cent = mean[None]
  else:
    cent, labels = scipy.cluster.vq.kmeans2(points, init, minit="matrix",
                                            iter=20, missing="warn")
  centre_cents = np.mod(np.arctan2(cent[:, 1], cent[:, 0]) * radius, OCTAVE)
  return float(np.mean(_circular_distance(p, centre_cents[labels])))


def _weighted_moment(x: np.ndarray, w: np.ndarray, order: int) -> float:
  """Standardised central moment E[(x - mu)^order] / sigma^order, weights w."""
  w = w / w.sum()
  mu = np.sum(w * x)
  var = np.sum(w * (x - mu) ** 2)
  return float(np.sum(w * (x - mu) ** order) / var ** (order / 2))


def histogram_measures(f0_hz) -> dict[str, float]:
  """The seven pitch-histogram measures of one performance (paper 4.2.1).

  Args:
    f0_hz: (T,) f0 contour in Hz at any uniform frame rate, 0 = unvoiced (a
      `Contours.f0_hz`, CREPE's voiced f0, or an f0 curve such as MAST's).

  Returns:
    {name: float} for every name in names.HISTOGRAM (definitions in the
    module docstring), each oriented so that higher = better singing.

  Raises:
    ValueError: fewer than MIN_VOICED_FRAMES voiced frames.
  """
  p, d, _ = folded_pitch(f0_hz)
  h = fine_histogram(p)
  # d and |d| of the fine histogram's bin centres (the tuning is already out).
  x = np.mod(np.arange(OCTAVE) + 0.5 + 50.0, 100.0) - 50.0
  positions, heights, widths = histogram_peaks(h)
  nearest = np.min(_circular_distance(p[:, None], positions[None, :]), axis=1)
  return {
      "kurtosis": _weighted_moment(x, h, 4) - 3.0,
      "skewness": _weighted_moment(np.abs(x), h, 3),
      "peakBW": -float(np.sum(widths * heights) / np.sum(heights)),
      "peakConc50": float(np.mean(nearest <= 25.0)),
      "peakConc110": float(np.mean(nearest <= 55.0)),
      "kMeans": -_kmeans_spread(p, positions),
      "binning": -float(np.mean(np.abs(d))),
  }
