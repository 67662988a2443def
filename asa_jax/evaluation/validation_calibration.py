"""Calibration at the end of training: WORKDIR/calibration.json.

Scores the validation performances with the run's best checkpoint, exactly as the
evaluation scores them (`asa_jax.evaluation.scoring.score_performances`), and fits
`asa_jax.evaluation.calibration.fit` (raw score -> human 0..100 scale; minmax fallback
without human scores). `asa_jax.assess.Assessor` applies it; eval.py reports its MAE
and Pearson's r on the test split. Not in the paper (it reports Pearson's r only).
"""

from __future__ import annotations

import os

import jax
import ml_collections
from absl import logging

from asa_jax.evaluation import calibration as calibration_lib
from asa_jax.train import checkpoint

VALIDATION_SPLIT = "validation"


def calibrate_workdir(config: ml_collections.ConfigDict, workdir: str,
                      records_dir: str, *, step: int
                      ) -> calibration_lib.Calibration | None:
  """Fits and writes WORKDIR/calibration.json for the run's best checkpoint.

  Skipped (returns the stored one) when calibration.json was already fitted for
  `step`. Only process 0 writes; every process returns the calibration.

  Args:
    config: the run config (train.calibration is the method).
    workdir: the run directory (checkpoints/, stats.json).
    records_dir: the feature records the run trained on (validation split).
    step: the run's last step (recorded; a resumed run refits when it changed).

  Returns:
    The Calibration, or None when the validation split has no scored performance
    (logged).
  """
  from asa_jax.evaluation import scoring  # pylint: disable=g-import-not-at-top
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, calibration_lib.FILENAME)
  source = f"validation split of {records_dir}, run step {step}"
  if os.path.isfile(path):
    try:
      stored = calibration_lib.load(path)
      if stored.source == source and stored.method in (
          config.train.calibration, "minmax"):
        return stored
    except ValueError as e:
      logging.warning("refitting the calibration: %s", e)
  if not os.path.isdir(os.path.join(records_dir, VALIDATION_SPLIT)):
    logging.warning("no validation records in %s: calibration.json not written",
                    records_dir)
    return None
  model, variables = checkpoint.restore_for_inference(config, workdir)
  scores = scoring.score_performances(model, variables, records_dir,
                                      records_lib.load_stats(records_dir), config,
                                      split=VALIDATION_SPLIT)
  if not scores:
    logging.warning("no validation performance scored: calibration.json not written")
    return None
  cal = calibration_lib.fit([s.predicted for s in scores],
                            [s.human for s in scores],
                            method=config.train.calibration, source=source)
  if jax.process_index() == 0:
    calibration_lib.save(cal, path)
  m = cal.fit_metrics
  logging.info("calibration (%s, %d validation performances%s) -> %s", cal.method,
               cal.n, "" if cal.human else ", no human scores: min-max", path)
  if cal.human:
    logging.info("validation: Pearson raw %.3f, calibrated %.3f, MAE %.2f",
                 m["pearson_raw"], m["pearson_calibrated"], m["mae"])
  return cal
