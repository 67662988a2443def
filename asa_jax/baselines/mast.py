r"""MAST check of the rule-based baselines against human grades (issue 3).

  python -m asa_jax.baselines.mast --mast_dir=../shared/data/mast \
      --output_dir=DIR

Runs the seven pitch-histogram measures (paper 4.2.1), the DTW pitch rating
(4.2.2) and the key- and tempo-invariant melodic similarity `dtw_melody`
(Molina et al., ICASSP 2013; asa_jax.baselines.dtw_melody) on MASTmelody's f0
curves directly (`contours_from_f0`; see
`mast_data` for the data and the performance/reference pairing) and reports,
per melody and over all performances, Pearson's r between each measure and the
mean of the raters' 4-level grades (scipy.stats.pearsonr) and the ROC AUC of
the measure for the jury's pass/fail (Mann-Whitney U / (n_pass n_fail), i.e.
P(score of a pass > score of a fail), ties counted 1/2). Every measure is
oriented higher = better, so r > 0 and AUC > 0.5 mean agreement with the
humans. Writes DIR/mast.json and DIR/mast.md (atomic) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Callable

import numpy as np
import scipy.stats

from asa_jax import atomic
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw as dtw_lib
from asa_jax.baselines import dtw_melody
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from input_pipeline.corpora import mast_data

# Measures against the melody's reference(s): name -> rating(perf, ref).
PAIR_RATINGS = {"dtw_pitch": dtw_lib.dtw_pitch_rating,
                dtw_melody.MEASURE: dtw_melody.dtw_melody_rating}
MEASURES = baseline_names.HISTOGRAM + tuple(PAIR_RATINGS)
MIN_PEARSON_N = 3


def pearson(x, y) -> tuple[float, float]:
  """(r, two-sided p) by scipy.stats.pearsonr; (nan, nan) if n < 3 or a
  constant input."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if len(x) < MIN_PEARSON_N or np.ptp(x) == 0 or np.ptp(y) == 0:
    return math.nan, math.nan
  result = scipy.stats.pearsonr(x, y)
  return float(result.statistic), float(result.pvalue)


def roc_auc(scores, positive) -> float:
  """ROC AUC of `scores` for the boolean labels `positive` (Mann-Whitney U).

  Returns:
    U / (n_pos n_neg) = P(score_pos > score_neg) + P(tie) / 2; nan when one
    class is empty.
  """
  scores = np.asarray(scores, np.float64)
  positive = np.asarray(positive, bool)
  pos, neg = scores[positive], scores[~positive]
  if len(pos) == 0 or len(neg) == 0:
    return math.nan
  u = scipy.stats.mannwhitneyu(pos, neg, alternative="two-sided").statistic
  return float(u / (len(pos) * len(neg)))


def score_curves(curves: list[mast_data.MastCurve],
                 log: Callable[[str], None] = print) -> list[dict]:
  """Scores every MAST performance with the MEASURES.

  Returns:
    One dict per performance curve: name, melody, passed, grades (tuple),
    mean_grade (or None), pairing, and one float per measure (missing when it
    could not be computed; reported through log).
  """
  pairs = mast_data.pair_references(curves)
  contour_memo: dict[str, contours_lib.Contours] = {}

  def contour(c: mast_data.MastCurve) -> contours_lib.Contours:
    if c.name not in contour_memo:
      contour_memo[c.name] = contours_lib.contours_from_f0(c.times_s, c.f0_hz)
    return contour_memo[c.name]

  rows = []
  perfs = [c for c in curves if c.kind == "per"]
  for i, c in enumerate(perfs):
    row = {"name": c.name, "melody": c.melody, "passed": c.passed}
    try:
      row.update(histogram_lib.histogram_measures(c.f0_hz))
    except ValueError as e:
      log(f"mast: no histogram measures for {c.name}: {e}")
    pairing, refs = pairs[c.name]
    row["pairing"] = pairing
    row["references"] = [r.name for r in refs]
    for measure, rating in PAIR_RATINGS.items():
      try:
        if not refs:
          raise ValueError("its melody has no reference")
        ratings = [rating(contour(c), contour(r)) for r in refs]
        row[measure] = float(np.median(ratings))
      except ValueError as e:
        log(f"mast: no {measure} for {c.name}: {e}")
    rows.append(row)
    if (i + 1) % 200 == 0:
      log(f"mast: {i + 1}/{len(perfs)} performances scored")
  return rows


def agreement(rows: list[dict], measure: str) -> dict:
  """Pearson with the mean grade and pass/fail AUC of one measure on rows."""
  have = [r for r in rows if measure in r]
  graded = [r for r in have if r.get("mean_grade") is not None]
  r, p = pearson([x[measure] for x in graded], [x["mean_grade"] for x in graded])
  labelled = [x for x in have if x["passed"] is not None]
  auc = roc_auc([x[measure] for x in labelled],
                [x["passed"] for x in labelled])
  return {"pearson": r, "p_value": p, "n_graded": len(graded), "auc": auc,
          "n_pass": sum(bool(x["passed"]) for x in labelled),
          "n_fail": sum(not x["passed"] for x in labelled)}


