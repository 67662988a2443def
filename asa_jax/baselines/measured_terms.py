"""Measured terms: interpretable singing measures against the reference (issue 18, 5).

Each term is computed from the aligned contour (asa_jax.features.aligned_contour:
the performance aligned to its reference by dtw_melody's key- and tempo-invariant
alignment, Molina et al. 2013) and has a unit. Notes are the REFERENCE's
(asa_jax.features.note_segments); a note's sung pitch is the median pitch deviation
over its aligned frames. Definitions (ours; the issue names the terms, not the
formulas):

  intonation_cents      mean |note error| in cents, note error = the note's median
                        deviation minus the median over notes (note-level
                        transposition), capped at NOTE_CAP_CENTS;
  interval_cents        mean |change of note error between consecutive notes|,
                        capped at NOTE_CAP_CENTS: the sung interval's error;
  wrong_notes           fraction of notes with |note error| > WRONG_NOTE_CENTS;
  key_drift_cents       |Theil-Sen slope| (scipy.stats.theilslopes) of the note
                        errors against time, times the reference's duration: how
                        far the key moves over the performance, cents;
  pitch_stability_cents median over notes of the standard deviation of the
                        performance's own pitch minus its Savitzky-Golay smoothing
                        (scipy.signal.savgol_filter, JITTER_WINDOW_S, order 2):
                        f0 jitter within notes, cents;
  vibrato_rate_hz, vibrato_extent_cents  on notes of >= VIBRATO_MIN_S: the peak of
                        the detrended pitch's periodogram (scipy.signal.periodogram,
                        Hann window, 'spectrum' scaling) within VIBRATO_BAND_HZ; extent
                        = amplitude sqrt(2 P) of that peak (cents, half the
                        peak-to-peak swing); medians over those notes;
  onset_deviation_ms    the reference notes' onsets mapped through the warp to the
                        performance, minus a Theil-Sen line (global tempo and
                        latency): mean |residual| in reference-time ms;
  tempo_variance_pct    coefficient of variation of the local tempo over the
                        reference's voiced frames, percent;
  tempo_ratio           the Theil-Sen slope: performance seconds per reference
                        second (1 = same tempo);
  missing_fraction      reference voiced frames aligned with unvoiced performance;
  deviation_p90_cents   90th percentile of |pitch deviation| on frames both voice;
  dynamic_range_db      95th minus 5th percentile of the performance's voiced energy
                        (dB; nan when the source has no energy, e.g. MAST).

`TERMS` gives each term's unit and orientation; `rating(name, value)` turns a term
into a rule-based baseline score, HIGHER = BETTER like every baseline.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.signal
import scipy.stats

from asa_jax.features import aligned_contour as ac_lib
from asa_jax.features import note_segments

# A note's error counts at most a semitone: chosen among 100, 200, 300 and 600 cents
# on MAST's jury grades alone (intonation r -0.706 / -0.661 / -0.618 / -0.522; BUILD_NOTES,
# "The note-error cap"). Juries judge a note wrong, not how far wrong it is.
NOTE_CAP_CENTS = 100.0
WRONG_NOTE_CENTS = 50.0
MIN_NOTES = 2
JITTER_WINDOW_S = 0.09  # smoothing window of the within-note jitter (~11 Hz).
NOTE_TRIM_S = 0.05  # note edges left out of jitter / vibrato (transitions).
VIBRATO_MIN_S = 0.35
VIBRATO_BAND_HZ = (3.0, 9.0)
VIBRATO_NFFT = 1024
PREFERRED_VIBRATO_HZ = 6.0  # the rating's centre (Sundberg: 5.5-7 Hz in trained singers).

# name -> (unit, direction): +1 higher is better, -1 lower is better, 0 no order
# (the fusion does not constrain it; its rating is given below).
TERMS = {
    "intonation_cents": ("cents", -1),
    "interval_cents": ("cents", -1),
    "wrong_notes": ("fraction of notes", -1),
    "key_drift_cents": ("cents", -1),
    "pitch_stability_cents": ("cents", -1),
    "vibrato_rate_hz": ("Hz", 0),
    "vibrato_extent_cents": ("cents", 0),
    "onset_deviation_ms": ("ms", -1),
    "tempo_variance_pct": ("%", -1),
    "tempo_ratio": ("ratio", 0),
    "missing_fraction": ("fraction of frames", -1),
    "deviation_p90_cents": ("cents", -1),
    "dynamic_range_db": ("dB", 0),
}


def rating(name: str, value: float) -> float:
  """The term as a baseline score, higher = better singing.

  direction * value for ordered terms; tempo_ratio: -|log2 ratio|; vibrato_rate_hz:
  -|rate - PREFERRED_VIBRATO_HZ|; vibrato_extent_cents and dynamic_range_db: the
  value (more vibrato / dynamics read as more skilled; unordered in the fusion).

  Raises:
    KeyError: unknown term.
  """
  _, direction = TERMS[name]
  if name == "tempo_ratio":
    return -abs(math.log2(value)) if value > 0 else math.nan
  if name == "vibrato_rate_hz":
    return -abs(value - PREFERRED_VIBRATO_HZ)
  return value if direction == 0 else direction * value


def _note_errors(a: ac_lib.AlignedContour, notes: np.ndarray) -> np.ndarray:
  """(K,) median pitch deviation per note (nan where no frame both voiced)."""
  out = np.full(len(notes), np.nan)
  for n, (s, e) in enumerate(notes):
    d = a.pitch_deviation_cents[s:e]
    d = d[np.isfinite(d)]
    if d.size:
      out[n] = np.median(d)
  return out


def _perf_spans(a: ac_lib.AlignedContour, notes: np.ndarray) -> list[np.ndarray]:
  """The performance's own voiced pitch (cents) over each reference note's span,
  edges trimmed by NOTE_TRIM_S."""
  trim = int(round(NOTE_TRIM_S / a.hop_s))
  out = []
  for s, e in notes:
    lo = int(round(a.perf_frame[s])) + trim
    hi = int(round(a.perf_frame[e - 1])) + 1 - trim
    x = a.perf_cents[max(lo, 0):max(hi, 0)]
    out.append(x)
  return out


def _runs_finite(x: np.ndarray, min_len: int) -> list[np.ndarray]:
  m = np.concatenate([[False], np.isfinite(x), [False]]).astype(np.int8)
  d = np.diff(m)
  return [x[a:b] for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1))
          if b - a >= min_len]


def pitch_stability(spans: list[np.ndarray], hop_s: float) -> float:
  """Median within-note f0 jitter, cents (module doc); nan without a long note."""
  win = max(5, int(round(JITTER_WINDOW_S / hop_s)) | 1)
  sds = [float(np.std(x - scipy.signal.savgol_filter(x, win, 2)))
         for span in spans for x in _runs_finite(span, win + 2)]
  return float(np.median(sds)) if sds else math.nan


def vibrato(spans: list[np.ndarray], hop_s: float) -> tuple[float, float]:
  """(rate Hz, extent cents): medians over notes of >= VIBRATO_MIN_S (module doc)."""
  min_len = int(round(VIBRATO_MIN_S / hop_s))
  rates, extents = [], []
  for span in spans:
    for x in _runs_finite(span, min_len):
      f, p = scipy.signal.periodogram(x, fs=1.0 / hop_s, window="hann",
                                      nfft=max(VIBRATO_NFFT, len(x)),
                                      detrend="linear", scaling="spectrum")
      band = (f >= VIBRATO_BAND_HZ[0]) & (f <= VIBRATO_BAND_HZ[1])
      k = np.argmax(np.where(band, p, -1.0))
      rates.append(f[k])
      extents.append(math.sqrt(2.0 * p[k]))
  if not rates:
    return math.nan, math.nan
  return float(np.median(rates)), float(np.median(extents))


def measured_terms(a: ac_lib.AlignedContour, *, perf_energy_db=None) -> dict:
  """Every term of TERMS for one aligned performance (module doc).

  Args:
    a: the aligned contour (asa_jax.features.aligned_contour.aligned_contour).
    perf_energy_db: optional float (N,) the performance's energy in dB on its own
      frames (for dynamic_range_db).

  Returns:
    {term: float in its unit}; nan where a term cannot be computed (too few
    notes, no long note, no energy).
  """
  out = {name: math.nan for name in TERMS}
  hop = a.hop_s
  notes = note_segments.segment_notes(a.ref_cents, hop)
  err = _note_errors(a, notes)
  ok = np.isfinite(err)
  voiced_ref = a.ref_voiced
  out["missing_fraction"] = float(np.mean(~a.perf_voiced[voiced_ref])) if \
      voiced_ref.any() else math.nan
  dev = np.abs(a.pitch_deviation_cents[np.isfinite(a.pitch_deviation_cents)])
  if dev.size:
    out["deviation_p90_cents"] = float(np.percentile(dev, 90))
  if ok.sum() >= MIN_NOTES:
    e = err[ok] - np.median(err[ok])
    out["intonation_cents"] = float(np.mean(np.minimum(np.abs(e), NOTE_CAP_CENTS)))
    out["interval_cents"] = float(np.mean(np.minimum(np.abs(np.diff(e)),
                                                     NOTE_CAP_CENTS)))
    out["wrong_notes"] = float(np.mean(np.abs(e) > WRONG_NOTE_CENTS))
    t = notes[ok, 0] * hop
    if np.ptp(t) > 0:
      slope = scipy.stats.theilslopes(e, t)[0]
      out["key_drift_cents"] = float(abs(slope) * a.n_frames * hop)
  if len(notes) >= MIN_NOTES:
    ref_t = notes[:, 0] * hop
    perf_t = a.perf_frame[notes[:, 0]] * hop
    slope, intercept = scipy.stats.theilslopes(perf_t, ref_t)[:2]
    if slope > 0:
      out["tempo_ratio"] = float(slope)
      resid = (perf_t - (slope * ref_t + intercept)) / slope
      out["onset_deviation_ms"] = float(1000.0 * np.mean(np.abs(resid)))
  tempo = a.local_tempo[voiced_ref]
  if tempo.size and np.mean(tempo) > 0:
    out["tempo_variance_pct"] = float(100.0 * np.std(tempo) / np.mean(tempo))
  spans = _perf_spans(a, notes)
  out["pitch_stability_cents"] = pitch_stability(spans, hop)
  out["vibrato_rate_hz"], out["vibrato_extent_cents"] = vibrato(spans, hop)
  if perf_energy_db is not None:
    db = np.asarray(perf_energy_db, np.float64)
    voiced = np.isfinite(a.perf_cents[:db.size])
    if voiced.sum() >= 2:
      lo, hi = np.percentile(db[:voiced.size][voiced], [5, 95])
      out["dynamic_range_db"] = float(hi - lo)
  return out
