r"""Rebuilds the default scorer shipped in asa_jax/assess/default_scorer/ (issue 19, 2).

  python -m asa_jax.experiments.default_scorer --mast_dir=../shared/data/mast \
      --ssvd_dir=../shared/data/ssvd --out=asa_jax/assess/default_scorer \
      --contour=asa_jax/assess/default_scorer/contour --fusion_recipe=R1

--contour names a contour comparator folder (`asa_jax.experiments.export_contour`
writes it from trained contour towers; README "The default scorer" has the whole
recipe); without it the fusion has the measured terms only.

Training data: REAL human labels only, both corpora pooled:
  * MAST (Bozkurt et al. 2017): 996 graded performances of 39 melodies; target =
    mean of the 5 jury grades 1-4, mapped to 0-100 ((grade - 1) / 3 * 100);
    pass/fail = the jury's label. Terms from its f0 curves (2.9 ms, put on the 10 ms
    grid).
  * SSVD v1: 80 performances of 19 melodies; target = the note-label-derived score
    0-100 (pass = >= 80). Terms from CREPE-tiny 10 ms contours of the audio (what
    `Assessor.default()` reads; with --tracker, that tracker's: the manifest
    says which).
Rows come from `asa_jax.baselines.term_table` (cached under --tables_dir as
`term_table.table_name`; built from the data when missing: MAST about 9 min, SSVD about
20 min of CREPE and Praat here).

Features: every term of `baselines.pair_terms.TERMS` (dtw_melody, the pitch-histogram
measures, the measured terms) that no corpus could be told by. So (1) a value in at
least MIN_PRESENT of EACH corpus's rows: the voice-quality terms and the dynamic
range need audio and energy, which MAST (92 % of the rows) lacks, so they are left
out; and (2) the corpora's interquartile ranges of the term overlap: a term whose
middle halves are disjoint measures the pitch tracker more than the singing (MAST's
f0 curves against CREPE-tiny on audio: within-note jitter 5.5-9.7 against 1.4-2.0
cents), and a monotone fusion would hand every recording the product scores (CREPE
on audio) the bonus of the best MAST singers. A term missing or shifted on one
corpus tells the trees which corpus a row is from, and the two corpora's score
scales differ. Each enters as its rating (`pair_terms.rating`, higher = better)
with its monotone direction.

The learned score (with --contour): the comparator's pair score of every row
(`assess.contour_comparator`; MAST from its f0 curves, SSVD from CREPE-tiny on the
audio, as the product reads it), the feature `contour_score` (direction +1). The
rows of the towers' model-selection melodies (their config's
contour.selection_melodies, MAST) are dropped: the towers were chosen on them. The
scores are cached under --tables_dir, keyed by the comparator files' SHA-256.

Model: `asa_jax.evaluation.fusion.fit_fusion` with the candidates and criterion of
--fusion_recipe (`evaluation.fusion_recipes.RECIPES`: R0 monotone linear or
boosted on the pooled target; R1 the same on each corpus's z-scored target;
chosen by an inner leave-melodies-out CV; centred isotonic calibration to 0-100,
--calibration) on all
rows, melodies as groups (corpus-prefixed). Before it, a leave-melodies-out CV of the same recipe
(--folds, --seed) gives the figures written into the manifest: Pearson's r and the
pass/fail AUC of the out-of-fold scores per corpus and pooled, 95% bootstrap CIs;
and each corpus scored by a fusion fitted on the other corpus only (transfer).

Writes OUT/fusion.pkl and OUT/manifest.json (atomic): the training data and its
licences, the features and directions, the library versions (the pickle is tied to
scikit-learn's), the contours the features were read from, the CV figures, the raw
range and this command.
"""

from __future__ import annotations

import json
import os
import platform

from absl import app
from absl import flags
import numpy as np

from asa_jax import atomic
from asa_jax.assess import fused
from asa_jax.baselines import cache as cache_lib
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import pair_terms
from asa_jax.baselines import term_table
from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import fusion_recipes
from asa_jax.evaluation import melody_cv
from asa_jax.evaluation import pooled_terms

