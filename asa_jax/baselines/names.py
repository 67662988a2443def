"""The rule-based baselines' names, Table 2 groups and labels, defined once.

Imports nothing heavy, so configs and the evaluation's table code can read the names
without loading librosa or CREPE. Paper: Zhang et al. 2021, section 4.2 and Table 2.
"""

# Pitch-histogram measures of Gupta et al. 2018 (paper 4.2.1; no reference).
HISTOGRAM = ("kurtosis", "skewness", "peakBW", "peakConc50", "peakConc110", "kMeans",
             "binning")
# DTWDist ratings of Tsai & Lee 2012 (paper 4.2.2) against the reference, plus the
# key- and tempo-invariant melodic similarity of Molina et al. 2013 (not in the paper).
DTW = ("dtw_pitch", "dtw_volume", "dtw_rhythm", "dtw_melody")
ALL = HISTOGRAM + DTW  # Table 2's baselines (--baselines=all).
# Measured terms of issue 18 (section 5; asa_jax/baselines/measured_terms.py,
# voice_quality.py): baselines by name (--baselines=intonation_cents,...), not in
# ALL, so Table 2 is unchanged.
MEASURED = ("intonation_cents", "interval_cents", "wrong_notes", "key_drift_cents",
            "pitch_stability_cents", "vibrato_rate_hz", "vibrato_extent_cents",
            "onset_deviation_ms", "tempo_variance_pct", "tempo_ratio",
            "missing_fraction", "deviation_p90_cents", "dynamic_range_db")
VOICE_QUALITY = ("hnr_db", "cpp_db", "jitter_pct", "shimmer_pct")

# name -> Table 2 "Reference Used". The paper's DTWDist references were MIDI (pitch,
# rhythm) and the energy sequence (volume); ours are the original singing track's
# contours.
REFERENCE_USED = {
    **{name: "None" for name in HISTOGRAM},
    "dtw_pitch": "Original Track f0",
    "dtw_volume": "Original Track energy",
    "dtw_rhythm": "Original Track onsets",
    "dtw_melody": "Original Track f0 (transposed)",
}
# The same for the measured terms (kept apart from REFERENCE_USED, which lists
# Table 2's baselines).
MEASURED_REFERENCE_USED = {**{name: "Original Track f0 (aligned)" for name in MEASURED},
                           **{name: "None" for name in VOICE_QUALITY}}

# name -> Table 2 row group.
GROUPS = {**{name: "Histogram" for name in HISTOGRAM}, **{name: "DTWDist" for name in DTW},
          **{name: "Measured" for name in MEASURED + VOICE_QUALITY}}

# Table 2 "Configuration" labels where they differ from the name (paper 4.2.2).
DISPLAY_NAMES = {"dtw_pitch": "pitch", "dtw_volume": "volume", "dtw_rhythm": "rhythm",
                 "dtw_melody": "melody (transposed; Molina 2013)"}
