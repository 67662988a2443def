"""Monotone, regularised fusion of measured terms (and learned scores), calibrated 0-100.

Issue 18, section 6. Inputs are per-performance features, each oriented so that
HIGHER = BETTER where its direction is known (the baselines' ratings), with nan
for a missing term (e.g. voice quality on f0-only corpora). Model families:

  'linear'  median imputation, standardisation, Ridge(positive=True): every
            ordered feature gets a non-negative weight (monotone increasing);
            an unordered feature (direction 0) enters as +x and -x, so its sign is
            free. Contributions are exact: weight * (x - training mean).
  'hgb'     HistGradientBoostingRegressor(monotonic_cst=...) with +1 on ordered
            features and 0 on unordered ones, shallow trees and early stopping off
            (deterministic); nan handled natively.
  'lasso'   as 'linear' with Lasso(positive=True) (sparse: few terms kept).
  'mean'    the mean of a 'linear' and an 'hgb' model's predictions.
  'bagged'  the mean of params["bags"] 'hgb' models, each fitted on a bootstrap
            resample of the rows (numpy default_rng(bag index)).
  'pass_blend'  an 'hgb' regression on the target averaged, in standard-deviation
            units of its training predictions, with a monotone
            HistGradientBoostingClassifier's logit of pass/fail (needs `passed`).
Any candidate may carry params["target"] = "z": it is then fitted on the target
z-scored within each stratum (e.g. corpus; `strata`), with that stratum's training
mean and sd, and predicts on the scale of the pooled target (z * sd + mean of all
training rows): every stratum's shape informs the model, each keeps its own scale.

`fit_fusion` picks the family and its regularisation by leave-melodies-out CV
INSIDE the rows it is given (GroupKFold over melodies): callers pass training folds
only, so the choice never sees a test melody. The default candidates are the
'linear' and 'hgb' ones below (DEFAULT_CANDIDATES), chosen by the pooled inner
Pearson's r; `candidates` and `criterion="strata_r_auc"` (the mean over strata of
(inner r + inner pass/fail AUC) / 2) are the levers of BUILD_NOTES "Fusion levers". The chosen model is refitted on all
given rows, then calibrated to 0-100 on its inner out-of-fold predictions against
the target rescaled to 0-100, by `calibration`:
  'isotonic'  IsotonicRegression (increasing, clipped): a step function.
  'centred'   centred isotonic regression (Oron & Flournoy 2017, `CentredIsotonic`):
              the same fit, read between the centres of its constant blocks, so a
              small change of the raw score moves the score a little, not a step.

A prediction's per-feature contributions (`Fusion.contributions`): for 'linear'
and 'lasso' the exact additive terms; for the others the change of the raw score when the feature
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
CALIBRATIONS = ("isotonic", "centred")
# Centred: the stepped map moved single singers 15-25 points for small term
# changes; the centred one agrees with the labels as well (BUILD_NOTES, "The
# fusion's 0-100 map").
DEFAULT_CALIBRATION = "centred"
DEFAULT_CANDIDATES = tuple([("linear", {"alpha": a}) for a in LINEAR_ALPHAS]
                           + [("hgb", p) for p in HGB_PARAMS])
# Levers of BUILD_NOTES "Fusion levers" (issue 18, 6): regularised trees (stumps:
# a monotone additive model), a sparse linear model, an ensemble, a pass blend.
REGULARISED_HGB = ({"max_depth": 1, "learning_rate": 0.05, "max_iter": 300,
                    "min_samples_leaf": 40, "l2_regularization": 1.0},
                   {"max_depth": 2, "learning_rate": 0.05, "max_iter": 150,
                    "min_samples_leaf": 60, "l2_regularization": 10.0})
LASSO_ALPHAS = (0.01, 0.03)  # times the target's sd (standardised terms).
MEAN_PARAMS = {"alpha": 10.0, "hgb": HGB_PARAMS[0]}
PASS_BLEND_PARAMS = {"hgb": HGB_PARAMS[0]}
BAGGED_PARAMS = {"bags": 10, "hgb": HGB_PARAMS[0]}


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
  l1: bool = False  # Lasso(alpha * sd(y), positive) instead of Ridge(alpha).

  def fit(self, x, y, passed=None):
    del passed
    from sklearn.linear_model import Lasso, Ridge  # pylint: disable=g-import-not-at-top
    self.median_ = np.nanmedian(x, axis=0)
    self.median_ = np.where(np.isfinite(self.median_), self.median_, 0.0)
    z = self._expand(self._impute(x))
    self.mean_ = z.mean(axis=0)
    self.scale_ = np.where(z.std(axis=0) > 0, z.std(axis=0), 1.0)
    model = (Lasso(alpha=self.alpha * float(np.std(y)), positive=True)
             if self.l1 else Ridge(alpha=self.alpha, positive=True))
    self.ridge_ = model.fit((z - self.mean_) / self.scale_, y)
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

  def fit(self, x, y, passed=None):
    del passed
    from sklearn.ensemble import HistGradientBoostingRegressor  # pylint: disable=g-import-not-at-top
    self.model_ = HistGradientBoostingRegressor(
        monotonic_cst=[int(d != 0) for d in self.directions], early_stopping=False,
        random_state=0, **self.params).fit(x, y)
    return self

  def predict(self, x):
    return self.model_.predict(x)


@dataclasses.dataclass
class _Mean:
  """The mean of its members' predictions (a linear and a boosted model)."""
  members: list

  def fit(self, x, y, passed=None):
    for m in self.members:
      m.fit(x, y, passed)
    return self

  def predict(self, x):
    return np.mean([m.predict(x) for m in self.members], axis=0)


