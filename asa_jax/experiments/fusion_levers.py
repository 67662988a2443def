r"""The fusion levers of issue 18 and their diagnostics (BUILD_NOTES "Fusion levers").

  python -m asa_jax.experiments.fusion_levers --output_dir=runs/fusion_levers \
      [--seeds=0,1,2] [--recipes=R0,R1,...] [--folds=5] [--bootstrap=1000]
  python -m asa_jax.experiments.fusion_levers --diagnostics \
      [--learned_scores=A.csv,B.csv]

Reads the cached term tables (`--tables_dir`/`term_table.table_name`, built by
`baselines.term_table` from the data when missing), pools them
(`evaluation.pooled_terms`, the shipped default scorer's rows and 17 features) and
runs each recipe of `evaluation.fusion_recipes.RECIPES` (protocol there), writing
OUTPUT_DIR/levers.json and levers.md (atomic; printed too); or, with
--diagnostics, prints `evaluation.fusion_diagnostics`' figures.
"""

from __future__ import annotations

import json
import os

from absl import app
from absl import flags
import threadpoolctl

from asa_jax import atomic
from asa_jax.baselines import term_table
from asa_jax.evaluation import fusion_diagnostics
from asa_jax.evaluation import fusion_recipes
from asa_jax.evaluation import pooled_terms

_OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs/fusion_levers", "Output folder.")
_TABLES = flags.DEFINE_string("tables_dir", "runs/real_labels",
                              "Term-table cache (term_table.table_name).")
_MAST_DIR = flags.DEFINE_string("mast_dir", "../shared/data/mast", "MAST folder.")
_SSVD_DIR = flags.DEFINE_string("ssvd_dir", "../shared/data/ssvd", "SSVD v1 folder.")
_CACHE = flags.DEFINE_string("cache_dir", "runs/contours_cache",
                             "CREPE contour cache of the SSVD audio.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "CV seeds.")
_FOLDS = flags.DEFINE_integer("folds", 5, "Leave-melodies-out folds per corpus.")
_BOOT = flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the CIs.")
_RECIPES = flags.DEFINE_list("recipes", None, "Recipes to run (default: all).")
_DIAGNOSTICS = flags.DEFINE_bool("diagnostics", False,
                                 "Print the diagnostics instead of the recipes.")
_LEARNED = flags.DEFINE_list("learned_scores", [],
                             "With --diagnostics: learned-score CSVs (MAST).")
_CONTOUR = flags.DEFINE_string(
    "contour_scores", "", "A contour_scores output folder: its score joins the "
    "features as `contour_score` (selection melodies' rows dropped) and every recipe "
    "runs without (NAME) and with it (NAME+contour) on the same rows.")

_STANDARDISE = flags.DEFINE_bool(
    "standardise_learned", False, "With --contour_scores: the score z-scored within "
    "each corpus (`pooled_terms.standardise_learned`, as the shipped default).")


def main(argv):
  del argv
  tables = {c: term_table.cached_table(
      c, os.path.join(_TABLES.value, term_table.table_name(c, "crepe")),
      mast_dir=_MAST_DIR.value,
      ssvd_dir=_SSVD_DIR.value, cache_dir=_CACHE.value) for c in ("mast", "ssvd")}
  rows = pooled_terms.pooled_rows(tables)
  features = pooled_terms.choose_features(rows)
  if _DIAGNOSTICS.value:
    # One OpenMP thread: the trees are small (see fusion.fit_fusion).
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
      fusion_diagnostics.monotone_costs(rows, features)
      fusion_diagnostics.deciles(tables)
      fusion_diagnostics.ssvd_bounds(rows, features)
      if _LEARNED.value:
        fusion_diagnostics.learned_residuals(rows, features, _LEARNED.value)
    return
  seeds = [int(s) for s in _SEEDS.value]
  variants = [("", features)]
  if _CONTOUR.value:
    rows = pooled_terms.with_learned_scores(rows, _CONTOUR.value)
    if _STANDARDISE.value:
      rows, _ = pooled_terms.standardise_learned(rows)
    variants.append(("+contour", features + [pooled_terms.LEARNED_COLUMN]))
  results = {}
  for name, (suffix, feats) in ((n, v) for n in _RECIPES.value or
                                list(fusion_recipes.RECIPES) for v in variants):
    res = fusion_recipes.run_recipe(rows, feats, name, seeds=seeds,
                                   n_folds=_FOLDS.value, n_boot=_BOOT.value)
    name = name + suffix
    results[name] = res
    print(f"{name} ({res['description']}): MAST r {res['mast']['summary']['pearson']}"
          f" AUC {res['mast']['summary']['auc']}; SSVD r "
          f"{res['ssvd']['summary']['pearson']}; merit {res['merit']:.4f}",
          flush=True)
  md = fusion_recipes.table(results)
  print(md)
  os.makedirs(_OUTPUT_DIR.value, exist_ok=True)
  atomic.write_text(os.path.join(_OUTPUT_DIR.value, "levers.md"), md + "\n")
  atomic.write_text(os.path.join(_OUTPUT_DIR.value, "levers.json"),
                    json.dumps({"seeds": seeds, "folds": _FOLDS.value,
                                "features": features, "results": results},
                               indent=1, default=float) + "\n")


if __name__ == "__main__":
  app.run(main)
