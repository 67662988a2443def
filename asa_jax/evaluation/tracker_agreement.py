"""How closely the pitch student follows CREPE tiny on one recording (issue 20).

The first student misread the demo synthesiser's voice an octave up on 10 % of the
frames of the README's demo reference, where it tracked real singing as well as CREPE
full (BUILD_NOTES, issue 20, "Reverted"). This is the check that caught it, as a
function: `benchmarks/tracker_agreement.py` prints it for any recording.
"""

from __future__ import annotations

import numpy as np

from asa_jax.baselines import contours
from asa_jax.features import crepe
from asa_jax.features import pitch_student

OCTAVE_TOLERANCE_CENTS = 100.0


def agreement(audio: np.ndarray, *, weights: str = pitch_student.WEIGHTS) -> dict:
  """The student against CREPE tiny on the 10 ms frames both call voiced by the
  scorer's rule (`contours.voiced_frames`, each with its own confidence threshold).

  Args:
    audio: float (n,) mono samples at 16 kHz.
    weights: the student's weights file.

  Returns:
    {"frames": int, frames voiced by both; "within_50": share of them within 50
     cents of CREPE tiny; "octave": share 1200 +- 100 cents away;
     "median_student_hz", "median_crepe_hz": median f0 over them (Hz)}. With no
     frame voiced by both, the shares and medians are NaN.

  Raises:
    ValueError: audio not 1-D.
    pitch_student.PitchStudentError: the weights cannot be read.
  """
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 1:
    raise ValueError(f"agreement: audio must be 1-D, got shape {audio.shape}")
  f0_c, conf_c = crepe.crepe_f0(audio, capacity="tiny", hop_length=contours.HOP_LENGTH)
  f0_s, conf_s = pitch_student.student_f0(audio, hop_length=contours.HOP_LENGTH,
                                          n_frames=len(f0_c), path=weights)
  db = contours.energy_db(audio)
  n = min(len(f0_c), len(db))
  both = (contours.voiced_frames(conf_c[:n], db[:n])
          & contours.voiced_frames(conf_s[:n], db[:n], pitch_student.VOICING_THRESHOLD))
  if not both.any():
    nan = float("nan")
    return dict(frames=0, within_50=nan, octave=nan, median_student_hz=nan,
                median_crepe_hz=nan)
  cents = 1200.0 * np.abs(np.log2(f0_s[:n][both] / f0_c[:n][both]))
  return dict(frames=int(both.sum()), within_50=float(np.mean(cents <= 50.0)),
              octave=float(np.mean(np.abs(cents - 1200.0) <= OCTAVE_TOLERANCE_CENTS)),
              median_student_hz=float(np.median(f0_s[:n][both])),
              median_crepe_hz=float(np.median(f0_c[:n][both])))