@dataclasses.dataclass
class _Bagged:
  """The mean of `bags` boosted models on bootstrap resamples (seeded by index)."""
  params: dict
  directions: np.ndarray
  bags: int

  def fit(self, x, y, passed=None):
    del passed
    self.members_ = []
    for b in range(self.bags):
      rows = np.random.default_rng(b).integers(0, len(y), len(y))
      self.members_.append(_Boosted(self.params, self.directions).fit(x[rows],
                                                                       y[rows]))
    return self

  def predict(self, x):
    return np.mean([m.predict(x) for m in self.members_], axis=0)


@dataclasses.dataclass
class _PassBlend:
  """Boosted regression on the target averaged with a monotone classifier's logit.

  Both are put in units of their training predictions' sd and averaged, then back
  on the target's scale (mean and sd of the regression's training predictions).
  """
  params: dict
  directions: np.ndarray

  def fit(self, x, y, passed=None):
    from sklearn.ensemble import HistGradientBoostingClassifier  # pylint: disable=g-import-not-at-top
    if passed is None or len(set(np.asarray(passed, bool).tolist())) < 2:
      raise ValueError("pass_blend needs pass/fail labels of both classes")
    self.regressor_ = _Boosted(self.params, self.directions).fit(x, y)
    self.classifier_ = HistGradientBoostingClassifier(
        monotonic_cst=[int(d != 0) for d in self.directions], early_stopping=False,
        random_state=0, **self.params).fit(x, np.asarray(passed, bool))
    r = self.regressor_.predict(x)
    c = self.classifier_.decision_function(x)
    self.r_stats_ = (float(r.mean()), float(r.std()) or 1.0)
    self.c_stats_ = (float(c.mean()), float(c.std()) or 1.0)
    return self

  def predict(self, x):
    zr = (self.regressor_.predict(x) - self.r_stats_[0]) / self.r_stats_[1]
    zc = (self.classifier_.decision_function(x) - self.c_stats_[0]) / self.c_stats_[1]
    return self.r_stats_[0] + self.r_stats_[1] * (zr + zc) / 2.0


@dataclasses.dataclass
class _StrataZ:
  """Fits `inner` on the target z-scored within each stratum (module doc)."""
  inner: object

  def fit(self, x, y, passed=None, strata=None):
    y = np.asarray(y, np.float64)
    strata = np.zeros(len(y)) if strata is None else np.asarray(strata)
    z = np.zeros(len(y))
    for s in np.unique(strata):
      k = strata == s
      z[k] = (y[k] - y[k].mean()) / (y[k].std() or 1.0)
    self.scale_ = (float(y.mean()), float(y.std()) or 1.0)
    self.inner.fit(x, z, passed)
    return self

  def predict(self, x):
    return self.scale_[0] + self.scale_[1] * self.inner.predict(x)

  def terms(self, x):
    return self.scale_[1] * self.inner.terms(x)


def make_model(family: str, params: dict, directions):
  """An unfitted model of a candidate (family, params) (module doc).

  Raises:
    ValueError: an unknown family.
  """
  params = dict(params)
  target = params.pop("target", "raw")
  if family == "linear":
    model = _Linear(params["alpha"], directions)
  elif family == "lasso":
    model = _Linear(params["alpha"], directions, l1=True)
  elif family == "hgb":
    model = _Boosted(params, directions)
  elif family == "mean":
    model = _Mean([_Linear(params["alpha"], directions),
                   _Boosted(params["hgb"], directions)])
  elif family == "pass_blend":
    model = _PassBlend(params["hgb"], directions)
  elif family == "bagged":
    model = _Bagged(params["hgb"], directions, params["bags"])
  else:
    raise ValueError(f"unknown fusion family {family!r}")
  return _StrataZ(model) if target == "z" else model


