"""Rule-based singing-assessment baselines of the paper's section 4.2.

Zhang et al. (ISMIR 2021), Table 2 compares the learned systems with the
pitch-histogram measures of Gupta et al. 2018 (4.2.1; no reference) and the
DTWDist ratings of Tsai & Lee 2012 (4.2.2; against the reference). Beyond the
paper, `dtw_melody` is the key- and tempo-invariant melodic similarity of Molina
et al. (ICASSP 2013; against the reference, DTWDist group of Table 2). Modules:

  contours.py   audio or an f0 curve -> f0 / voicing / energy / onsets.
  cache.py      per-audio-file npz cache of the contours.
  histogram.py  kurtosis, skewness, peakBW, peakConc50, peakConc110, kMeans,
                binning (octave-folded pitch histogram).
  dtw.py        dtw_pitch, dtw_volume, dtw_rhythm (librosa DTW distances).
  dtw_melody.py dtw_melody: DTW of the f0 contours after the best
                transposition, octave errors repaired (Molina et al. 2013).
  score.py      score_baselines: a manifest -> PerformanceScores per baseline.
  mast_data.py, mast.py  the MAST check (python -m asa_jax.baselines.mast).

Every baseline score is oriented so that HIGHER = BETTER singing.
"""

from asa_jax.baselines.score import score_baselines

# name -> Table 2 "Reference Used" label. The paper's DTWDist references were
# MIDI (pitch, rhythm) and the energy sequence (volume); ours are the original
# singing track's contours. dtw_melody is not in the paper (Molina et al. 2013).
BASELINES = {
    "kurtosis": "None",
    "skewness": "None",
    "peakBW": "None",
    "peakConc50": "None",
    "peakConc110": "None",
    "kMeans": "None",
    "binning": "None",
    "dtw_pitch": "Original Track f0",
    "dtw_volume": "Original Track energy",
    "dtw_rhythm": "Original Track onsets",
    "dtw_melody": "Original Track f0 (transposed)",
}

__all__ = ["BASELINES", "score_baselines"]
