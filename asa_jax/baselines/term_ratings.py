"""The measured terms (issue 18, section 5) as rule-based baselines by name.

`RATINGS`: name -> rating(performance Contours, reference Contours), higher = better
(`measured_terms.rating`), from the aligned contour of the two (one alignment per
pair, memoised for the last pair so that several terms of one pair align once).
`AUDIO_RATINGS`: name -> rating(audio path): the reference-free Praat voice quality
(`voice_quality`), read from the performance's audio.
"""

from __future__ import annotations

import math

from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import measured_terms
from asa_jax.baselines import voice_quality
from asa_jax.features import aligned_contour as ac_lib

_memo: dict = {}


def terms_of(perf: contours_lib.Contours, ref: contours_lib.Contours) -> dict:
  """measured_terms of a pair of contours (memoised for the last pair).

  Raises:
    ValueError: different frame periods, or too few voiced frames to align.
  """
  key = (id(perf), id(ref))
  if _memo.get("key") != key:
    if abs(perf.hop_s - ref.hop_s) > 1e-9:
      raise ValueError(f"contours have different frame periods: {perf.hop_s} s vs "
                       f"{ref.hop_s} s")
    a = ac_lib.aligned_contour(perf.f0_hz, ref.f0_hz, hop_s=perf.hop_s,
                               perf_energy_db=perf.energy_db,
                               ref_energy_db=ref.energy_db)
    _memo.clear()
    _memo.update(key=key, perf=perf, ref=ref,  # keep both alive: ids stay unique.
                 terms=measured_terms.measured_terms(a, perf_energy_db=perf.energy_db))
  return _memo["terms"]


def _term_rating(name: str):
  def rate(perf: contours_lib.Contours, ref: contours_lib.Contours) -> float:
    value = terms_of(perf, ref)[name]
    if not math.isfinite(value):
      raise ValueError(f"{name} cannot be computed for this pair (too few notes, "
                       "no long note or no energy)")
    return measured_terms.rating(name, value)
  rate.__doc__ = f"The measured term {name} as a rating, higher = better."
  return rate


def _audio_rating(name: str):
  def rate(audio_path: str) -> float:
    from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
    value = voice_quality.voice_quality(audio_lib.load_audio(audio_path))[name]
    if not math.isfinite(value):
      raise ValueError(f"{name}: Praat found no periodic frame in {audio_path}")
    return voice_quality.rating(name, value)
  rate.__doc__ = f"The voice-quality term {name} of an audio file, higher = better."
  return rate


RATINGS = {name: _term_rating(name) for name in measured_terms.TERMS}
AUDIO_RATINGS = {name: _audio_rating(name) for name in voice_quality.TERMS}