def _fit(model, x, y, passed, strata):
  if isinstance(model, _StrataZ):
    return model.fit(x, y, passed, strata)
  return model.fit(x, y, passed)


@dataclasses.dataclass
class Fusion:
  """A fitted fusion (module doc).

  Attributes:
    features: the feature names, in column order.
    directions: int (d,) +1 (higher = better, monotone) or 0 (unordered).
    family: 'linear', 'lasso', 'hgb', 'mean', 'bagged' or 'pass_blend'; params:
      its hyperparameters (with 'target': 'z' for a per-stratum z target).
    selection: {candidate label: inner-CV criterion (Pearson's r by default)}
      that chose it.
    target_range: (low, high) of the target scale mapped to 0 and 100.
    model: the fitted model; calibrator: raw -> 0-100, a CentredIsotonic or
      an sklearn IsotonicRegression (`fit_fusion`'s calibration).
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
    """float64 (n,) calibrated score in [0, 100] (`calibrator`; higher = better)."""
    return self.calibrator.predict(self.predict_raw(x))

  def contributions(self, x) -> np.ndarray:
    """float64 (n, d) per-feature contributions to the raw score (module doc)."""
    x = self._matrix(x)
    if self.family in ("linear", "lasso"):
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


class CentredIsotonic:
  """Centred isotonic regression (Oron & Flournoy 2017, Statistics in
  Biopharmaceutical Research 9(3)): an increasing map raw -> [y_min, y_max].

  scikit-learn's IsotonicRegression is fitted first; each of its constant blocks
  (a run of training points with one fitted level) becomes one knot at the block's
  mean raw score, and the map interpolates linearly between knots: strictly
  increasing between the first and last centres (where the levels differ), flat
  beyond them (clipped). Same attributes as IsotonicRegression's that readers use:
  `X_thresholds_`, `y_thresholds_` (the knots; np.interp of them is `predict`).
  """

  def __init__(self, y_min: float = 0.0, y_max: float = 100.0):
    self.y_min, self.y_max = y_min, y_max

  def fit(self, x, y) -> "CentredIsotonic":
    """Fits on float (n,) raw scores x and targets y; returns self.

    Raises:
      ValueError: fewer than 2 rows, or shapes differ (scikit-learn's message).
    """
    from sklearn.isotonic import IsotonicRegression  # pylint: disable=g-import-not-at-top
    x = np.asarray(x, np.float64)
    iso = IsotonicRegression(y_min=self.y_min, y_max=self.y_max, increasing=True,
                             out_of_bounds="clip").fit(x, y)
    order = np.argsort(x, kind="stable")
    xs, level = x[order], iso.predict(x[order])
    # Tied raw scores share one fitted level, so blocks never split a tie.
    starts = np.r_[0, np.flatnonzero(np.diff(level) != 0) + 1]
    centres = np.add.reduceat(xs, starts) / np.diff(np.r_[starts, len(xs)])
    knots_x = np.r_[xs[0], centres, xs[-1]]
    knots_y = np.r_[level[0], level[starts], level[-1]]
    self.X_thresholds_, keep = np.unique(knots_x, return_index=True)
    self.y_thresholds_ = knots_y[keep]
    return self

  def predict(self, x) -> np.ndarray:
    """float64 (n,) calibrated values of raw scores x (clipped beyond the knots)."""
    return np.interp(np.asarray(x, np.float64), self.X_thresholds_,
                     self.y_thresholds_)


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


def _inner_oof(make, x, y, passed, strata, folds) -> np.ndarray:
  oof = np.zeros(len(y))
  for train, test in folds:
    oof[test] = _fit(make(), x[train], y[train],
                     None if passed is None else passed[train],
                     None if strata is None else strata[train]).predict(x[test])
  return oof


def _auc(scores, positive) -> float:
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  if positive.all() or not positive.any():
    return float("nan")
  return float(roc_auc_score(positive, scores))


def selection_score(oof, y, *, criterion: str, passed=None, strata=None) -> float:
  """The inner criterion of a candidate's out-of-fold predictions.

  'pearson': the pooled Pearson's r. 'strata_r_auc': the mean over strata of
  (r + pass/fail ROC AUC) / 2 (r alone where a stratum has one class).

  Raises:
    ValueError: an unknown criterion, or 'strata_r_auc' without `passed`.
  """
  if criterion == "pearson":
    return _pearson(oof, y)
  if criterion != "strata_r_auc":
    raise ValueError(f"unknown selection criterion {criterion!r}")
  if passed is None:
    raise ValueError("criterion 'strata_r_auc' needs pass/fail labels")
  strata = np.zeros(len(y)) if strata is None else np.asarray(strata)
  out = []
  for s in np.unique(strata):
    k = strata == s
    r, a = _pearson(oof[k], y[k]), _auc(oof[k], passed[k])
    out.append(r if not np.isfinite(a) else (r + a) / 2.0)
  return float(np.mean(out))


def fit_fusion(x, y, groups, features: Sequence[str], directions: Sequence[int], *,
               target_range: tuple[float, float], seed: int = 0,
               families: Sequence[str] | None = None,
               candidates: Sequence[tuple[str, dict]] = DEFAULT_CANDIDATES,
               criterion: str = "pearson", passed=None, strata=None,
               calibration: str = DEFAULT_CALIBRATION) -> Fusion:
  """Fits the fusion on training rows only (module doc).

  Args:
    x: float (n, d) features, higher = better where direction is +1; nan = missing.
    y: float (n,) target (e.g. mean jury grade 1-4; SSVD score 0-100).
    groups: (n,) melody of each row (inner leave-melodies-out folds).
    features: d names; directions: d values in {+1, 0}.
    target_range: (low, high) of the target scale, mapped to 0 and 100.
    seed: seed of the inner GroupKFold shuffle.
    families: which model families may be chosen (a filter on `candidates`;
      None: all).
    candidates: (family, params) pairs (`make_model`); default R0 of BUILD_NOTES.
    criterion: 'pearson' or 'strata_r_auc' (`selection_score`).
    passed: bool (n,) pass/fail (for 'pass_blend' and 'strata_r_auc').
    strata: (n,) e.g. the corpus of each row (z targets, 'strata_r_auc').
    calibration: the 0-100 map, one of CALIBRATIONS (module doc).

  Returns:
    The fitted Fusion.

  Raises:
    ValueError: shapes disagree, a direction not in {0, 1}, fewer melodies
      than INNER_FOLDS, an unknown family, criterion or calibration, or no
      candidate left.
  """
  # One OpenMP thread: the trees are small, and on a crowded machine the boosted
  # trees' OpenMP threads spin-wait (a 1,000-row fit took minutes instead of 1.5 s).
  return _one_thread(_fit_fusion, x, y, groups, features, directions,
                     target_range=target_range, seed=seed, families=families,
                     candidates=candidates, criterion=criterion, passed=passed,
                     strata=strata, calibration=calibration)


def _fit_fusion(x, y, groups, features, directions, *, target_range, seed,
                families, candidates, criterion, passed, strata,
                calibration) -> Fusion:
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
  if calibration not in CALIBRATIONS:
    raise ValueError(f"unknown calibration {calibration!r}; use one of "
                     f"{CALIBRATIONS}")
  folds = list(GroupKFold(INNER_FOLDS, shuffle=True, random_state=seed).split(
      x, y, groups))
  passed = None if passed is None else np.asarray(passed, bool)
  strata = None if strata is None else np.asarray(strata)
  scores, oofs = {}, {}
  for family, params in candidates:
    if families is not None and family not in families:
      continue
    make = lambda f=family, p=params: make_model(f, p, directions)
    label = f"{family} {params}"
    oofs[label] = (family, params, make,
                   _inner_oof(make, x, y, passed, strata, folds))
    scores[label] = selection_score(oofs[label][3], y, criterion=criterion,
                                    passed=passed, strata=strata)
  if not scores:
    raise ValueError(f"no candidate of families {families}")
  best = max(scores, key=scores.get)
  family, params, make, oof = oofs[best]
  model = _fit(make(), x, y, passed, strata)
  lo, hi = target_range
  calibrator = (CentredIsotonic(0.0, 100.0) if calibration == "centred" else
                IsotonicRegression(y_min=0.0, y_max=100.0, increasing=True,
                                   out_of_bounds="clip")).fit(
                                       oof, 100.0 * (y - lo) / (hi - lo))
  reference = np.nanmedian(x, axis=0)
  return Fusion(features=tuple(features), directions=directions, family=family,
                params=dict(params), selection=scores, target_range=(lo, hi),
                model=model, calibrator=calibrator,
                reference=np.where(np.isfinite(reference), reference, 0.0))
