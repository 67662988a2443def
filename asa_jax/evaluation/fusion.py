"""Monotone, regularised fusion of measured terms (and learned scores), calibrated 0-100.

Issue 18, section 6. Inputs are per-performance features, each oriented so that
HIGHER = BETTER where its direction is known (the baselines' ratings), with nan
for a missing term (e.g. voice quality on f0-only corpora). Two model families:

  'linear'  median imputation, standardisation, Ridge(positive=True): every
            ordered feature gets a non-negative weight (monotone increasing);
            an unordered feature (direction 0) enters as +x and -x, so its sign is
            free. Contributions are exact: weight * (x - training mean).
  'hgb'     HistGradientBoostingRegressor(monotonic_cst=...) with +1 on ordered
            features and 0 on unordered ones, shallow trees and early stopping off
            (deterministic); nan handled natively.

`fit_fusion` picks the family and its regularisation by leave-melodies-out CV
INSIDE the rows it is given (GroupKFold over melodies): callers pass training folds
only, so the choice never sees a test melody. The chosen model is refitted on all
given rows, then calibrated to 0-100 by IsotonicRegression (increasing, clipped)
on its inner out-of-fold predictions against the target rescaled to 0-100.

A prediction's per-feature contributions (`Fusion.contributions`): for 'linear'
the exact additive terms; for 'hgb' the change of the raw score when the feature
is set to its training median (one at a time; they need not sum to the total).
The fitted object pickles (`save` / `load`, atomic) to a few hundred kB at most.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from typing import Sequence

import numpy as np

from asa_jax import atomic

INNER_FOLDS = 4
LINEAR_ALPHAS = (1.0, 10.0, 100.0)
HGB_PARAMS = ({"max_depth": 2, "learning_rate": 0.05, "max_iter": 150,
               "min_samples_leaf": 20, "l2_regularization": 1.0},
              {"max_depth": 3, "learning_rate": 0.05, "max_iter": 300,
               "min_samples_leaf": 20, "l2_regularization": 1.0})
FORMAT_VERSION = 1


def _one_thread(f, *args, **kwargs):
  """f(*args, **kwargs) with one OpenMP thread (see `fit_fusion`)."""
  import threadpoolctl  # pylint: disable=g-import-not-at-top
  with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
    return f(*args, **kwargs)


def _pearson(x, y) -> float:
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if np.std(x) == 0 or np.std(y) == 0:
    return -1.0
  return float(np.corrcoef(x, y)[0, 1])


@dataclasses.dataclass
class _Linear:
  alpha: float
  directions: np.ndarray

  def fit(self, x, y):
    from sklearn.linear_model import Ridge  # pylint: disable=g-import-not-at-top
    self.median_ = np.nanmedian(x, axis=0)
    self.median_ = np.where(np.isfinite(self.median_), self.median_, 0.0)
    z = self._expand(self._impute(x))
    self.mean_ = z.mean(axis=0)
    self.scale_ = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
    self.ridge_ = Ridge(alpha=self.alpha, positive=True).fit(
        (z - self.mean_) / self.scale_, y)
    return self

  def _impute(self, x):
    return np.where(np.isfinite(x), x, self.median_)

  def _expand(self, x):
    free = self.directions == 0
    return np.concatenate([x, -x[:, free]], axis=1)

  def terms(self, x) -> np.ndarray:
    """(n, d) additive contributions (the +x and -x copies summed)."""
    z = (self._expand(self._impute(x)) - self.mean_) / self.scale_
    t = z * self.ridge_.coef_
    d = x.shape[1]
    out = t[:, :d].copy()
    out[:, self.directions == 0] += t[:, d:]
    return out

  def predict(self, x):
    return self.terms(x).sum(axis=1) + self.ridge_.intercept_


@dataclasses.dataclass
class _Boosted:
  params: dict
  directions: np.ndarray

  def fit(self, x, y):
    from sklearn.ensemble import HistGradientBoostingRegressor  # pylint: disable=g-import-not-at-top
    self.model_ = HistGradientBoostingRegressor(
        monotonic_cst=[int(d != 0) for d in self.directions], early_stopping=False,
        random_state=0, **self.params).fit(x, y)
    return self

  def predict(self, x):
    return self.model_.predict(x)


def _candidates(directions):
  out = [("linear", {"alpha": a}, lambda a=a: _Linear(a, directions))
         for a in LINEAR_ALPHAS]
  out += [("hgb", p, lambda p=p: _Boosted(p, directions)) for p in HGB_PARAMS]
  return out


@dataclasses.dataclass
class Fusion:
  """A fitted fusion (module doc).

  Attributes:
    features: the feature names, in column order.
    directions: int (d,) +1 (higher = better, monotone) or 0 (unordered).
    family: 'linear' or 'hgb'; params: its hyperparameters.
    selection: {candidate label: inner-CV Pearson's r} that chose it.
    target_range: (low, high) of the target scale mapped to 0 and 100.
    model: the fitted model; calibrator: sklearn IsotonicRegression raw -> 0-100.
    reference: float (d,) training medians (the 'typical' performance of the
      contributions).
  """
  features: tuple
  directions: np.ndarray
  family: str
  params: dict
  selection: dict
  target_range: tuple
  model: object
  calibrator: object
  reference: np.ndarray

  def _matrix(self, x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.ndim != 2 or x.shape[1] != len(self.features):
      raise ValueError(f"expected (n, {len(self.features)}) features "
                       f"{list(self.features)}, got shape {x.shape}")
    return x

  def predict_raw(self, x) -> np.ndarray:
    """float64 (n,) uncalibrated score on the target's scale."""
    return _one_thread(self.model.predict, self._matrix(x))

  def predict(self, x) -> np.ndarray:
    """float64 (n,) calibrated score in [0, 100] (isotonic; higher = better)."""
    return self.calibrator.predict(self.predict_raw(x))

  def contributions(self, x) -> np.ndarray:
    """float64 (n, d) per-feature contributions to the raw score (module doc)."""
    x = self._matrix(x)
    if self.family == "linear":
      return self.model.terms(x)
    base = self.predict_raw(x)
    out = np.zeros(x.shape)
    for j in range(x.shape[1]):
      x2 = x.copy()
      x2[:, j] = self.reference[j]
      out[:, j] = base - _one_thread(self.model.predict, x2)
    return out

  def save(self, path: str) -> None:
    """Pickles the fusion to `path` atomically (with FORMAT_VERSION)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
      pickle.dump({"format_version": FORMAT_VERSION, "fusion": self}, f,
                  protocol=pickle.HIGHEST_PROTOCOL)


def load(path: str) -> Fusion:
  """A Fusion saved by `Fusion.save`.

  Raises:
    ValueError: not a fusion file of FORMAT_VERSION (names the file).
  """
  with open(path, "rb") as f:
    blob = pickle.load(f)
  if not isinstance(blob, dict) or blob.get("format_version") != FORMAT_VERSION:
    raise ValueError(f"{path}: not a fusion file of format {FORMAT_VERSION}")
  return blob["fusion"]


def _inner_oof(make, x, y, groups, folds) -> np.ndarray:
  oof = np.zeros(len(y))
  for train, test in folds:
    oof[test] = make().fit(x[train], y[train]).predict(x[test])
  return oof


def fit_fusion(x, y, groups, features: Sequence[str], directions: Sequence[int], *,
               target_range: tuple[float, float], seed: int = 0,
               families: Sequence[str] = ("linear", "hgb")) -> Fusion:
  """Fits the fusion on training rows only (module doc).

  Args:
    x: float (n, d) features, higher = better where direction is +1; nan = missing.
    y: float (n,) target (e.g. mean jury grade 1-4; SSVD score 0-100).
    groups: (n,) melody of each row (inner leave-melodies-out folds).
    features: d names; directions: d values in {+1, 0}.
    target_range: (low, high) of the target scale, mapped to 0 and 100.
    seed: seed of the inner GroupKFold shuffle.
    families: which model families may be chosen.

  Returns:
    The fitted Fusion.

  Raises:
    ValueError: shapes disagree, a direction not in {0, 1}, or fewer melodies
      than INNER_FOLDS.
  """
  # One OpenMP thread: the trees are small, and on a crowded machine the boosted
  # trees' OpenMP threads spin-wait (a 1,000-row fit took minutes instead of 1.5 s).
  return _one_thread(_fit_fusion, x, y, groups, features, directions,
                     target_range=target_range, seed=seed, families=families)


def _fit_fusion(x, y, groups, features, directions, *, target_range, seed,
                families) -> Fusion:
  from sklearn.isotonic import IsotonicRegression  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import GroupKFold  # pylint: disable=g-import-not-at-top
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  groups = np.asarray(groups)
  directions = np.asarray(directions, np.int64)
  if x.shape != (len(y), len(features)) or directions.shape != (len(features),):
    raise ValueError(f"x {x.shape}, y {y.shape}, {len(features)} features and "
                     f"{directions.shape} directions disagree")
  if not np.all(np.isin(directions, (0, 1))):
    raise ValueError("directions must be +1 (monotone increasing) or 0")
  if len(set(groups.tolist())) < INNER_FOLDS:
    raise ValueError(f"need >= {INNER_FOLDS} melodies for the inner folds")
  folds = list(GroupKFold(INNER_FOLDS, shuffle=True, random_state=seed).split(
      x, y, groups))
  scores, oofs = {}, {}
  for family, params, make in _candidates(directions):
    if family not in families:
      continue
    label = f"{family} {params}"
    oofs[label] = (family, params, make, _inner_oof(make, x, y, groups, folds))
    scores[label] = _pearson(oofs[label][3], y)
  best = max(scores, key=scores.get)
  family, params, make, oof = oofs[best]
  model = make().fit(x, y)
  lo, hi = target_range
  calibrator = IsotonicRegression(y_min=0.0, y_max=100.0, increasing=True,
                                  out_of_bounds="clip").fit(
                                      oof, 100.0 * (y - lo) / (hi - lo))
  reference = np.nanmedian(x, axis=0)
  return Fusion(features=tuple(features), directions=directions, family=family,
                params=dict(params), selection=scores, target_range=(lo, hi),
                model=model, calibrator=calibrator,
                reference=np.where(np.isfinite(reference), reference, 0.0))
