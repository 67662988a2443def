"""Score one recording: `Assessor(...).assess(performance, reference)` (issue 10).

  assessor.py    Assessor, Assessment, SegmentFeedback: calibrated score and
                 per-segment feedback for one performance.
  alignment.py   key offset, tempo ratio and DTW time map of two f0 contours.
  html_report.py PNG plot and self-contained HTML report of an Assessment.
  calibrate.py   fits a calibration from an eval scores.csv (e.g. for a baseline).
  notes.py       NoteFeedback: per-note cents and timing errors and flags.
  confidence.py  AlignmentConfidence: does the performance follow the melody?
  errors.py      AssessmentError, NotSameMelodyError.
  fused.py       the default scorer shipped in default_scorer/ (fitted fusion of
                 the measured terms and the contour comparator's score) and its
                 TermContributions ("why this score").
  contour_comparator.py  the learned contour comparator: trained contour towers
                 scoring two aligned f0 contours (default_scorer/contour/).
  refcache.py    references' contours (and learned clip features) on disk, keyed
                 by content hash and feature settings (also the service's cache).
  cli.py         the `asa-score` command.

The calibration itself (the monotone raw -> 0..100 map, calibration.json) is
asa_jax.evaluation.calibration.

Importing this package loads neither JAX nor the training code; `Assessor.
from_workdir` does, when called.
"""

from asa_jax.assess.assessor import (Assessment, Assessor, AudioError, PitchCurves,
                                     SegmentFeedback, load_input)
from asa_jax.assess.confidence import AlignmentConfidence
from asa_jax.assess.errors import AssessmentError, NotSameMelodyError
from asa_jax.assess.fused import DefaultScorerError, TermContribution
from asa_jax.assess.notes import NoteFeedback
from asa_jax.evaluation.calibration import Calibration

__all__ = ["AlignmentConfidence", "Assessment", "AssessmentError", "Assessor",
           "AudioError", "Calibration", "DefaultScorerError", "NotSameMelodyError",
           "NoteFeedback", "PitchCurves", "SegmentFeedback", "TermContribution",
           "load_input"]