_MAST_DIR = flags.DEFINE_string("mast_dir", "../shared/data/mast", "MAST folder.")
_SSVD_DIR = flags.DEFINE_string("ssvd_dir", "../shared/data/ssvd", "SSVD v1 folder.")
_OUT = flags.DEFINE_string("out", fused.DEFAULT_DIR, "Output folder.")
_TABLES = flags.DEFINE_string("tables_dir", "runs/real_labels",
                              "Term-table cache (term_table.table_name).")
_CACHE = flags.DEFINE_string("cache_dir", "runs/contours_cache",
                             "CREPE contour cache of the SSVD audio.")
_CORPORA = flags.DEFINE_list("corpora", ["mast", "ssvd"], "Corpora to pool.")
_FOLDS = flags.DEFINE_integer("folds", 5, "Leave-melodies-out CV folds.")
_SEED = flags.DEFINE_integer("seed", 0, "Fold and inner-fold seed.")
_BOOT = flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples of the CIs.")
CONTOUR_FOLDER = "contour"
_CONTOUR = flags.DEFINE_string("contour", "", "A contour comparator folder whose "
                               "pair score joins the features ('' = terms only).")
_RECIPE = flags.DEFINE_enum("fusion_recipe", "R0", ["R0", "R1"],
                            "Candidates of evaluation.fusion_recipes.RECIPES.")
_CALIBRATION = flags.DEFINE_enum(
    "calibration", fusion_lib.DEFAULT_CALIBRATION, list(fusion_lib.CALIBRATIONS),
    "The fusion's 0-100 map (`evaluation.fusion` module doc).")
_TRACKER = flags.DEFINE_enum("tracker", "crepe", list(contours_lib.TRACKERS),
                             "f0 tracker of the SSVD audio's contours (and so of "
                             "the product's: the manifest names it).")

# The pooled rows and the feature rule live in evaluation.pooled_terms (flag-free,
# shared with experiments.fusion_levers); the names stay reachable from here.
MIN_PRESENT = pooled_terms.MIN_PRESENT
TARGET_RANGE = pooled_terms.TARGET_RANGE
pooled_rows = pooled_terms.pooled_rows
choose_features = pooled_terms.choose_features
matrix = pooled_terms.matrix
DATA = {
    "mast": {"name": "MAST melody set (Bozkurt et al. 2017)",
             "labels": "mean of 5 jury grades (1-4) -> 0-100; jury pass/fail",
             "licence": "CC BY-NC-SA 4.0 (non-commercial, share-alike)"},
    "ssvd": {"name": "SSVD v1",
             "labels": "note-label-derived score 0-100",
             "licence": "no licence file: research use"},
}


def fit_kwargs(recipe: str, rows,
               calibration: str = fusion_lib.DEFAULT_CALIBRATION) -> dict:
  """`fusion.fit_fusion` arguments of a fusion recipe (R0 / R1) for these rows, with
  the 0-100 map `calibration` (`fusion.CALIBRATIONS`)."""
  _, candidates, criterion = fusion_recipes.RECIPES[recipe][:3]
  return {"candidates": candidates, "criterion": criterion,
          "calibration": calibration,
          "passed": np.array([r["passed"] for r in rows]) > 0.5,
          "strata": np.array([r["corpus"] for r in rows])}


def cross_validate(rows, features, *, n_folds, seed, n_boot, recipe="R0",
                   calibration=fusion_lib.DEFAULT_CALIBRATION) -> dict:
  """Leave-melodies-out CV of the recipe: {corpus | 'pooled': agreement}."""
  x = matrix(rows, features)
  y = np.array([r["target"] for r in rows])
  melodies = np.array([r["melody"] for r in rows])
  passed = np.array([r["passed"] for r in rows]) > 0.5
  corpus = np.array([r["corpus"] for r in rows])
  folds = melody_cv.melody_folds(melodies, n_folds, seed)
  cal, _, chosen = melody_cv.out_of_fold(
      x, y, melodies, folds, features, [pair_terms.direction(n) for n in features],
      target_range=(0.0, 100.0), seed=seed,
      **fit_kwargs(recipe, rows, calibration))
  out = {"folds": n_folds, "seed": seed, "chosen": chosen}
  for name, keep in [("pooled", np.ones(len(y), bool))] + [
      (c, corpus == c) for c in sorted(set(corpus))]:
    res = melody_cv.agreement(cal[keep], y[keep], passed[keep], n_resamples=n_boot,
                              seed=seed)
    out[name] = {k: res[k] for k in ("n", "pearson", "pearson_ci95", "auc",
                                     "auc_ci95")}
  return out


