"""Rule-based singing-assessment baselines of the paper's section 4.2.

Zhang et al. (ISMIR 2021), Table 2 compares the learned systems with the
pitch-histogram measures of Gupta et al. 2018 (4.2.1; no reference) and the
DTWDist ratings of Tsai & Lee 2012 (4.2.2; against the reference). Beyond the
paper, `dtw_melody` is the key- and tempo-invariant melodic similarity of Molina
et al. (ICASSP 2013; against the reference, DTWDist group of Table 2). Modules:

  names.py      the names, Table 2 groups and labels, defined once.
  contours.py   audio or an f0 curve -> f0 / voicing / energy / onsets.
  cache.py      per-audio-file npz cache of the contours.
  histogram.py  kurtosis, skewness, peakBW, peakConc50, peakConc110, kMeans,
                binning (octave-folded pitch histogram).
  dtw.py        dtw_pitch, dtw_volume, dtw_rhythm (librosa DTW distances).
  dtw_melody.py dtw_melody: DTW of the f0 contours after the best
                transposition, octave errors repaired (Molina et al. 2013).
  score.py      score_baselines: a manifest -> PerformanceScores per baseline.
  measured_terms.py, voice_quality.py, term_ratings.py  the measured terms of
                issue 18 (intonation, rhythm, ... on the aligned contour; Praat
                voice quality), baselines by name (names.MEASURED, VOICE_QUALITY).
  term_table.py per-performance term tables of MAST and SSVD (real labels).
  mast.py                the MAST check (python -m asa_jax.baselines.mast).

Every baseline score is oriented so that HIGHER = BETTER singing.
"""

from asa_jax.baselines import names


def __getattr__(attr):
  # score_baselines loads librosa and CREPE: only when asked for.
  if attr == "score_baselines":
    from asa_jax.baselines.score import score_baselines  # pylint: disable=g-import-not-at-top
    return score_baselines
  raise AttributeError(f"module 'asa_jax.baselines' has no attribute {attr!r}")


__all__ = ["names", "score_baselines"]
