"""Leave-melodies-out cross-validation on real labels: folds, out-of-fold fusion, metrics.

Issue 18, sections 4 and 6. Folds are by melody (sklearn GroupKFold, shuffled by a
seed: deterministic), so no melody is in two folds and every prediction comes from a
model that never saw its melody. Each outer fold fits `fusion.fit_fusion` on the
other folds only (its model choice is an inner leave-melodies-out CV of those
folds). Metrics: Pearson's r with the target and ROC AUC for pass/fail
(sklearn.metrics.roc_auc_score), pooled over all out-of-fold predictions, with 95%
percentile bootstrap intervals over performances (r: asa_jax.evaluation.bootstrap;
AUC: the same resampling, scipy.stats.bootstrap, in `auc_interval`).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np

from asa_jax.evaluation import bootstrap
from asa_jax.evaluation import fusion as fusion_lib


def melody_folds(melodies: Sequence[str], n_folds: int, seed: int
                 ) -> np.ndarray:
  """int (n,) fold index of each row; all rows of a melody share one fold.

  sklearn GroupKFold(n_folds, shuffle=True, random_state=seed): the same melodies
  and seed give the same folds.

  Raises:
    ValueError: fewer melodies than folds.
  """
  from sklearn.model_selection import GroupKFold  # pylint: disable=g-import-not-at-top
  groups = np.asarray(melodies)
  if len(set(groups.tolist())) < n_folds:
    raise ValueError(f"{len(set(groups.tolist()))} melodies < {n_folds} folds")
  fold = np.full(len(groups), -1, np.int64)
  splitter = GroupKFold(n_folds, shuffle=True, random_state=seed)
  for k, (_, test) in enumerate(splitter.split(groups, groups=groups)):
    fold[test] = k
  return fold


def out_of_fold(x, y, melodies, folds, features, directions, *, target_range,
                seed: int = 0, strata=None, **fit_kwargs
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Out-of-fold fused scores: (calibrated 0-100 (n,), raw (n,), family per fold).

  Each fold's rows are scored by a Fusion fitted on the other folds' rows only.
  strata: (n,) per-row strata (e.g. corpus) for `fusion.fit_fusion`, or None;
  fit_kwargs (candidates, criterion, passed, ...) go to it as they are.
  """
  x = np.asarray(x, np.float64)
  y = np.asarray(y, np.float64)
  melodies = np.asarray(melodies)
  calibrated = np.full(len(y), np.nan)
  raw = np.full(len(y), np.nan)
  chosen = []
  for k in np.unique(folds):
    test = folds == k
    kwargs = dict(fit_kwargs)
    if kwargs.get("passed") is not None:
      kwargs["passed"] = np.asarray(kwargs["passed"])[~test]
    fitted = fusion_lib.fit_fusion(
        x[~test], y[~test], melodies[~test], features, directions,
        target_range=target_range, seed=seed,
        strata=None if strata is None else np.asarray(strata)[~test], **kwargs)
    calibrated[test] = fitted.predict(x[test])
    raw[test] = fitted.predict_raw(x[test])
    chosen.append(f"{fitted.family} {fitted.params}")
  return calibrated, raw, chosen


def auc(scores, positive) -> float:
  """ROC AUC (sklearn.metrics.roc_auc_score); nan when a class is empty."""
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  positive = np.asarray(positive, bool)
  if positive.all() or not positive.any():
    return math.nan
  return float(roc_auc_score(positive, np.asarray(scores, np.float64)))


def auc_interval(scores, positive, *, n_resamples: int = 1000, seed: int = 0
                 ) -> list[float] | None:
  """95% percentile bootstrap interval of the ROC AUC over performances.

  Resamples (score, label) pairs with replacement (scipy.stats.bootstrap, paired);
  resamples with one class only are dropped. None when fewer than half are valid.
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top
  s = np.asarray(scores, np.float64)
  p = np.asarray(positive, bool)

  def stat(a, b, axis=-1):
    # Mann-Whitney form of the AUC (equal to roc_auc_score, ties counted 1/2),
    # vectorised over resamples; nan where a resample has one class only.
    ranks = scipy.stats.rankdata(a, axis=axis)
    n_pos = b.sum(axis=axis)
    n_neg = b.shape[axis] - n_pos
    u = (ranks * b).sum(axis=axis) - n_pos * (n_pos + 1) / 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
      return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)

  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    res = scipy.stats.bootstrap((s, p.astype(np.float64)), stat, paired=True,
                                vectorized=True, n_resamples=n_resamples,
                                method="percentile",
                                rng=np.random.default_rng(seed))
  dist = np.asarray(res.bootstrap_distribution, np.float64)
  dist = dist[np.isfinite(dist)]
  if dist.size < n_resamples / 2:
    return None
  return [float(v) for v in np.quantile(dist, [0.025, 0.975])]


def agreement(pred, target, passed, *, n_resamples: int = 1000, seed: int = 0
              ) -> dict:
  """Pearson's r with CI and pass/fail AUC with CI on the rows where pred is finite.

  Returns:
    {'n', 'pearson', 'pearson_ci95', 'auc', 'auc_ci95'}.
  """
  pred = np.asarray(pred, np.float64)
  ok = np.isfinite(pred)
  x, y, p = pred[ok], np.asarray(target, np.float64)[ok], np.asarray(passed, bool)[ok]
  r = float(bootstrap.pearson_r(x, y)) if ok.sum() >= 3 else math.nan
  ci = bootstrap.pearson_interval(x, y, n_resamples=n_resamples, seed=seed)
  a = auc(x, p)
  return {"n": int(ok.sum()), "pearson": r, "pearson_ci95": ci.to_json(),
          "auc": a, "auc_ci95": (auc_interval(x, p, n_resamples=n_resamples,
                                              seed=seed)
                                 if math.isfinite(a) else None)}