def cross_corpus(rows, features, *, seed, n_boot, recipe="R0",
                 calibration=fusion_lib.DEFAULT_CALIBRATION) -> dict:
  """{corpus: agreement of a fusion fitted on the OTHER corpora only}: how the
  recipe transfers to a corpus it never saw (other recordings, other labels)."""
  x = matrix(rows, features)
  y = np.array([r["target"] for r in rows])
  melodies = np.array([r["melody"] for r in rows])
  passed = np.array([r["passed"] for r in rows]) > 0.5
  corpus = np.array([r["corpus"] for r in rows])
  kwargs = fit_kwargs(recipe, rows, calibration)
  out = {}
  for c in sorted(set(corpus)):
    test = corpus == c
    if test.all():
      continue
    fitted = fusion_lib.fit_fusion(
        x[~test], y[~test], melodies[~test], features,
        [pair_terms.direction(n) for n in features], target_range=(0.0, 100.0),
        seed=seed, **{k: v[~test] if isinstance(v, np.ndarray) else v
                      for k, v in kwargs.items()})
    res = melody_cv.agreement(fitted.predict(x[test]), y[test], passed[test],
                              n_resamples=n_boot, seed=seed)
    out[c] = {k: res[k] for k in ("n", "pearson", "pearson_ci95", "auc", "auc_ci95")}
  return out


def learned_scores(directory: str, *, mast_dir: str, ssvd_dir: str, cache_dir: str,
                   tables_dir: str, tracker: str = "crepe", log=print) -> str:
  """A folder of the comparator's scores as `evaluation.contour_scores` writes them
  (mast_scores.csv, ssvd_crepe_scores.csv: SSVD from `tracker` on the audio),
  computed once per comparator, tracker and contours version (TABLES_DIR/
  contour_<fingerprint><cache.derived_suffix>/; atomic writes); returns the folder.

  Raises:
    ValueError: --mast_dir and --ssvd_dir are not <data>/mast and <data>/ssvd
      (the contour corpora read both below one data folder).
  """
  from asa_jax.assess import contour_comparator  # pylint: disable=g-import-not-at-top
  from asa_jax.evaluation import contour_scores  # pylint: disable=g-import-not-at-top
  key = contour_comparator.fingerprint(directory)
  out = os.path.join(tables_dir, f"contour_{key}{cache_lib.derived_suffix(tracker)}")
  files = {"mast": os.path.join(out, "mast_scores.csv"),
           "ssvd": os.path.join(out, "ssvd_crepe_scores.csv")}
  if all(os.path.isfile(f) for f in files.values()):
    return out
  data = os.path.dirname(os.path.abspath(mast_dir))
  if (os.path.basename(os.path.abspath(mast_dir)) != "mast"
      or os.path.abspath(ssvd_dir) != os.path.join(data, "ssvd")):
    raise ValueError(f"--mast_dir={mast_dir} and --ssvd_dir={ssvd_dir} must be "
                     "<data>/mast and <data>/ssvd for the contour scores")
  comparator = contour_comparator.ContourComparator.load(directory)
  config = comparator.config.copy_and_resolve_references()
  config.contour.data_dir = data
  log(f"scoring MAST and SSVD with the contour comparator {directory} "
      f"({comparator.n_towers} towers) into {out}")
  make = {  # each file on its own: one left by an interrupted run is kept.
      "mast": lambda: (["performance_id", "melody", "selection", "score",
                        "mean_grade", "passed"],
                       contour_scores.mast_scores(comparator, config, comparator.window)),
      "ssvd": lambda: (["performance_id", "melody", "score", "label_score"],
                       contour_scores.ssvd_crepe_scores(comparator, config,
                                                        comparator.window, cache_dir,
                                                        tracker)),
  }
  os.makedirs(out, exist_ok=True)
  for corpus, build_rows in make.items():
    if not os.path.isfile(files[corpus]):
      header, rows = build_rows()
      contour_scores.write_csv(files[corpus], header, rows)
  return out


