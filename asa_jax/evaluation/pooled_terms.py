"""Term-table rows of several corpora pooled on one 0-100 target, and the terms kept.

Issue 19, part 2 (the default scorer) and BUILD_NOTES "Fusion levers" (issue 18):
shared by `experiments.default_scorer` and `experiments.fusion_levers`. Flag-free,
so tests and both experiments can import it together.

Features: every term of `baselines.pair_terms.TERMS` that no corpus could be told
by: (1) a value in at least MIN_PRESENT of EACH corpus's rows, and (2) the
corpora's interquartile ranges of the term overlap (a term whose middle halves are
disjoint measures the pitch tracker more than the singing; see
`experiments.default_scorer`).
"""

from __future__ import annotations

import csv
import math
import os

import numpy as np

from asa_jax.baselines import pair_terms

MIN_PRESENT = 0.5  # a feature needs a value in half of every corpus's rows.
TARGET_RANGE = {"mast": (1.0, 4.0), "ssvd": (0.0, 100.0)}


def pooled_rows(tables: dict[str, list[dict]]) -> list[dict]:
  """Rows of every corpus with target on 0-100 and corpus-prefixed melodies."""
  out = []
  for corpus, rows in tables.items():
    lo, hi = TARGET_RANGE[corpus]
    for r in rows:
      if not math.isfinite(r["target"]):
        continue
      out.append({**r, "corpus": corpus, "melody": f"{corpus}:{r['melody']}",
                  "target": 100.0 * (r["target"] - lo) / (hi - lo)})
  return out


def choose_features(rows: list[dict], log=print) -> list[str]:
  """The terms with a value in >= MIN_PRESENT of each corpus's rows whose
  interquartile ranges overlap across the corpora (module doc)."""
  chosen = []
  corpora = sorted({r["corpus"] for r in rows})
  for name in pair_terms.TERMS:
    ok, quartiles = True, []
    for c in corpora:
      v = np.array([r.get(name, math.nan) for r in rows if r["corpus"] == c],
                   np.float64)
      ok &= bool(np.mean(np.isfinite(v)) >= MIN_PRESENT)
      if ok:
        quartiles.append(np.percentile(v[np.isfinite(v)], [25, 75]))
    if ok and max(q[0] for q in quartiles) >= min(q[1] for q in quartiles):
      log(f"left out {name}: interquartile ranges "
          f"{[np.round(q, 2).tolist() for q in quartiles]} ({corpora}) do not overlap")
      ok = False
    if ok:
      chosen.append(name)
  return chosen


def matrix(rows: list[dict], features: list[str]) -> np.ndarray:
  """float64 (n, d) ratings (higher = better) of the rows' terms."""
  return np.array([[pair_terms.rating(n, r.get(n, math.nan)) for n in features]
                   for r in rows], np.float64)


LEARNED_COLUMN = "contour_score"


def with_learned_scores(rows: list[dict], scores_dir: str,
                        column: str = LEARNED_COLUMN) -> list[dict]:
  """Rows joined with a contour system's scores (`evaluation.contour_scores`' CSVs).

  Reads scores_dir/mast_scores.csv and ssvd_scores.csv, or ssvd_crepe_scores.csv
  where it exists (the measured terms' own f0 source) (performance_id, score;
  MAST's `selection` = 1 marks the model-selection melodies). Rows of the
  selection melodies are DROPPED (the learned system was chosen on them), so the
  fusion's CV only sees melodies the learned system never selected on; SSVD ids
  ('<id>' or 'ssvd-<id>') match the term table's 'ssvd-<id>'. A row without a
  score keeps nan.

  Raises:
    FileNotFoundError: a CSV is missing (names it).
  """
  scores, selection = {}, set()
  for corpus, prefix in (("mast", ""), ("ssvd", "ssvd-")):
    path = os.path.join(scores_dir, f"{corpus}_scores.csv")
    crepe = os.path.join(scores_dir, f"{corpus}_crepe_scores.csv")
    if os.path.isfile(crepe):  # the terms' own f0 source (CREPE on the audio).
      path = crepe
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: no learned scores (run contour_scores)")
    with open(path, newline="", encoding="utf-8") as f:
      for r in csv.DictReader(f):
        # ssvd_scores.csv has SSVD's bare ids, ssvd_crepe_scores.csv the
        # manifest's 'ssvd-<id>' already.
        pid = r["performance_id"]
        key = pid if pid.startswith(prefix) else prefix + pid
        scores[key] = float(r["score"])
        if r.get("selection", "0") == "1":
          selection.add(key)
  return [{**r, column: scores.get(r["performance_id"], math.nan)} for r in rows
          if r["performance_id"] not in selection]


def standardise_learned(rows: list[dict]) -> tuple[list[dict], dict]:
  """Rows with the learned score z-scored within each corpus, and the statistics.

  The comparator's score sits on another scale per corpus (MAST's f0 curves of
  short exam phrases, most failed takes far off, against SSVD's CREPE contours of
  whole melodies: pass median 0.26 against 0.42 for the shipped ensemble), and a
  pooled fusion then fits MAST's scale and misreads SSVD's (BUILD_NOTES "The
  contour comparator in the default scorer"). Label-free: mean and sd of the
  score over each corpus's rows; at scoring time the product's f0 source's
  (experiments.default_scorer.PRODUCT_SOURCE) are used.

  Returns:
    (rows with LEARNED_COLUMN standardised, {corpus: {"mean", "sd"}}).
  """
  col = LEARNED_COLUMN
  stats = {}
  for c in sorted({r["corpus"] for r in rows}):
    v = np.array([r[col] for r in rows if r["corpus"] == c], np.float64)
    stats[c] = {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v)) or 1.0}
  return [{**r, col: (r[col] - stats[r["corpus"]]["mean"]) / stats[r["corpus"]]["sd"]}
          for r in rows], stats
