"""Diagnostics behind BUILD_NOTES "Fusion levers" (issue 18): what limits the fusion.

Run by `python -m asa_jax.experiments.fusion_levers --diagnostics
[--learned_scores=A.csv,B.csv]` on the pooled term-table rows and the shipped
recipe's 17 features (`pooled_terms`); each function logs:
  1. MAST alone, 5 melody folds, seeds 0-2, boosted depth 2 (the shipped
     parameters): out-of-fold Pearson's r and pass/fail AUC, mean over seeds, all
     terms monotone, all unordered, and each ordered term unordered in turn (what
     each monotone constraint costs); and a monotone boosted classifier fitted
     on pass/fail itself.
  2. deviation_p90_cents by deciles per corpus: mean target, pass rate, and
     wrong_notes.
  3. SSVD: an OLS fit in-sample on all 80 rows (an optimistic bound, no CV) with
     the 17 terms, all terms, wrong_notes + intonation, wrong_notes; Pearson's
     and Spearman's r of single terms.
  4. with --learned_scores (CSV: performance_id, score, optional selection = 1
     for rows used to select the learned model, which are dropped): Pearson's r
     of each learned score with the MAST target and with the residual of the
     terms' out-of-fold fusion (seed 0).
These are post hoc looks (MAST's folds included), not selections.
"""

from __future__ import annotations

import csv

import numpy as np
import scipy.stats

from asa_jax.baselines import pair_terms
from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import melody_cv
from asa_jax.evaluation import pooled_terms

SEEDS = (0, 1, 2)


def _oof(make, x, target, melodies, seed, classify=False) -> np.ndarray:
  folds = melody_cv.melody_folds(melodies, 5, seed)
  out = np.zeros(len(target))
  for k in range(5):
    test = folds == k
    model = make().fit(x[~test], target[~test])
    out[test] = (model.decision_function(x[test]) if classify
                 else model.predict(x[test]))
  return out


def monotone_costs(rows, features, log=print) -> dict:
  """{label: (r, AUC)} means over SEEDS on MAST (module doc, 1)."""
  from sklearn.ensemble import HistGradientBoostingClassifier  # pylint: disable=g-import-not-at-top
  from sklearn.ensemble import HistGradientBoostingRegressor  # pylint: disable=g-import-not-at-top
  mast = [r for r in rows if r["corpus"] == "mast"]
  x = pooled_terms.matrix(mast, features)
  y = np.array([r["target"] for r in mast])
  passed = np.array([r["passed"] for r in mast]) > 0.5
  melodies = np.array([r["melody"] for r in mast])
  base = [pair_terms.direction(n) for n in features]
  variants = {"all monotone": base, "all unordered": [0] * len(base)}
  variants.update({f"{n} unordered": [0 if i == j else d for j, d in enumerate(base)]
                   for i, n in enumerate(features) if base[i]})
  out = {}
  for label, cst in variants.items():
    make = lambda cst=cst: HistGradientBoostingRegressor(
        monotonic_cst=cst, early_stopping=False, random_state=0,
        **fusion_lib.HGB_PARAMS[0])
    res = [(_pearson(s, y), melody_cv.auc(s, passed))
           for s in (_oof(make, x, y, melodies, seed) for seed in SEEDS)]
    out[label] = tuple(np.mean(res, axis=0))
    log(f"MAST boosted, {label}: r {out[label][0]:.3f} AUC {out[label][1]:.3f}")
  make = lambda: HistGradientBoostingClassifier(
      monotonic_cst=base, early_stopping=False, random_state=0,
      **fusion_lib.HGB_PARAMS[0])
  res = [(_pearson(s, y), melody_cv.auc(s, passed))
         for s in (_oof(make, x, passed, melodies, seed, classify=True)
                   for seed in SEEDS)]
  out["classifier on pass/fail"] = tuple(np.mean(res, axis=0))
  log(f"MAST monotone classifier on pass/fail: r {out['classifier on pass/fail'][0]:.3f}"
      f" AUC {out['classifier on pass/fail'][1]:.3f}")
  return out


def _pearson(a, b) -> float:
  return float(np.corrcoef(a, b)[0, 1])


def deciles(tables, name="deviation_p90_cents", log=print) -> None:
  """Prints the term's deciles per corpus (module doc, 2)."""
  for corpus, rows in tables.items():
    v = np.array([r[name] for r in rows], np.float64)
    y = np.array([r["target"] for r in rows])
    p = np.array([r["passed"] for r in rows])
    w = np.array([r["wrong_notes"] for r in rows], np.float64)
    edges = np.nanpercentile(v, np.linspace(0, 100, 11))
    for lo, hi in zip(edges[:-1], edges[1:]):
      k = (v >= lo) & (v <= hi)
      log(f"{corpus} {name} [{lo:.0f}, {hi:.0f}]: n {k.sum()} target "
          f"{y[k].mean():.2f} pass {p[k].mean():.2f} wrong_notes {np.nanmean(w[k]):.2f}")


def ssvd_bounds(rows, features, log=print) -> None:
  """Prints SSVD's in-sample OLS bounds and single terms' r (module doc, 3)."""
  from sklearn.linear_model import LinearRegression  # pylint: disable=g-import-not-at-top
  ssvd = [r for r in rows if r["corpus"] == "ssvd"]
  y = np.array([r["target"] for r in ssvd])
  for label, names in [("17 features", features), ("all terms", pair_terms.TERMS),
                       ("wrong_notes + intonation", ["wrong_notes", "intonation_cents"]),
                       ("wrong_notes", ["wrong_notes"])]:
    x = pooled_terms.matrix(ssvd, list(names))
    x = np.where(np.isfinite(x), x, np.nanmedian(x, axis=0))
    fit = LinearRegression().fit(x, y).predict(x)
    log(f"SSVD in-sample OLS, {label}: r {_pearson(fit, y):.3f}")
  for name in ("wrong_notes", "intonation_cents", "dtw_melody", "deviation_p90_cents"):
    v = pooled_terms.matrix(ssvd, [name])[:, 0]
    log(f"SSVD {name}: Pearson {_pearson(v, y):.3f} Spearman "
        f"{scipy.stats.spearmanr(v, y)[0]:.3f}")


def learned_residuals(rows, features, paths, log=print) -> None:
  """Prints each learned score's r with the target and the fusion's residual."""
  from sklearn.ensemble import HistGradientBoostingRegressor  # pylint: disable=g-import-not-at-top
  mast = [r for r in rows if r["corpus"] == "mast"]
  x = pooled_terms.matrix(mast, features)
  y = np.array([r["target"] for r in mast])
  melodies = np.array([r["melody"] for r in mast])
  make = lambda: HistGradientBoostingRegressor(
      monotonic_cst=[pair_terms.direction(n) for n in features], early_stopping=False,
      random_state=0, **fusion_lib.HGB_PARAMS[0])
  residual = y - _oof(make, x, y, melodies, 0)
  ids = [r["performance_id"] for r in mast]
  for path in paths:
    with open(path, newline="", encoding="utf-8") as f:
      score = {r["performance_id"]: float(r["score"]) for r in csv.DictReader(f)
               if r.get("selection", "0") != "1"}
    s = np.array([score.get(i, np.nan) for i in ids])
    ok = np.isfinite(s)
    if ok.sum() < 3:
      raise ValueError(f"{path}: fewer than 3 performance ids match the MAST table")
    log(f"{path}: n {ok.sum()} r with target {_pearson(s[ok], y[ok]):.3f}, "
        f"with the fusion's residual {_pearson(s[ok], residual[ok]):.3f}")
