r"""Measured terms and their fusion against real labels, leave-melodies-out (issue 18).

  python -m asa_jax.experiments.real_labels --corpus=mast \
      --output_dir=runs/real_labels/mast [--learned_scores=scores.csv]
  python -m asa_jax.experiments.real_labels --corpus=ssvd \
      --output_dir=runs/real_labels/ssvd

Builds (or reads, runs/real_labels/`term_table.table_name`) the per-performance table of
asa_jax.baselines.term_table, deals the melodies into --folds folds
(asa_jax.evaluation.melody_cv.melody_folds, --seed) and writes the ablation table
(OUTPUT_DIR/ablation.md and .json, atomic; printed too):
  * every term alone (its baseline rating, higher = better; no fitting);
  * dtw_melody alone;
  * 'baselines fused': the fusion of today's rule-based baselines (dtw_melody and
    the pitch-histogram measures);
  * 'measured terms fused': those plus every measured term (and voice quality);
  * with --learned_scores (CSV: performance_id and one or more score columns,
    higher = better; joined by performance id, missing rows nan): each learned
    column alone, and everything fused with the learned columns.
With --ablate_groups, also the fusion of all measured terms but one group
(TERM_GROUPS) at a time. Fused rows are out-of-fold: each fold scored by a fusion fitted on the others
(model family chosen inside them), calibrated to 0-100 (isotonic). Pearson's r with
the target and pass/fail ROC AUC with 95% bootstrap CIs. Finally the fusion of
all measured terms is fitted on every row and saved to OUTPUT_DIR/fusion.pkl.
"""

from __future__ import annotations

import csv
import json
import math
import os

from absl import app
from absl import flags
import numpy as np

from asa_jax import atomic
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from asa_jax.baselines import measured_terms
from asa_jax.baselines import term_table
from asa_jax.baselines import voice_quality
from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import melody_cv

_CORPUS = flags.DEFINE_enum("corpus", "mast", ["mast", "ssvd"], "Real-label corpus.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Output folder.")
_TABLE = flags.DEFINE_string("table", None, "Term table CSV (default "
                             "runs/real_labels/`term_table.table_name`).")
_MAST_DIR = flags.DEFINE_string("mast_dir", "../shared/data/mast", "MAST folder.")
_SSVD_DIR = flags.DEFINE_string("ssvd_dir", "../shared/data/ssvd", "SSVD v1 folder.")
_CACHE_DIR = flags.DEFINE_string("cache_dir", "runs/contours_cache",
                                 "Contour cache (CREPE) for audio corpora.")
_LEARNED = flags.DEFINE_string("learned_scores", None, "Learned-scores CSV.")
_FOLDS = flags.DEFINE_integer("folds", 5, "Leave-melodies-out folds.")
_SEED = flags.DEFINE_integer("seed", 0, "Fold and inner-fold seed.")
_BOOT = flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the CIs.")
_ABLATE = flags.DEFINE_bool("ablate_groups", False, "Also fuse all measured terms "
                            "but one group (TERM_GROUPS) at a time.")

TARGET_RANGE = {"mast": (1.0, 4.0), "ssvd": (0.0, 100.0)}
BASELINES = ("dtw_melody",) + tuple(baseline_names.HISTOGRAM)
# Groups left out one at a time by --ablate_groups.
TERM_GROUPS = {
    "histogram": tuple(baseline_names.HISTOGRAM),
    "note pitch": ("dtw_melody", "intonation_cents", "interval_cents", "wrong_notes",
                   "deviation_p90_cents", "missing_fraction"),
    "rhythm": ("onset_deviation_ms", "tempo_variance_pct", "tempo_ratio"),
    "stability, vibrato, drift": ("pitch_stability_cents", "vibrato_rate_hz",
                                  "vibrato_extent_cents", "key_drift_cents"),
    "voice quality, dynamics": tuple(voice_quality.TERMS) + ("dynamic_range_db",),
}


def oriented(name: str, values: np.ndarray) -> np.ndarray:
  """A table column as its baseline rating (higher = better)."""
  if name in measured_terms.TERMS:
    return np.array([measured_terms.rating(name, v) if np.isfinite(v) else np.nan
                     for v in values])
  if name in voice_quality.TERMS:
    return voice_quality.rating(name, values)
  return values


def direction(name: str) -> int:
  """+1 where the fusion may only increase with the rating, 0 unordered."""
  if name in measured_terms.TERMS:
    return int(measured_terms.TERMS[name][1] != 0)
  return 1


def read_learned(path: str) -> dict[str, dict[str, float]]:
  """{column: {performance_id: score}} of a learned-scores CSV.

  Raises:
    ValueError: no performance_id column or no score column (names the file).
  """
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    cols = [c for c in (reader.fieldnames or []) if c != "performance_id"]
    if "performance_id" not in (reader.fieldnames or []) or not cols:
      raise ValueError(f"{path}: needs a performance_id column and score columns")
    out = {c: {} for c in cols}
    for row in reader:
      for c in cols:
        try:
          out[c][row["performance_id"]] = float(row[c])
        except (TypeError, ValueError):
          pass
  return out


