"""The fusion's levers toward issue 18's targets, under a pre-declared protocol.

Protocol and rule: BUILD_NOTES "Fusion levers toward the acceptance targets"; run
by `asa_jax.experiments.fusion_levers`. Rows and features are the shipped default
scorer's (`pooled_terms.pooled_rows`, `choose_features`: 17 terms, targets on
0-100, corpus-prefixed melodies).

For each recipe (RECIPES: a candidate set, a target transform, an inner
criterion; `fusion.fit_fusion`) and seed: MAST's melodies are dealt into --folds
folds (`melody_cv.melody_folds`) and each fold is scored by a fusion fitted on the
other MAST folds plus EVERY SSVD row; then the same with SSVD's melodies, every
MAST row always in the training part. Pearson's r with the target and pass/fail
ROC AUC of the out-of-fold calibrated scores, 95% bootstrap CIs per seed, mean and
range over seeds (the table: the envelope of the seeds' CIs), the candidate each
outer fold chose, and the pre-declared figure
of merit (mean over seeds of the mean of MAST r, MAST AUC and SSVD r).
"""

from __future__ import annotations

import collections

import numpy as np

from asa_jax.baselines import pair_terms
from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import melody_cv
from asa_jax.evaluation import pooled_terms

_R0 = list(fusion_lib.DEFAULT_CANDIDATES)
_R3 = [("hgb", p) for p in fusion_lib.REGULARISED_HGB]
_R4 = [("mean", fusion_lib.MEAN_PARAMS)]
_R5 = [("pass_blend", fusion_lib.PASS_BLEND_PARAMS)]
_R6 = [("lasso", {"alpha": a}) for a in fusion_lib.LASSO_ALPHAS]


def _z(candidates):
  return [(f, {**p, "target": "z"}) for f, p in candidates]


_ALL = _R0 + _R3 + _R4 + _R5 + _R6
# name -> (description, candidates, criterion[, terms made unordered[, {term:
# bound}: the term's raw value above the bound is set missing]]).
# BUILD_NOTES lists them; R7 is round 2 (declared after round 1's figures).
RECIPES = {
    "R0": ("shipped: linear + boosted, pooled r", _R0, "pearson"),
    "R1": ("R0 on the per-corpus z target", _z(_R0), "pearson"),
    "R2": ("R0 chosen by mean over corpora of (r + AUC) / 2", _R0, "strata_r_auc"),
    "R3": ("regularised trees only (stumps; depth 2, leaf 60, L2 10)", _R3,
           "pearson"),
    "R4": ("ensemble only: mean of linear (alpha 10) and boosted (depth 2)", _R4,
           "pearson"),
    "R5": ("pass blend only: boosted regression + monotone classifier logit", _R5,
           "pearson"),
    "R6": ("sparse linear only: Lasso(positive)", _R6, "pearson"),
    "R*": ("all of R0, R3-R6, raw and z target, chosen by R2's criterion",
           _ALL + _z(_ALL), "strata_r_auc"),
    "R7": ("R* with deviation_p90_cents unordered (round 2)", _ALL + _z(_ALL),
           "strata_r_auc", ("deviation_p90_cents",)),
    "R8": ("bagged boosted trees only (10 bootstrap resamples)",
           [("bagged", fusion_lib.BAGGED_PARAMS)], "pearson"),
    "R9": ("R* with deviation_p90_cents > 600 cents as missing (round 3)",
           _ALL + _z(_ALL), "strata_r_auc", (), {"deviation_p90_cents": 600.0}),
}


def corpus_cv(rows, features, candidates, criterion, *, test_corpus, n_folds, seed,
              n_boot, unordered=(), missing_above=None) -> dict:
  """Leave-melodies-out CV of one corpus, the other corpora always in training.

  `unordered` terms get direction 0 (the fusion may use them either way);
  `missing_above` {term: bound}: the term is nan where its value exceeds bound.

  Returns:
    agreement of the calibrated out-of-fold scores (`melody_cv.agreement`) plus
    'raw' (the same of the raw scores) and 'chosen' (each fold's candidate).
  """
  x = pooled_terms.matrix(rows, features)
  for name, bound in (missing_above or {}).items():
    value = np.array([r.get(name, np.nan) for r in rows], np.float64)
    x[value > bound, features.index(name)] = np.nan
  y = np.array([r["target"] for r in rows])
  melodies = np.array([r["melody"] for r in rows])
  passed = np.array([r["passed"] for r in rows]) > 0.5
  corpus = np.array([r["corpus"] for r in rows])
  directions = [0 if n in unordered else pair_terms.direction(n) for n in features]
  test_rows = corpus == test_corpus
  folds = np.full(len(y), -1)
  folds[test_rows] = melody_cv.melody_folds(melodies[test_rows], n_folds, seed)
  cal, raw, chosen = np.full(len(y), np.nan), np.full(len(y), np.nan), []
  for k in range(n_folds):
    test = folds == k
    fit = fusion_lib.fit_fusion(
        x[~test], y[~test], melodies[~test], features, directions,
        target_range=(0.0, 100.0), seed=seed, candidates=candidates,
        criterion=criterion, passed=passed[~test], strata=corpus[~test])
    cal[test], raw[test] = fit.predict(x[test]), fit.predict_raw(x[test])
    chosen.append(f"{fit.family} {fit.params}")
  keys = ("n", "pearson", "pearson_ci95", "auc", "auc_ci95")
  res = melody_cv.agreement(cal[test_rows], y[test_rows], passed[test_rows],
                            n_resamples=n_boot, seed=seed)
  res_raw = melody_cv.agreement(raw[test_rows], y[test_rows], passed[test_rows],
                                n_resamples=n_boot, seed=seed)
  return {**{k: res[k] for k in keys}, "raw": {k: res_raw[k] for k in keys},
          "chosen": chosen}


