"""Pearson's correlation between system scores and human scores (paper 4, Table 2).

Table 2 gives, per system, Pearson's r between the system's performance scores and
the mean human judge score (paper 4.1), for each song separately and for all songs
pooled ("Mix"). r is undefined for fewer than 3 pairs (we require 3: with 2 points r is
always +-1) or when either side is constant; then `r` is None and the reason is
printed, naming the system, the song and n. With `n_resamples > 0` every r carries a
bootstrap 95% confidence interval (bootstrap.py: percentile, performances resampled
within the song, or over all songs for Mix).
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Callable, Iterable, Sequence

import numpy as np
import scipy.stats

from asa_jax.evaluation import bootstrap

MIN_PAIRS = 3
MIX = "mix"


@dataclasses.dataclass(frozen=True)
class Correlation:
  """Pearson's r of n (predicted, human) pairs.

  Attributes:
    r: Pearson's correlation coefficient in [-1, 1], or None when undefined.
    n: number of pairs used.
    reason: why r is None (None when r is defined).
    ci: bootstrap confidence interval of r (None: not computed).
  """
  r: float | None
  n: int
  reason: str | None = None
  ci: bootstrap.Interval | None = None

  def to_json(self) -> dict:
    """The pearson.json entry: {"r": float | None, "n": int, "ci95": [lo, hi] | None}
    (plus "ci_degenerate": count of constant resamples when > 0)."""
    out = {"r": self.r, "n": self.n,
           "ci95": None if self.ci is None else self.ci.to_json()}
    if self.ci is not None and self.ci.n_degenerate:
      out["ci_degenerate"] = self.ci.n_degenerate
    return out


def pearson(predicted: Sequence[float], human: Sequence[float]) -> Correlation:
  """Pearson's r (scipy.stats.pearsonr) with the undefined cases made explicit.

  Args:
    predicted: system scores, n floats.
    human: human scores, n floats, same order.

  Returns:
    Correlation(r, n, reason); r None when n < 3, a value is not finite, or either
    side is constant.

  Raises:
    ValueError: the two sequences have different lengths.
  """
  x = np.asarray(predicted, np.float64).reshape(-1)
  y = np.asarray(human, np.float64).reshape(-1)
  if x.shape != y.shape:
    raise ValueError(f"predicted has {x.size} values but human has {y.size}")
  n = int(x.size)
  if n < MIN_PAIRS:
    return Correlation(None, n, f"n={n} < {MIN_PAIRS} scored performances")
  if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
    return Correlation(None, n, f"non-finite scores (n={n})")
  if np.all(x == x[0]):
    return Correlation(None, n, f"predicted scores are constant ({x[0]:.6g}, n={n})")
  if np.all(y == y[0]):
    return Correlation(None, n, f"human scores are constant ({y[0]:.6g}, n={n})")
  r = float(scipy.stats.pearsonr(x, y).statistic)
  if math.isnan(r):  # Near-constant input can still underflow to nan.
    return Correlation(None, n, f"scipy returned nan (near-constant input, n={n})")
  return Correlation(r, n)


def with_interval(corr: Correlation, predicted: Sequence[float],
                  human: Sequence[float], *, n_resamples: int,
                  seed: int = 0) -> Correlation:
  """`corr` with its bootstrap interval (bootstrap.pearson_interval) attached.

  No interval (ci None) when n_resamples == 0; an Interval with low None (and its
  reason) when r is undefined or the resamples are mostly degenerate.
  """
  if n_resamples <= 0:
    return corr
  ci = bootstrap.pearson_interval(predicted, human, n_resamples=n_resamples,
                                  seed=seed)
  return dataclasses.replace(corr, ci=ci)


def correlate(scores: Iterable, *, system: str = "",
              log: Callable[[str], None] | None = print,
              n_resamples: int = 0, seed: int = 0) -> dict:
  """Per-song and pooled (Mix) Pearson's r of one system (paper Table 2).

  Args:
    scores: performance scores, each unpacking as (song_id, performance_id,
      predicted, human) (performance_score.PerformanceScore); those with human None are left
      out (and counted in the log message).
    system: name used in log messages.
    log: called with one line per undefined r and per left-out group; None: silent.
    n_resamples: bootstrap resamples for the 95% CI of each r (0: no CI).
    seed: bootstrap seed (each song and Mix use the same seed).

  Returns:
    {"per_song": {song_id: Correlation}, "mix": Correlation}; songs sorted by name
    (natural order, so song2 < song10), including songs without any human score
    (r None, n 0).
  """
  by_song: dict[str, tuple[list[float], list[float]]] = {}
  unscored: dict[str, int] = {}
  for song_id, _, predicted, human in scores:
    song_id = str(song_id)
    pair = by_song.setdefault(song_id, ([], []))
    if human is None or (isinstance(human, float) and math.isnan(human)):
      unscored[song_id] = unscored.get(song_id, 0) + 1
      continue
    pair[0].append(float(predicted))
    pair[1].append(float(human))
  prefix = f"[{system}] " if system else ""
  if log is not None and unscored:
    total = sum(unscored.values())
    detail = ", ".join(f"{s}: {k}" for s, k in sorted(unscored.items()))
    log(f"{prefix}{total} performance(s) have no human score; scored but left out "
        f"of Pearson ({detail})")
  per_song = {}
  for song_id in sorted(by_song, key=natural_key):
    corr = with_interval(pearson(*by_song[song_id]), *by_song[song_id],
                         n_resamples=n_resamples, seed=seed)
    if corr.r is None and log is not None:
      log(f"{prefix}song {song_id}: r undefined: {corr.reason}")
    per_song[song_id] = corr
  mix_pred = [v for p, _ in by_song.values() for v in p]
  mix_human = [v for _, h in by_song.values() for v in h]
  mix = with_interval(pearson(mix_pred, mix_human), mix_pred, mix_human,
                      n_resamples=n_resamples, seed=seed)
  if mix.r is None and log is not None:
    log(f"{prefix}Mix (all songs): r undefined: {mix.reason}")
  return {"per_song": per_song, MIX: mix}


def natural_key(text: str) -> tuple:
  """Sort key that orders digit runs numerically ('song2' < 'song10')."""
  return tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
               for t in re.split(r"(\d+)", text) if t)
