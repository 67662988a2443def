"""Scorers for the asa-serve tests, loaded in the worker processes through
`ScorerSpec(factory="tests.serve_fakes:NAME")`.

  melody_checking_baseline: the dtw_melody baseline (calibration file in
    $ASA_TEST_CALIBRATION) that raises the Assessor's `NotSameMelodyError` for a
    performance under half the reference's length, so the 422 path is checked end
    to end whatever the alignment confidence says of the generated test audio.
  sleepy: no model; sleeps 600 s on a performance over 7 s (time-limit tests).
"""

import os
import time

import numpy as np


class _MelodyChecking:
  def __init__(self, assessor):
    self._assessor = assessor
    self.name = assessor.name

  def reference_contours(self, ref):
    return self._assessor.reference_contours(ref)

  def assess_audio(self, perf, ref=None, acc=None, **kwargs):
    if ref is not None and len(perf) < len(ref) / 2:
      from asa_jax.assess import NotSameMelodyError  # pylint: disable=g-import-not-at-top
      raise NotSameMelodyError("performance", "reference",
                               reason="under half the reference's length")
    return self._assessor.assess_audio(perf, ref, acc, **kwargs)


def melody_checking_baseline():
  import asa_jax.assess as assess  # pylint: disable=g-import-not-at-top
  return _MelodyChecking(assess.Assessor.from_baseline(
      "dtw_melody", calibration=os.environ["ASA_TEST_CALIBRATION"]))


class _Sleepy:
  name = "sleepy"

  def reference_contours(self, ref):
    from asa_jax.baselines import contours  # pylint: disable=g-import-not-at-top
    return contours.Contours(f0_hz=np.zeros(len(ref) // 160, np.float32))

  def assess_audio(self, perf, ref=None, acc=None, **kwargs):
    del ref, acc, kwargs
    if len(perf) > 7 * 16000:
      time.sleep(600)
    raise ValueError("the sleepy scorer scores nothing")


def sleepy():
  return _Sleepy()
