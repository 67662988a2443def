r"""Scores of a trained contour system (issue 18, section 4) and its calibration.

  python -m asa_jax.evaluation.contour_scores --workdir=W \
      [--config=configs/contour_rori.py:small] [--out_dir=W/contour_eval] \
      [--pool=W/contour_pool.npz] [--calibrate_only]

(--config defaults to W/config.json.) Writes W/calibration.json (issue 19, the
contour workdir in `Assessor.from_workdir`): the raw pair score -> 0-100 map
(`evaluation.calibration.fit`, CALIBRATION_METHOD) fitted on the MAST selection
melodies' rows (config.contour.selection_melodies: already used for model
selection, left out of every reported figure) with their mean jury grade 1-4
mapped to 0-100; not written when under MIN_CALIBRATION_ROWS of them are graded.
--calibrate_only refits it from OUT_DIR/mast_scores.csv without scoring again.
Also writes into out_dir:
  mast_scores.csv   performance_id, melody, selection, score: every MASTmelody
                    performance with a reference (pairing of asa_jax.baselines.mast:
                    the same-id reference, else the median score over up to 5 of the
                    melody's references); `selection` = 1 for the model-selection
                    melodies (config.contour.selection_melodies);
  ssvd_crepe_scores.csv  (with --ssvd_cache_dir) the same from CREPE tiny on the
                    audio (what the product sees);
  ssvd_scores.csv   performance_id, melody, score: every SSVD v1 performance against
                    its melody's reference recording (input_pipeline.corpora.ssvd
                    .build_manifest), both contours RENDERED FROM THE NOTE LABELS of
                    ../shared/data/ssvd_v2/labels/test (onset, offset, MIDI);
  contour_eval.json Pearson's r (95% CI, Fisher z) on MAST (mean jury grade, the
                    selection melodies left out; pass/fail ROC AUC) and on SSVD v1
                    (the note-label score), and the degradation ranking: mean
                    Spearman per source window of the score against the exact label
                    over K degraded versions of each held-out MIR-1K window (pool
                    split 'test': singers never trained on or selected with); for an
                    aligned system also with the DTW alignment of real pairs
                    (degradation_ranking_dtw); "calibration": the map's
                    method, rows and metrics on its selection rows and on the
                    held-out MAST rows (null when not fitted).
"""

from __future__ import annotations

import csv
import io
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import scipy.stats
from absl import app, flags, logging

from asa_jax import atomic
from asa_jax import config_specs
from asa_jax import systems
from asa_jax.evaluation import calibration as calibration_lib
from asa_jax.evaluation import pooled_terms
from input_pipeline import contour_degrade as cd
from input_pipeline import contour_pool

RANKING_VERSIONS = 8
RANKING_SEED = 1234
# The calibration (BUILD_NOTES.md, "A contour workdir in the Assessor"): linear,
# the project's default (keeps Pearson's r of the raw scores where nothing is
# clipped), on at least this many graded selection rows.
CALIBRATION_METHOD = "linear"
MIN_CALIBRATION_ROWS = 10
MAST_COLUMNS = ["performance_id", "melody", "selection", "score", "mean_grade",
                "passed"]


def _batched(fn, *arrays, size: int = 256) -> np.ndarray:
  n = len(arrays[0])
  return np.concatenate([np.asarray(fn(*(a[i:i + size] for a in arrays)))
                         for i in range(0, n, size)]) if n else np.zeros(0)


def pair_scorer(system, model, variables):
  """Window arrays of `system.score_inputs` (numpy, (K, T) each) -> (K,) scores
  (jitted); `scorer.system` is the system (for its `pair_inputs`)."""
  fn = jax.jit(lambda *a: system.score_inputs(model, variables, *a))
  scorer = lambda *a: _batched(fn, *a)
  scorer.system = system
  return scorer


def score_pair(scorer, performance: np.ndarray, references: list, window: int
               ) -> float:
  """Median over references of the mean window score (nan if unusable)."""
  out = []
  for ref in references:
    try:
      arrays = scorer.system.pair_inputs(performance, ref, window)
    except ValueError:
      continue
    out.append(float(np.mean(scorer(*arrays))))
  return float(np.median(out)) if out else math.nan