def summary(per_seed: list[dict]) -> dict:
  """{metric: [mean, min, max]} over seeds of r and AUC, calibrated and raw."""
  out = {}
  for key, get in [("pearson", lambda d: d["pearson"]), ("auc", lambda d: d["auc"]),
                   ("raw_pearson", lambda d: d["raw"]["pearson"]),
                   ("raw_auc", lambda d: d["raw"]["auc"])]:
    v = np.array([get(d) for d in per_seed], np.float64)
    out[key] = [float(v.mean()), float(v.min()), float(v.max())]
  return out


def merit(result: dict) -> float:
  """The pre-declared figure of merit: mean of (MAST r, MAST AUC, SSVD r), each
  the mean over seeds of the calibrated out-of-fold scores."""
  return float(np.mean([result["mast"]["summary"]["pearson"][0],
                        result["mast"]["summary"]["auc"][0],
                        result["ssvd"]["summary"]["pearson"][0]]))


def _envelope(per_seed: list[dict], key: str) -> str:
  """'[lo, hi]': the lowest lower and highest upper 95% CI bound over seeds."""
  cis = [d[key] for d in per_seed if d[key] is not None]
  if not cis:
    return "[n/a]"
  return f"[{min(c[0] for c in cis):.2f}, {max(c[1] for c in cis):.2f}]"


def table(results: dict) -> str:
  """Markdown: per recipe and corpus, mean (range) over seeds, the CIs' envelope."""
  lines = ["| recipe | corpus | r mean (range) over seeds | r 95% CIs, envelope "
           "| AUC mean (range) | AUC 95% CIs, envelope | raw r mean | merit |",
           "|---|---|---|---|---|---|---:|---:|"]
  for name, res in results.items():
    for c in ("mast", "ssvd"):
      s, ps = res[c]["summary"], res[c]["per_seed"]
      lines.append(
          f"| {name} | {c} | {s['pearson'][0]:.3f} ({s['pearson'][1]:.3f}-"
          f"{s['pearson'][2]:.3f}) | {_envelope(ps, 'pearson_ci95')} | "
          f"{s['auc'][0]:.3f} ({s['auc'][1]:.3f}-{s['auc'][2]:.3f}) | "
          f"{_envelope(ps, 'auc_ci95')} | {s['raw_pearson'][0]:.3f} | "
          f"{res['merit']:.3f} |")
  return "\n".join(lines)


def run_recipe(rows, features, name: str, *, seeds, n_folds: int, n_boot: int
               ) -> dict:
  """One recipe of RECIPES on both corpora over `seeds` (module doc).

  Returns:
    {'description', 'criterion', 'unordered', 'missing_above', 'mast', 'ssvd':
    {'per_seed', 'summary', 'chosen'}, 'merit'}.

  Raises:
    KeyError: an unknown recipe.
  """
  desc, candidates, criterion, *rest = RECIPES[name]
  unordered = rest[0] if rest else ()
  missing_above = rest[1] if len(rest) > 1 else None
  res = {"description": desc, "criterion": criterion, "unordered": list(unordered),
         "missing_above": missing_above}
  for c in ("mast", "ssvd"):
    per_seed = [corpus_cv(rows, features, candidates, criterion, test_corpus=c,
                          n_folds=n_folds, seed=s, n_boot=n_boot,
                          unordered=unordered, missing_above=missing_above)
                for s in seeds]
    res[c] = {"per_seed": per_seed, "summary": summary(per_seed),
              "chosen": dict(collections.Counter(
                  ch for d in per_seed for ch in d["chosen"]))}
  res["merit"] = merit(res)
  return res
