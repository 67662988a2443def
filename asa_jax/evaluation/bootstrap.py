"""Bootstrap 95% confidence intervals of Pearson's r (paper Table 2, with CIs).

The paper reports Pearson's r on 9 performances per song (45 in Mix, paper 4) without
any interval; with so few performances r moves a lot from one sample of singers to
another, so every r we report carries a bootstrap confidence interval.

Method: the performances are the resampled unit. For one song (or Mix) with n
(predicted, human) pairs, `scipy.stats.bootstrap(..., paired=True)` draws
`n_resamples` resamples of n pairs with replacement (per song: within the song;
Mix: over all scored performances) and computes r on each. The interval is the
percentile interval (2.5% and 97.5% quantiles of the bootstrap distribution).

Why percentile and not BCa: BCa needs the jackknife of r (leave-one-out), which is
undefined as soon as one leave-one-out sample is constant, and its bias correction
is undefined when the bootstrap distribution piles up at r = +-1 (near-perfect
songs); both happen with 9 performances. The percentile interval is defined
whenever the resampled r are, and is transformation-respecting (so the bound [-1, 1]
is kept).

Degenerate resamples: a resample whose predicted or human values are all equal has
no r (nan). They are dropped and counted (`n_degenerate`); the interval comes from
the valid ones. If fewer than `MIN_VALID_FRACTION` of the resamples are valid, or
n < 3, or r itself is undefined, there is no interval (None) and `reason` says why.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np
import scipy.stats

CONFIDENCE = 0.95
METHOD = "percentile"
MIN_PAIRS = 3
MIN_VALID_FRACTION = 0.5


@dataclasses.dataclass(frozen=True)
class Interval:
  """A bootstrap confidence interval of r.

  Attributes:
    low, high: interval bounds in [-1, 1], or None when there is no interval.
    n_resamples: resamples drawn.
    n_degenerate: resamples without r (constant predicted or human values).
    reason: why low/high are None (None when defined).
  """
  low: float | None
  high: float | None
  n_resamples: int
  n_degenerate: int = 0
  reason: str | None = None

  def to_json(self) -> list[float] | None:
    """[low, high] or None, the pearson.json "ci95" entry."""
    return None if self.low is None else [self.low, self.high]


def pearson_r(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
  """Vectorised Pearson's r along `axis` (nan where either side is constant).

  Args:
    x, y: float arrays of the same shape (..., n, ...).
    axis: the axis of the n pairs.

  Returns:
    float64 array of r with `axis` removed, clipped to [-1, 1]; nan where the
    centred sum of squares of x or y is 0 (up to 1e-12 relative rounding).
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  xc = x - x.mean(axis=axis, keepdims=True)
  yc = y - y.mean(axis=axis, keepdims=True)
  sxx = np.sum(xc * xc, axis=axis)
  syy = np.sum(yc * yc, axis=axis)
  sxy = np.sum(xc * yc, axis=axis)
  # Relative floor: a resample of one repeated value has sxx of rounding size only.
  tiny_x = sxx <= 1e-24 * np.maximum(np.sum(x * x, axis=axis), 1e-300)
  tiny_y = syy <= 1e-24 * np.maximum(np.sum(y * y, axis=axis), 1e-300)
  with np.errstate(invalid="ignore", divide="ignore"):
    r = sxy / np.sqrt(sxx * syy)
  r = np.where(tiny_x | tiny_y, np.nan, r)
  return np.clip(r, -1.0, 1.0)


def pearson_interval(predicted: Sequence[float], human: Sequence[float], *,
                     n_resamples: int = 1000, seed: int = 0,
                     confidence: float = CONFIDENCE) -> Interval:
  """Percentile bootstrap interval of Pearson's r, resampling (predicted, human) pairs.

  Args:
    predicted: n system scores.
    human: n human scores (same order).
    n_resamples: bootstrap resamples (config.eval.bootstrap_samples); 0 -> no CI.
    seed: seed of the resampling generator (same seed + same data = same interval).
    confidence: confidence level of the two-sided interval.

  Returns:
    Interval; low/high None (with reason) when n < 3, a value is not finite, r is
    undefined (a side constant), n_resamples == 0, or fewer than half of the
    resamples have an r.

  Raises:
    ValueError: different lengths, or n_resamples < 0.
  """
  x = np.asarray(predicted, np.float64).reshape(-1)
  y = np.asarray(human, np.float64).reshape(-1)
  if x.shape != y.shape:
    raise ValueError(f"predicted has {x.size} values but human has {y.size}")
  if n_resamples < 0:
    raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
  n = int(x.size)
  if n < MIN_PAIRS:
    return Interval(None, None, 0, 0, f"n={n} < {MIN_PAIRS}")
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    return Interval(None, None, 0, 0, "non-finite scores")
  if np.isnan(pearson_r(x, y)):
    return Interval(None, None, 0, 0, "r undefined (constant scores)")
  if n_resamples == 0:
    return Interval(None, None, 0, 0, "no bootstrap (0 resamples)")
  with warnings.catch_warnings():  # Degenerate resamples: handled below.
    warnings.simplefilter("ignore", scipy.stats.DegenerateDataWarning)
    res = scipy.stats.bootstrap(
        (x, y), pearson_r, n_resamples=n_resamples, paired=True, vectorized=True,
        method=METHOD, confidence_level=confidence,
        rng=np.random.default_rng(seed))
  dist = np.asarray(res.bootstrap_distribution, np.float64).reshape(-1)
  valid = dist[np.isfinite(dist)]
  degenerate = int(dist.size - valid.size)
  if valid.size < MIN_VALID_FRACTION * n_resamples:
    return Interval(None, None, n_resamples, degenerate,
                    f"{degenerate} of {n_resamples} resamples have constant scores")
  # scipy's own interval is nan as soon as one resample is degenerate; the percentile
  # interval of the valid resamples is the same computation on the finite values.
  alpha = (1.0 - confidence) / 2.0
  low, high = np.quantile(valid, [alpha, 1.0 - alpha])
  return Interval(float(low), float(high), n_resamples, degenerate)