def evaluate(rows: list[dict]) -> dict:
  """Per-melody and overall agreement of every measure (see module doc).

  Returns:
    {measure: {'overall': agreement over all rows, 'per_melody': {melody:
    agreement}, 'per_melody_mean': {'pearson': mean of the defined per-melody
    r, 'auc': mean of the defined per-melody AUCs, 'n_melodies_pearson',
    'n_melodies_auc'}}}.
  """
  melodies = sorted({r["melody"] for r in rows},
                    key=lambda m: tuple(int(v) for v in m.split("_mel")))
  out = {}
  for measure in MEASURES:
    per = {m: agreement([r for r in rows if r["melody"] == m], measure)
           for m in melodies}
    rs = [v["pearson"] for v in per.values() if not math.isnan(v["pearson"])]
    aucs = [v["auc"] for v in per.values() if not math.isnan(v["auc"])]
    out[measure] = {
        "overall": agreement(rows, measure),
        "per_melody": per,
        "per_melody_mean": {
            "pearson": float(np.mean(rs)) if rs else math.nan,
            "auc": float(np.mean(aucs)) if aucs else math.nan,
            "n_melodies_pearson": len(rs), "n_melodies_auc": len(aucs)},
    }
  return out


def _fmt(x: float) -> str:
  return "n/a" if x is None or math.isnan(x) else f"{x:.3f}"


def overall_table(results: dict) -> str:
  """Markdown table: one row per measure, overall and mean per-melody values."""
  lines = ["| measure | Pearson r (all) | ROC AUC (all) | mean per-melody r "
           "| mean per-melody AUC | n graded | n pass / fail |",
           "|---|---|---|---|---|---|---|"]
  for measure, res in results.items():
    o, m = res["overall"], res["per_melody_mean"]
    lines.append(f"| {measure} | {_fmt(o['pearson'])} | {_fmt(o['auc'])} | "
                 f"{_fmt(m['pearson'])} | {_fmt(m['auc'])} | {o['n_graded']} "
                 f"| {o['n_pass']} / {o['n_fail']} |")
  return "\n".join(lines)


def per_melody_table(results: dict, key: str) -> str:
  """Markdown table of one statistic ('pearson' or 'auc'): melodies x measures."""
  measures = list(results)
  melodies = list(results[measures[0]]["per_melody"])
  lines = ["| melody | n | " + " | ".join(measures) + " |",
           "|---|---|" + "---|" * len(measures)]
  for mel in melodies:
    first = results[measures[0]]["per_melody"][mel]
    n = first["n_pass"] + first["n_fail"]
    cells = [_fmt(results[m]["per_melody"][mel][key]) for m in measures]
    lines.append(f"| {mel} | {n} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _json_safe(x):
  if isinstance(x, float) and math.isnan(x):
    return None
  if isinstance(x, dict):
    return {k: _json_safe(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_json_safe(v) for v in x]
  return x


def run(mast_dir: str, output_dir: str,
        log: Callable[[str], None] = print) -> dict:
  """Loads MAST, scores, evaluates; writes mast.json and mast.md.

  Returns:
    The mast.json content (NaN as None).

  Raises:
    FileNotFoundError: f0data.tar.xz or annotations.csv missing.
  """
  start = time.time()
  curves = mast_data.load_curves(mast_dir)
  grades = mast_data.load_grades(mast_dir)
  log(f"mast: {len(curves)} f0 curves "
      f"({sum(c.kind == 'per' for c in curves)} performances) from {mast_dir}")
  rows = score_curves(curves, log)
  by_name = {c.name: c for c in curves}
  for row in rows:
    g = grades.get(mast_data.grade_key(by_name[row["name"]]), ())
    row["grades"] = list(g)
    row["mean_grade"] = float(np.mean(g)) if g else None
  results = evaluate(rows)
  pairing = {k: sum(r["pairing"] == k for r in rows)
             for k in ("same_id", "melody", "none")}
  table = overall_table(results)
  summary = {
      "mast_dir": os.path.abspath(mast_dir),
      "n_curves": len(curves), "n_performances": len(rows),
      "n_graded": sum(r["mean_grade"] is not None for r in rows),
      "pairing": pairing, "max_fallback_refs": mast_data.MAX_FALLBACK_REFS,
      "measures_orientation": "higher = better singing",
      "results": results, "performances": rows,
      "seconds": round(time.time() - start, 1),
  }
  os.makedirs(output_dir, exist_ok=True)
  atomic.write_text(os.path.join(output_dir, "mast.json"),
                json.dumps(_json_safe(summary), indent=1) + "\n")
  md = [
      "# MAST check of the rule-based baselines (paper 4.2)", "",
      f"{len(rows)} performances of "
      f"{len({r['melody'] for r in rows})} melodies; "
      f"{summary['n_graded']} with raters' grades; DTW reference pairing: "
      f"{pairing['same_id']} same id, {pairing['melody']} median over up to "
      f"{mast_data.MAX_FALLBACK_REFS} refs of the melody, {pairing['none']} none.",
      "Pearson r with the mean of the raters' grades (1-4); ROC AUC for the "
      "jury's pass/fail. Every measure: higher = better.", "",
      "## Overall", "", table, "",
      "## Pearson r per melody", "", per_melody_table(results, "pearson"), "",
      "## ROC AUC per melody", "", per_melody_table(results, "auc"), ""]
  atomic.write_text(os.path.join(output_dir, "mast.md"), "\n".join(md))
  log(table)
  log(f"mast: wrote {output_dir}/mast.json and mast.md "
      f"({summary['seconds']} s)")
  return _json_safe(summary)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mast_dir", required=True,
                      help="MAST folder (f0data.tar.xz, annotations.csv)")
  parser.add_argument("--output_dir", required=True,
                      help="where mast.json and mast.md are written")
  args = parser.parse_args(argv)
  run(args.mast_dir, args.output_dir)
  return 0


if __name__ == "__main__":
  sys.exit(main())