def pearson_ci(x, y) -> dict:
  """Pearson's r with its 95% CI (Fisher z), n; nan where fewer than 4 rows."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  ok = np.isfinite(x) & np.isfinite(y)
  x, y = x[ok], y[ok]
  if len(x) < 4 or np.ptp(x) == 0:
    return {"r": math.nan, "ci95": [math.nan, math.nan], "n": int(len(x))}
  r = float(scipy.stats.pearsonr(x, y)[0])
  z, se = math.atanh(max(min(r, 0.999999), -0.999999)), 1.0 / math.sqrt(len(x) - 3)
  return {"r": r, "ci95": [math.tanh(z - 1.96 * se), math.tanh(z + 1.96 * se)],
          "n": int(len(x))}


def degradation_ranking(system, model, variables, pool: contour_pool.Pool,
                        versions: int = RANKING_VERSIONS, seed: int = RANKING_SEED,
                        *, dtw: bool = False) -> dict:
  """Mean Spearman per source window (pool split 'test') of the system's score of
  each degraded version against the clean window vs its exact label.

  An aligned system (contour.aligned) sees the degradation through its exact time
  map, as in training; with `dtw` each degraded window is instead aligned to its
  clean window on the host as a real pair is (`system.pair_inputs`), so the figure
  includes what the DTW alignment loses.
  """
  idx = pool.indices("test")
  c = cd.Contour(*(jnp.asarray(getattr(pool, k)[idx])
                   for k in ("cents", "voiced", "note", "onset")))
  # The contours are arguments, not closed-over constants (XLA would fold them).
  deg = jax.jit(lambda key, c, ids: cd.degrade_batch(
      key, c, active_prob=system.active_prob, row_ids=ids,
      entry_errors=not system.aligned,
      max_rubato_seconds=system.max_rubato_seconds)[1])
  scorer = pair_scorer(system, model, variables)
  scores, labels = [], []
  for v in range(versions):
    r = deg(jax.random.fold_in(jax.random.PRNGKey(seed), v), c, jnp.asarray(idx))
    if dtw:
      scores.append(np.array([score_pair(scorer, np.asarray(p), [q], system.window_frames)
                              for p, q in zip(r.cents, pool.cents[idx])]))
    else:
      arrays = system.degraded_inputs(c.cents, r)
      scores.append(scorer(*(np.asarray(a) for a in arrays)))
    labels.append(np.asarray(r.score))
  scores, labels = np.stack(scores, 1), np.stack(labels, 1)
  rho = [scipy.stats.spearmanr(s, l)[0] for s, l in zip(scores, labels)
         if np.ptp(l) > 0 and np.ptp(s) > 0 and np.all(np.isfinite(s))]
  return {"mean_spearman_per_source": float(np.mean(rho)), "sources": len(rho),
          "versions": versions, "pooled_spearman": float(
              scipy.stats.spearmanr(scores.ravel(), labels.ravel())[0])}


def write_csv(path: str, header: list[str], rows: list[list]) -> None:
  """Writes a scores CSV (header, rows) atomically."""
  buf = io.StringIO()
  w = csv.writer(buf)
  w.writerow(header)
  w.writerows(rows)
  atomic.write_text(path, buf.getvalue())


def mast_scores(scorer, config, window: int) -> list[list]:
  """[[performance_id, melody, selection, score, mean grade, passed]] of MAST."""
  sel = set(config.contour.selection_melodies)
  rows = []
  for p in contour_pool.mast_pairs(os.path.join(config.contour.data_dir, "mast")):
    rows.append([p.name, p.melody, int(p.melody in sel),
                 score_pair(scorer, p.performance, p.references, window), p.grade,
                 int(p.passed)])
  return rows


def mast_grade_to_scale(grade: float) -> float:
  """A MAST mean jury grade (1-4) on the 0-100 scale (`pooled_terms.TARGET_RANGE`)."""
  lo, hi = pooled_terms.TARGET_RANGE["mast"]
  return 100.0 * (grade - lo) / (hi - lo)


def _graded(rows: list[list], selection: bool) -> tuple[list[float], list[float]]:
  """(raw, grade on 0-100) of the mast_scores rows with a finite score and grade."""
  keep = [r for r in rows if bool(int(r[2])) == selection
          and math.isfinite(float(r[3])) and math.isfinite(float(r[4]))]
  return ([float(r[3]) for r in keep],
          [mast_grade_to_scale(float(r[4])) for r in keep])


def fit_calibration(mast_rows: list[list], *, source: str,
                    method: str = CALIBRATION_METHOD
                    ) -> calibration_lib.Calibration | None:
  """The raw score -> 0-100 map fitted on the selection melodies' graded rows.

  Args:
    mast_rows: `mast_scores` rows (performance_id, melody, selection, score,
      mean grade, passed).
    source: recorded in the calibration.

  Returns:
    The Calibration (its metrics on those rows), or None when fewer than
    MIN_CALIBRATION_ROWS selection rows have a score and a grade: no labels, no
    calibration (no min-max fallback).
  """
  raw, human = _graded(mast_rows, selection=True)
  if len(raw) < MIN_CALIBRATION_ROWS:
    return None
  return calibration_lib.fit(raw, human, method=method, source=source)


def write_calibration(workdir: str, mast_rows: list[list]) -> dict | None:
  """Fits `fit_calibration` and writes WORKDIR/calibration.json atomically; returns
  its summary (method, n, metrics on the selection rows and on the held-out rows),
  or None when there are too few labels (logged; nothing is written)."""
  cal = fit_calibration(mast_rows, source=(
      f"MAST selection melodies of {os.path.abspath(workdir)} (contour_scores; "
      "mean jury grade 1-4 mapped to 0-100)"))
  if cal is None:
    logging.warning("under %d graded MAST selection rows: %s not written",
                    MIN_CALIBRATION_ROWS, calibration_lib.FILENAME)
    return None
  path = os.path.join(workdir, calibration_lib.FILENAME)
  calibration_lib.save(cal, path)
  logging.info("calibration (%s, %d selection rows) -> %s", cal.method, cal.n, path)
  return {"path": path, "method": cal.method, "n": cal.n,
          "selection": cal.fit_metrics,
          "heldout": calibration_lib.metrics(cal, *_graded(mast_rows, selection=False))}


def read_mast_scores(path: str) -> list[list]:
  """The rows of a mast_scores.csv (as `mast_scores` returns them).

  Raises:
    FileNotFoundError: no such file.
    ValueError: not a mast_scores.csv (names it).
  """
  with open(path, encoding="utf-8", newline="") as f:
    reader = csv.reader(f)
    if next(reader, None) != MAST_COLUMNS:
      raise ValueError(f"{path}: not a mast_scores.csv (header {MAST_COLUMNS})")
    return [[r[0], r[1], int(r[2]), float(r[3]), float(r[4]), int(r[5])]
            for r in reader]


def ssvd_scores(scorer, config, window: int) -> list[list]:
  """[[performance_id, melody, score, note-label score]] of SSVD v1, contours
  rendered from ../shared/data/ssvd_v2/labels/test/<id>.txt."""
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  data = config.contour.data_dir
  result = ssvd.build_manifest(os.path.join(data, "ssvd"))
  label_dir = os.path.join(data, "ssvd_v2", "labels", "test")

  def contour(rid):
    path = os.path.join(label_dir, f"{rid}.txt")
    if not os.path.isfile(path):
      return None
    return contour_pool.render_notes(np.loadtxt(path, ndmin=2))

  rows = []
  for m in result["melodies"]:
    ref = contour(m["reference"])
    if ref is None:
      continue
    for rid in m["performances"]:
      perf = contour(rid)
      if perf is None:
        continue
      rows.append([rid, m["melody"], score_pair(scorer, perf, [ref], window),
                   result["scores"][rid].score])
  return rows


def ssvd_crepe_scores(scorer, config, window: int, cache_dir: str,
                      tracker: str = "crepe") -> list[list]:
  """[[performance_id, melody, score, note-label score]] of SSVD v1 with both
  contours from CREPE tiny (or `tracker`, baselines.contours.TRACKERS) on the AUDIO
  (`baselines.cache.cached_contours`, 10 ms; the measured terms' source), as the
  product sees a recording."""
  from asa_jax.baselines import cache as cache_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  result = ssvd.build_manifest(os.path.join(config.contour.data_dir, "ssvd"))
  melody_of = {m["song_id"]: m["melody"] for m in result["melodies"]}
  cents = lambda path: contour_pool.hz_to_cents(
      cache_lib.cached_contours(path, cache_dir, tracker=tracker)[0].f0_hz)
  return [[r["performance_id"], melody_of[r["song_id"]],
           score_pair(scorer, cents(r["performance_audio"]),
                      [cents(r["reference_audio"])], window), float(r["score"])]
          for r in result["rows"]]


def evaluate(config, workdir: str, out_dir: str, pool_path: str = "",
             ssvd_cache_dir: str = "") -> dict:
  """Writes the CSVs and contour_eval.json (module docstring); returns the summary."""
  from asa_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
  system = systems.get(config)
  model, variables = checkpoint.restore_for_inference(config, workdir)
  window = int(config.contour.window_frames)
  scorer = pair_scorer(system, model, variables)
  os.makedirs(out_dir, exist_ok=True)
  mast = mast_scores(scorer, config, window)
  write_csv(os.path.join(out_dir, "mast_scores.csv"), MAST_COLUMNS, mast)
  ssvd_rows = ssvd_scores(scorer, config, window)
  write_csv(os.path.join(out_dir, "ssvd_scores.csv"),
             ["performance_id", "melody", "score", "label_score"], ssvd_rows)
  crepe_rows = []
  if ssvd_cache_dir:
    crepe_rows = ssvd_crepe_scores(scorer, config, window, ssvd_cache_dir)
    write_csv(os.path.join(out_dir, "ssvd_crepe_scores.csv"),
               ["performance_id", "melody", "score", "label_score"], crepe_rows)
  held = [r for r in mast if not r[2] and np.isfinite(r[3])]
  summary = {
      "mast_heldout": pearson_ci([r[3] for r in held], [r[4] for r in held]),
      "mast_heldout_auc": float(_auc([r[3] for r in held], [r[5] for r in held])),
      "mast_selection": pearson_ci([r[3] for r in mast if r[2]],
                                   [r[4] for r in mast if r[2]]),
      "ssvd_v1": pearson_ci([r[2] for r in ssvd_rows], [r[3] for r in ssvd_rows]),
  }
  if crepe_rows:
    summary["ssvd_v1_crepe"] = pearson_ci([r[2] for r in crepe_rows],
                                          [r[3] for r in crepe_rows])
  pool = contour_pool.load_pool(pool_path or config.contour.pool
                                or os.path.join(workdir, "contour_pool.npz"))
  summary["degradation_ranking"] = degradation_ranking(system, model, variables, pool)
  if system.aligned:
    summary["degradation_ranking_dtw"] = degradation_ranking(system, model, variables,
                                                             pool, dtw=True)
  summary["calibration"] = write_calibration(workdir, mast)
  atomic.write_json(os.path.join(out_dir, "contour_eval.json"), summary)
  return summary


def _auc(scores, positive) -> float:
  from sklearn.metrics import roc_auc_score  # pylint: disable=g-import-not-at-top
  s, y = np.asarray(scores, np.float64), np.asarray(positive, np.int64)
  return roc_auc_score(y, s) if len(set(y.tolist())) == 2 else math.nan


FLAGS = flags.FLAGS


def main(argv) -> None:
  """CLI entry (module docstring)."""
  del argv
  out_dir = FLAGS.out_dir or os.path.join(FLAGS.workdir, "contour_eval")
  if FLAGS.calibrate_only:
    summary = write_calibration(FLAGS.workdir, read_mast_scores(
        os.path.join(out_dir, "mast_scores.csv")))
    print(summary if summary is not None else
          f"too few graded MAST selection rows: no {calibration_lib.FILENAME}")
    return
  config = (config_specs.load_config(FLAGS.config, FLAGS.override) if FLAGS.config
            else config_specs.load_workdir_config(FLAGS.workdir))
  if FLAGS.override and not FLAGS.config:
    for override in FLAGS.override:
      config_specs.apply_override(config, override)
  summary = evaluate(config, FLAGS.workdir, out_dir, FLAGS.pool, FLAGS.ssvd_cache_dir)
  logging.info("%s", summary)
  print(summary)


if __name__ == "__main__":
  flags.DEFINE_string("config", None, "Config spec, e.g. configs/contour_rori.py:small "
                      "(default: WORKDIR/config.json)")
  flags.DEFINE_multi_string("override", [], "KEY=VALUE config overrides")
  flags.DEFINE_string("workdir", None, "Trained run directory")
  flags.DEFINE_string("out_dir", "", "Output folder (default WORKDIR/contour_eval)")
  flags.DEFINE_string("pool", "", "Pool .npz (default config.contour.pool or "
                      "WORKDIR/contour_pool.npz)")
  flags.DEFINE_string("ssvd_cache_dir", "", "Also score SSVD v1 on CREPE contours of "
                      "the audio, cached here (baselines.cache): ssvd_crepe_scores.csv")
  flags.DEFINE_bool("calibrate_only", False, "Only (re)write WORKDIR/calibration.json "
                    "from OUT_DIR/mast_scores.csv")
  flags.mark_flags_as_required(["workdir"])
  app.run(main)
