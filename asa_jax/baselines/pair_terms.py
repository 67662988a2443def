"""Every contour term of one (performance, reference) pair, as the real-label tables
compute them (issue 18, sections 1 and 5; issue 19, section 2).

`pair_terms(perf, ref)` gives, for two recordings' `Contours` on one frame grid
(10 ms CREPE contours of `contours.extract_contours`, as the SSVD table's rows):
  * dtw_melody: minus the aligned pitch cost (Molina et al. 2013);
  * the pitch-histogram measures of the performance (paper 4.2.1, Gupta et al. 2018);
  * every term of `measured_terms.TERMS`, from the aligned contour
    (`features.aligned_contour`), dynamic_range_db from the performance's energy.
The same calls as `term_table._row_terms` and `term_table.ssvd_table` for one
reference (tests/test_default_scorer.py checks they agree), so a fusion fitted on
those tables reads the same numbers from a new pair. Voice quality (Praat, from the
audio) is not here: it needs the samples (`voice_quality.voice_quality`).

`rating(name, value)` orients any of them as its baseline rating, higher = better.
"""

from __future__ import annotations

import math

import numpy as np

from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from asa_jax.baselines import measured_terms
from asa_jax.baselines import voice_quality
from asa_jax.features import aligned_contour as ac_lib

TERMS = (("dtw_melody",) + tuple(baseline_names.HISTOGRAM)
         + tuple(measured_terms.TERMS))
# name -> unit of the raw value (the measured terms' own; the others are ratings).
UNITS = {"dtw_melody": "-cents", **{m: "" for m in baseline_names.HISTOGRAM},
         **{k: u for k, (u, _) in measured_terms.TERMS.items()},
         **{k: u for k, (u, _) in voice_quality.TERMS.items()}}


def pair_terms(perf: contours_lib.Contours, ref: contours_lib.Contours) -> dict:
  """{name: float} of every name in TERMS (nan where a term cannot be computed).

  Args:
    perf, ref: contours of the performance and its reference, the same hop_s
      (10 ms for the fitted default scorer); perf.energy_db gives the dynamic range.

  Raises:
    ValueError: different frame periods.
  """
  return pair_terms_and_alignment(perf, ref)[0]


def pair_terms_and_alignment(perf: contours_lib.Contours, ref: contours_lib.Contours
                             ) -> tuple[dict[str, float], "ac_lib.AlignedContour | None"]:
  """(`pair_terms`, the pair's AlignedContour or None where it cannot be aligned):
  callers that also need the alignment (the default scorer's contour comparator)
  reuse it instead of running the DTW again.

  Raises:
    ValueError: different frame periods.
  """
  if abs(perf.hop_s - ref.hop_s) > 1e-9:
    raise ValueError(f"contours have different frame periods: {perf.hop_s} s vs "
                     f"{ref.hop_s} s")
  out = {name: math.nan for name in TERMS}
  try:
    out.update(histogram_lib.histogram_measures(perf.f0_hz))
  except ValueError:
    pass  # too few voiced frames: those stay nan, as in the tables.
  try:
    a = ac_lib.aligned_contour(perf.f0_hz, ref.f0_hz, hop_s=perf.hop_s)
  except ValueError:
    return out, None
  out.update(measured_terms.measured_terms(a, perf_energy_db=perf.energy_db))
  out["dtw_melody"] = -a.cost_cents
  return {k: float(out[k]) for k in TERMS}, a


def rating(name: str, value: float) -> float:
  """The term as its baseline rating, higher = better (nan stays nan).

  Measured terms: `measured_terms.rating`; voice quality: `voice_quality.rating`;
  dtw_melody and the histogram measures are ratings already.
  """
  if not np.isfinite(value):
    return math.nan
  if name in measured_terms.TERMS:
    return measured_terms.rating(name, value)
  if name in voice_quality.TERMS:
    return float(voice_quality.rating(name, value))
  return float(value)


def direction(name: str) -> int:
  """+1 where a fusion may only increase with the rating, 0 unordered."""
  if name in measured_terms.TERMS:
    return int(measured_terms.TERMS[name][1] != 0)
  return 1