# The corpus whose f0 source is the product's (CREPE-tiny on sung audio): its
# statistics standardise the comparator's score at scoring time.
PRODUCT_SOURCE = "ssvd"


def build(tables: dict[str, list[dict]], *, n_folds: int, seed: int, n_boot: int,
          recipe: str, fusion_recipe: str = "R0", scores_dir: str = "",
          contour: dict | None = None, tracker: str = "crepe",
          calibration: str = fusion_lib.DEFAULT_CALIBRATION, log=print
          ) -> tuple[fusion_lib.Fusion, dict]:
  """(the fitted Fusion, its manifest) from term-table rows per corpus.

  scores_dir: a folder of learned scores (`learned_scores`) whose score joins the
  features as `pooled_terms.LEARNED_COLUMN` (the selection melodies' rows
  dropped); contour: the manifest's "contour" entry then (folder, towers, ...).
  """
  import sklearn  # pylint: disable=g-import-not-at-top
  rows = pooled_rows(tables)
  features = choose_features(rows, log=log)
  units = {n: pair_terms.UNITS.get(n, "") for n in features}
  if scores_dir:
    rows = pooled_terms.with_learned_scores(rows, scores_dir)
    rows, standardise = pooled_terms.standardise_learned(rows)
    contour = {**(contour or {}), "standardise": standardise,
               "product_source": PRODUCT_SOURCE}
    features = features + [pooled_terms.LEARNED_COLUMN]
    units[pooled_terms.LEARNED_COLUMN] = fused.LEARNED_UNIT
  directions = [pair_terms.direction(n) for n in features]
  counts = ", ".join(f"{c} {sum(r['corpus'] == c for r in rows)}" for c in tables)
  log(f"{len(rows)} rows ({counts}); "
      f"{len(features)} features: {features}; fusion recipe {fusion_recipe}")
  cv = cross_validate(rows, features, n_folds=n_folds, seed=seed, n_boot=n_boot,
                      recipe=fusion_recipe, calibration=calibration)
  for k in ["pooled"] + sorted(tables):
    log(f"CV {k}: r={cv[k]['pearson']:.3f} {cv[k]['pearson_ci95']} "
        f"AUC={cv[k]['auc']:.3f} {cv[k]['auc_ci95']} n={cv[k]['n']}")
  cv["cross_corpus"] = cross_corpus(rows, features, seed=seed, n_boot=n_boot,
                                    recipe=fusion_recipe, calibration=calibration)
  for k, v in cv["cross_corpus"].items():
    log(f"fitted without {k}, tested on it: r={v['pearson']:.3f} {v['pearson_ci95']} "
        f"AUC={v['auc']:.3f} {v['auc_ci95']} n={v['n']}")
  x = matrix(rows, features)
  y = np.array([r["target"] for r in rows])
  melodies = np.array([r["melody"] for r in rows])
  fusion = fusion_lib.fit_fusion(x, y, melodies, features, directions,
                                 target_range=(0.0, 100.0), seed=seed,
                                 **fit_kwargs(fusion_recipe, rows, calibration))
  raw = fusion.predict_raw(x)
  iso_x = fusion.calibrator.X_thresholds_
  manifest = {
      "name": ("default (contour comparator + measured-terms fusion)" if contour
               else "default (measured-terms fusion)"),
      "training_data": " + ".join(
          f"{DATA[c]['name']} ({sum(r['corpus'] == c for r in rows)} rows)"
          for c in tables),
      "datasets": {c: {**DATA[c], "rows": sum(r["corpus"] == c for r in rows),
                       "melodies": len({r["melody"] for r in rows
                                        if r["corpus"] == c})}
                   for c in tables},
      "rows": len(rows), "target": "0-100 (each corpus's label mapped linearly)",
      "features": features, "directions": directions, "units": units,
      "fusion_recipe": fusion_recipe,
      **({"contour": contour} if contour else {}),
      "family": fusion.family, "params": fusion.params, "calibration": calibration,
      "selection": fusion.selection,
      "contours": {"source": "asa_jax.baselines.contours.extract_contours ("
                             + {"crepe": "CREPE port, features/crepe.py",
                                "praat": "Praat ac, features/praat_pitch.py",
                                "student": "CREPE-tiny student, "
                                           "features/pitch_student.py"}[tracker] + ")",
                   "capacity": "tiny",
                   "hop_length": contours_lib.HOP_LENGTH,
                   "hop_s": contours_lib.FRAME_SECONDS,
                   **({} if tracker == "crepe" else {"tracker": tracker})},
      "raw_range": [float(min(raw.min(), iso_x.min())),
                    float(max(raw.max(), iso_x.max()))],
      "cv": cv,
      "versions": {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
                   "python": platform.python_version(),
                   "fusion_format": fusion_lib.FORMAT_VERSION,
                   "term_table": term_table.TABLE_VERSION},
      "recipe": recipe,
  }
  return fusion, manifest