def run(rows: list[dict], corpus: str, *, n_folds: int, seed: int,
        learned: dict | None = None, n_boot: int = 1000,
        ablate_groups: bool = False, log=print) -> tuple[dict, fusion_lib.Fusion]:
  """The ablation (module doc) on term-table rows; returns (results, final fusion)."""
  ids = [r["performance_id"] for r in rows]
  melodies = np.array([r["melody"] for r in rows])
  y = np.array([r["target"] for r in rows], np.float64)
  passed = np.array([r["passed"] for r in rows]) > 0.5
  columns = {}
  for name in term_table.FEATURES:
    v = oriented(name, np.array([r.get(name, math.nan) for r in rows], np.float64))
    if np.isfinite(v).any():
      columns[name] = v
  learned_cols = {}
  for c, by_id in (learned or {}).items():
    learned_cols[f"learned:{c}"] = np.array([by_id.get(i, math.nan) for i in ids])
  folds = melody_cv.melody_folds(melodies, n_folds, seed)
  results = {"corpus": corpus, "n": len(rows), "melodies": len(set(melodies)),
             "folds": n_folds, "seed": seed, "fold_sizes": np.bincount(folds).tolist(),
             "rows": []}

  def add(label, pred, kind, extra=None):
    res = {"system": label, "kind": kind,
           **melody_cv.agreement(pred, y, passed, n_resamples=n_boot, seed=seed)}
    res.update(extra or {})
    results["rows"].append(res)
    log(f"{label:40s} r={res['pearson']:.3f} {res['pearson_ci95']} "
        f"AUC={res['auc']:.3f} {res['auc_ci95']} n={res['n']}")

  for name, v in {**columns, **learned_cols}.items():
    add(name, v, "alone")
  target_range = TARGET_RANGE[corpus]
  measured = list(columns)
  sets = {"baselines fused (dtw_melody + histogram)":
              [c for c in measured if c in BASELINES],
          "measured terms fused": measured}
  if ablate_groups:
    for group, members in TERM_GROUPS.items():
      kept = [c for c in measured if c not in members]
      if len(kept) < len(measured):
        sets[f"measured terms fused without {group}"] = kept
  if learned_cols:
    sets["learned fused"] = list(learned_cols)
    sets["measured terms + learned fused"] = measured + list(learned_cols)
  x_all = {**columns, **learned_cols}
  for label, names in sets.items():
    x = np.stack([x_all[n] for n in names], axis=1)
    dirs = [1 if n.startswith("learned:") else direction(n) for n in names]
    cal, raw, chosen = melody_cv.out_of_fold(x, y, melodies, folds, names, dirs,
                                             target_range=target_range, seed=seed)
    add(label + " (raw)", raw, "fused", {"features": names, "chosen": chosen})
    add(label + " (calibrated 0-100)", cal, "fused")
  names = measured
  x = np.stack([columns[n] for n in names], axis=1)
  final = fusion_lib.fit_fusion(x, y, melodies, names,
                                [direction(n) for n in names],
                                target_range=target_range, seed=seed)
  results["final_fusion"] = {"family": final.family, "params": final.params,
                             "selection": final.selection, "features": names}
  # "Why this score" for three performances (worst, median, best target).
  picks = np.argsort(y)[[0, len(y) // 2, -1]]
  contrib = final.contributions(x[picks])
  score = final.predict(x[picks])
  results["example_contributions"] = [
      {"performance_id": ids[i], "target": float(y[i]), "score_0_100": float(s),
       "contributions": {n: round(float(c), 4) for n, c in zip(names, row)}}
      for i, s, row in zip(picks, score, contrib)]
  return results, final


def markdown(results: dict) -> str:
  """The ablation table as Markdown."""
  def ci(v):
    return "" if not v else f"[{v[0]:.2f}, {v[1]:.2f}]"
  lines = [f"{results['corpus']}: {results['n']} performances, "
           f"{results['melodies']} melodies, {results['folds']} melody folds "
           f"(seed {results['seed']}, sizes {results['fold_sizes']})", "",
           "| system | n | Pearson's r [95% CI] | pass/fail AUC [95% CI] |",
           "|---|---:|---|---|"]
  for r in results["rows"]:
    lines.append(f"| {r['system']} | {r['n']} | {r['pearson']:.3f} "
                 f"{ci(r['pearson_ci95'])} | {r['auc']:.3f} {ci(r['auc_ci95'])} |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  if not _OUTPUT_DIR.value:
    raise app.UsageError("--output_dir is required")
  corpus = _CORPUS.value
  table = _TABLE.value or os.path.join("runs/real_labels",
                                       term_table.table_name(corpus, "crepe"))
  rows = term_table.cached_table(corpus, table, mast_dir=_MAST_DIR.value,
                                 ssvd_dir=_SSVD_DIR.value, cache_dir=_CACHE_DIR.value)
  learned = read_learned(_LEARNED.value) if _LEARNED.value else None
  results, final = run(rows, corpus, n_folds=_FOLDS.value, seed=_SEED.value,
                       learned=learned, n_boot=_BOOT.value,
                       ablate_groups=_ABLATE.value)
  out = _OUTPUT_DIR.value
  os.makedirs(out, exist_ok=True)
  text = markdown(results)
  with atomic.atomic_path(os.path.join(out, "ablation.md")) as tmp, open(tmp, "w") as f:
    f.write(text)
  with atomic.atomic_path(os.path.join(out, "ablation.json")) as tmp, open(tmp, "w") as f:
    json.dump(results, f, indent=1, default=str)
  final.save(os.path.join(out, "fusion.pkl"))
  print(text)
  print(f"final fusion: {results['final_fusion']['family']} "
        f"{results['final_fusion']['params']}; saved {os.path.join(out, 'fusion.pkl')} "
        f"({os.path.getsize(os.path.join(out, 'fusion.pkl'))} bytes)")


if __name__ == "__main__":
  app.run(main)
