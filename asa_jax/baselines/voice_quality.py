"""Reference-free voice quality through Praat (praat-parselmouth): HNR, CPP, jitter, shimmer.

Issue 18, section 5: measured terms that need the audio (absent, nan, for f0-only
corpora such as MAST). Praat's own algorithms (Boersma & Weenink, Praat; Jadoul,
Thompson & de Boer, "Introducing Parselmouth", J. Phonetics 2018), with Praat's
usual settings:

  hnr_db           mean harmonicity ("To Harmonicity (cc)", 10 ms, 75 Hz floor), dB;
  cpp_db           smoothed cepstral peak prominence ("To PowerCepstrogram", 60 Hz,
                   10 ms; "Get CPPS" over 60-330 Hz quefrency range with a straight
                   robust trend line: the exponential-decay fit costs ~100x more);
  jitter_pct       local jitter of the periodic point process (75-600 Hz), percent;
  shimmer_pct      local shimmer over the same periods, percent.
Higher HNR and CPP mean a clearer voice; lower jitter and shimmer a steadier one.
"""

from __future__ import annotations

import math

import numpy as np

from asa_jax.features import constants

PITCH_FLOOR_HZ = 75.0
PITCH_CEILING_HZ = 600.0

# name -> (unit, direction): +1 higher is better, -1 lower is better.
TERMS = {"hnr_db": ("dB", 1), "cpp_db": ("dB", 1), "jitter_pct": ("%", -1),
         "shimmer_pct": ("%", -1)}


def rating(name: str, value: float) -> float:
  """The term as a baseline score, higher = better (direction * value).

  Raises:
    KeyError: unknown term.
  """
  return TERMS[name][1] * value


def voice_quality(audio: np.ndarray, sample_rate: int = constants.SAMPLE_RATE
                  ) -> dict:
  """HNR, CPP, jitter and shimmer of a mono recording (module doc).

  Args:
    audio: float (n,) mono audio.
    sample_rate: Hz.

  Returns:
    {'hnr_db', 'cpp_db', 'jitter_pct', 'shimmer_pct'}: floats, nan where Praat
    finds no periodic frame.

  Raises:
    ValueError: audio not 1-D or shorter than 0.1 s.
  """
  import parselmouth  # pylint: disable=g-import-not-at-top  (optional heavy import)
  from parselmouth.praat import call  # pylint: disable=g-import-not-at-top
  x = np.asarray(audio, np.float64)
  if x.ndim != 1 or x.size < 0.1 * sample_rate:
    raise ValueError(f"audio must be 1-D and >= 0.1 s, got shape {x.shape}")
  sound = parselmouth.Sound(x, sampling_frequency=float(sample_rate))
  out = {name: math.nan for name in TERMS}

  def safe(f):
    try:
      v = float(f())
      return v if math.isfinite(v) else math.nan
    except parselmouth.PraatError:
      return math.nan

  harmonicity = sound.to_harmonicity_cc(time_step=0.01,
                                        minimum_pitch=PITCH_FLOOR_HZ)
  out["hnr_db"] = safe(lambda: call(harmonicity, "Get mean", 0, 0))
  cepstrogram = call(sound, "To PowerCepstrogram", 60.0, 0.01, 5000.0, 50.0)
  out["cpp_db"] = safe(lambda: call(
      cepstrogram, "Get CPPS", "no", 0.02, 0.0005, 60.0, 330.0, 0.05, "Parabolic",
      0.001, 0.05, "Straight", "Robust"))
  points = call(sound, "To PointProcess (periodic, cc)", PITCH_FLOOR_HZ,
                PITCH_CEILING_HZ)
  out["jitter_pct"] = 100.0 * safe(lambda: call(
      points, "Get jitter (local)", 0, 0, 0.0001, 0.02, 1.3))
  out["shimmer_pct"] = 100.0 * safe(lambda: call(
      [sound, points], "Get shimmer (local)", 0, 0, 0.0001, 0.02, 1.3, 1.6))
  return out