def main(argv):
  del argv
  tables = {}
  for corpus in _CORPORA.value:
    tables[corpus] = term_table.cached_table(
        corpus, os.path.join(_TABLES.value, term_table.table_name(corpus, _TRACKER.value)),
        mast_dir=_MAST_DIR.value, ssvd_dir=_SSVD_DIR.value, cache_dir=_CACHE.value,
        tracker=_TRACKER.value)
  out = _OUT.value
  recipe = ("python -m asa_jax.experiments.default_scorer "
            f"--mast_dir={_MAST_DIR.value} --ssvd_dir={_SSVD_DIR.value} "
            "--out=asa_jax/assess/default_scorer"
            + ("" if _CORPORA.value == ["mast", "ssvd"] else
               f" --corpora={','.join(_CORPORA.value)}")
            + (f" --contour=asa_jax/assess/default_scorer/{CONTOUR_FOLDER}"
               if _CONTOUR.value else "")
            + ("" if _RECIPE.value == "R0" else f" --fusion_recipe={_RECIPE.value}")
            + ("" if _TRACKER.value == "crepe" else f" --tracker={_TRACKER.value}")
            + ("" if _CALIBRATION.value == _CALIBRATION.default
               else f" --calibration={_CALIBRATION.value}"))
  scores_dir, contour = "", None
  if _CONTOUR.value:
    folder = os.path.abspath(_CONTOUR.value)
    if os.path.dirname(folder) != os.path.abspath(out):
      raise app.UsageError(f"--contour={_CONTOUR.value} must be a folder inside "
                           f"--out={out} (the package ships them together)")
    from asa_jax.assess import contour_comparator  # pylint: disable=g-import-not-at-top
    scores_dir = learned_scores(folder, mast_dir=_MAST_DIR.value,
                                ssvd_dir=_SSVD_DIR.value, cache_dir=_CACHE.value,
                                tables_dir=_TABLES.value, tracker=_TRACKER.value)
    comparator = contour_comparator.ContourComparator.load(folder)
    contour = {"folder": os.path.basename(folder), "towers": comparator.n_towers,
               "system": str(comparator.config.system),
               "window_frames": comparator.window,
               "fingerprint": contour_comparator.fingerprint(folder),
               "selection_melodies_dropped":
                   list(comparator.config.contour.selection_melodies),
               "recipe": "README, 'The default scorer': train.py "
                         "--config=configs/contour_rori.py:small over seeds 0-2, "
                         "then python -m asa_jax.experiments.export_contour"}
  fusion, manifest = build(tables, n_folds=_FOLDS.value, seed=_SEED.value,
                           n_boot=_BOOT.value, recipe=recipe,
                           fusion_recipe=_RECIPE.value, scores_dir=scores_dir,
                           contour=contour, tracker=_TRACKER.value,
                           calibration=_CALIBRATION.value)
  os.makedirs(out, exist_ok=True)
  fusion.save(os.path.join(out, fused.FUSION_FILE))
  atomic.write_text(os.path.join(out, fused.MANIFEST_FILE),
                    json.dumps(manifest, indent=1, default=float) + "\n")
  size = sum(os.path.getsize(os.path.join(dirpath, f))
             for dirpath, _, names in os.walk(out) for f in names)
  print(f"wrote {out}/{fused.FUSION_FILE} and {fused.MANIFEST_FILE}: {fusion.family} "
        f"{fusion.params}, {size} bytes")


if __name__ == "__main__":
  app.run(main)
