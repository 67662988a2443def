"""Errors of `Assessor.assess` beyond bad audio (`AudioError`, asa_jax.features.audio)."""

from __future__ import annotations


class AssessmentError(ValueError):
  """The recordings were read but cannot be scored; the message says why."""


class NotSameMelodyError(AssessmentError):
  """The performance does not follow the reference's melody (issue 19, section 3).

  Raised instead of a score when `confidence.AlignmentConfidence.confidence` is under
  its threshold, or when the two melodies admit no alignment at all. The message
  names both recordings and the measures (or the reason).

  Attributes:
    performance, reference: the recordings' names (file paths or "<... array>").
    confidence: the `asa_jax.assess.confidence.AlignmentConfidence`, or None when
      no alignment exists.
  """

  def __init__(self, performance: str, reference: str, confidence=None, *,
               reason: str | None = None):
    self.performance, self.reference, self.confidence = (performance, reference,
                                                         confidence)
    detail = reason if confidence is None else confidence.describe()
    super().__init__(f"{performance}: not the same melody as {reference} "
                     f"({detail}); no score")
