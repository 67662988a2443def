"""Per-note feedback: pitch and timing of each reference note as sung (issue 19).

The reference's notes are segmented from its f0 by `input_pipeline.corpora.degrade.
segment_notes` (voiced stretches of constant rounded pitch on the singer's own tuning
grid, plateaus under 60 ms merged), run on the octave-repaired contour
(`alignment.frame_cents`) resampled to that function's 5 ms grid after a running
median over VIBRATO_SMOOTH_SECONDS (about one vibrato cycle, over which a sinusoid's
median is its centre: a real singer's +-50-100 cent vibrato would otherwise split a
note at every crossing of a semitone boundary; it also drops the f0 tracker's short
harmonic errors at note ends, which a moving average would smear into a note).
Contiguous pieces whose median pitches are under MERGE_CENTS apart are merged (a note
held near a rounding boundary flips between two semitones). The
performance is segmented the same way; its note starts are the candidate onsets.

For each reference note (at least MIN_NOTE_SECONDS long):
  * expected onset: the performance time that the local time map maps to the note's
    onset: the alignment's global tempo and latency plus the DTW path's offset from
    them, running median over +-LOCAL_TEMPO_SECONDS of performance time. A constant
    microphone latency and tempo changes slower than that window (rubato) are
    absorbed there, so only the note's own displacement counts. The window is wider
    than the 3 s windows' (`alignment.SMOOTH_SECONDS`): with +-3 s, a phrase sung
    0.3 s late dragged the map of the next phrase's first note with it (half of the
    window late), which then read as early;
  * timing error: the performance onset within MAX_ONSET_SHIFT_SECONDS of the
    expected one that minimises |shift| / ONSET_SECONDS_SCALE + min(|pitch
    difference|, 300 cents) / ONSET_CENTS_SCALE (the pitch of the performance note it
    starts, after the transposition, against the reference note's: a note half an
    interval late is told from its neighbour by its pitch), minus the expected onset,
    seconds (> 0 = late); None when there is no onset in reach. Of the onset's
    displacement from the local map and from the global map (tempo and latency
    only), the smaller in magnitude is reported: a tempo drift is tolerated (small
    against the local map), and the notes just after a phrase sung late, whose local
    map that phrase still pulls, are not called early (small against the global);
  * cents error: median pitch of the performance over the note's mapped span (its
    matched onset and mapped length, EDGE_TRIM of each end left out: transitions) plus
    the alignment's transposition, minus the reference note's median pitch; folded to
    [-600, 600) cents (octave tolerance, flagged "octave");
  * flags: "wrong_note" when |cents| > WRONG_NOTE_CENTS, else "sharp" / "flat" beyond
    PITCH_FLAG_CENTS; "early" / "late" beyond TIMING_FLAG_SECONDS; "missed" when under
    MIN_SUNG_FRACTION of the span is voiced (no pitch then).
The thresholds are ours (BUILD_NOTES.md "Per-note feedback and alignment confidence
(issue 19)"). Not in the paper (Zhang et al. 2021 score whole recordings).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.ndimage

from asa_jax.assess import alignment as alignment_lib
from asa_jax.baselines import contours as contours_lib

NOTE_GRID_SECONDS = 0.005  # segment_notes' frame period (its 60 ms = 12 frames).
VIBRATO_SMOOTH_SECONDS = 0.15
MIN_NOTE_SECONDS = 0.1
MERGE_CENTS = 70.0  # chosen on the first 40 SSVD recordings (BUILD_NOTES.md).
MAX_ONSET_SHIFT_SECONDS = 0.5
ONSET_SECONDS_SCALE = 0.1  # onset matching: 0.1 s of shift costs as much as
ONSET_CENTS_SCALE = 100.0  # 100 cents of pitch difference.
EDGE_TRIM = 0.2  # fraction of a note's span left out at each end for its pitch.
MIN_SUNG_FRACTION = 0.3
WRONG_NOTE_CENTS = 75.0
PITCH_FLAG_CENTS = 45.0
TIMING_FLAG_SECONDS = 0.15
LOCAL_TEMPO_SECONDS = 4.5
NOTE_FLAGS = ("wrong_note", "sharp", "flat", "early", "late", "missed", "octave")


@dataclasses.dataclass(frozen=True)
class Note:
  """A note segmented from a contour.

  Attributes:
    onset_s, offset_s: seconds.
    cents: median pitch, cents re A4 (octave-repaired contour).
  """
  onset_s: float
  offset_s: float
  cents: float


@dataclasses.dataclass(frozen=True)
class NoteFeedback:
  """Pitch and timing of one reference note as sung (module doc).

  Attributes:
    index: the note's index among the reported reference notes (0-based).
    reference_onset_s, reference_offset_s: the note in the reference, seconds.
    reference_midi: its median pitch, MIDI note number (float).
    performance_onset_s: where it starts in the performance (the matched onset, or
      the expected one when none was found), seconds.
    performance_offset_s: where it ends in the performance, seconds.
    cents_error: performance pitch (moved by the key offset) minus the reference
      note's, cents in [-600, 600); None when missed.
    timing_error_s: performance onset minus the expected onset, seconds (> 0 =
      late; the smaller of the local and the global map's, module doc); None when
      no onset was found.
    flags: subset of NOTE_FLAGS.
  """
  index: int
  reference_onset_s: float
  reference_offset_s: float
  reference_midi: float
  performance_onset_s: float
  performance_offset_s: float
  cents_error: float | None
  timing_error_s: float | None
  flags: tuple[str, ...]


def segment(c: contours_lib.Contours) -> list[Note]:
  """Notes of a recording's contour (module doc), in time order.

  Args:
    c: contours (f0 in Hz, 0 = unvoiced), any frame period.

  Returns:
    Notes of at least MIN_NOTE_SECONDS (every voiced stretch split where the
    rounded, smoothed pitch changes; shorter pieces, e.g. a breath's blip, dropped).
  """
  from input_pipeline.corpora import degrade  # pylint: disable=g-import-not-at-top  (pyworld-free)
  cents = alignment_lib.frame_cents(c)
  voiced = np.isfinite(cents)
  smooth = np.full_like(cents, np.nan)
  width = max(1, int(round(VIBRATO_SMOOTH_SECONDS / c.hop_s)))
  edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(int), [0]])))
  for a, b in zip(edges[::2], edges[1::2]):
    smooth[a:b] = scipy.ndimage.median_filter(cents[a:b], width, mode="reflect")
  grid = np.arange(int(c.n_frames * c.hop_s / NOTE_GRID_SECONDS)) * NOTE_GRID_SECONDS
  idx = np.minimum(np.round(grid / c.hop_s).astype(int), c.n_frames - 1)
  on_grid = smooth[idx]
  f0 = np.where(np.isfinite(on_grid), 440.0 * 2.0 ** (np.nan_to_num(on_grid) / 1200.0),
                0.0)
  def frames(onset, offset):
    k = np.arange(int(np.ceil(onset / c.hop_s)), int(np.ceil(offset / c.hop_s)))
    k = k[k < c.n_frames]
    return k[voiced[k]]

  spans = []  # [onset, offset, median cents]
  for a, b in degrade.segment_notes(f0, NOTE_GRID_SECONDS):
    onset, offset = float(a * NOTE_GRID_SECONDS), float(b * NOTE_GRID_SECONDS)
    k = frames(onset, offset)
    if not k.size:
      continue
    median = float(np.median(cents[k]))
    # A pitch sitting near a rounding boundary flips between two semitones:
    # contiguous pieces closer than MERGE_CENTS are one note.
    if (spans and abs(onset - spans[-1][1]) < 1.5 * NOTE_GRID_SECONDS
        and abs(median - spans[-1][2]) < MERGE_CENTS):
      spans[-1][1] = offset
      spans[-1][2] = float(np.median(cents[frames(spans[-1][0], offset)]))
    else:
      spans.append([onset, offset, median])
  return [Note(a, b, m) for a, b, m in spans if b - a >= MIN_NOTE_SECONDS]


def _inverse_map(melody: alignment_lib.MelodyMap, duration_s: float, hop_s: float):
  """Performance time (s) of reference times on the local time map (module doc)."""
  x = melody.perf_times
  offsets = melody.ref_times - (melody.tempo_ratio * x + melody.latency_s)
  lo = np.searchsorted(x, x - LOCAL_TEMPO_SECONDS)
  hi = np.searchsorted(x, x + LOCAL_TEMPO_SECONDS, side="right")
  smooth = np.array([np.median(offsets[a:b]) for a, b in zip(lo, hi)])
  t = np.arange(0.0, duration_s + hop_s, hop_s)
  r = np.maximum.accumulate(melody.tempo_ratio * t + melody.latency_s
                            + np.interp(t, x, smooth))
  return lambda ref_t: np.interp(ref_t, r, t)


def _median_cents(cents: np.ndarray, hop_s: float, start: float, end: float):
  """(median of the voiced cents in [start, end) s, voiced fraction)."""
  k = np.arange(max(int(np.ceil(start / hop_s)), 0),
                min(int(np.ceil(end / hop_s)), len(cents)))
  if not k.size:
    return None, 0.0
  v = cents[k][np.isfinite(cents[k])]
  return (float(np.median(v)) if v.size else None), v.size / k.size


def note_feedback(perf: contours_lib.Contours, ref: contours_lib.Contours,
                  melody: alignment_lib.MelodyMap) -> list[NoteFeedback]:
  """Feedback on every reference note (module doc).

  Args:
    perf, ref: the two recordings' contours (same frame period).
    melody: `alignment.align(perf, ref)`.

  Returns:
    One NoteFeedback per reference note of at least MIN_NOTE_SECONDS, in order.
  """
  hop = perf.hop_s
  ref_notes = segment(ref)
  perf_notes = segment(perf)
  perf_onsets = np.array([n.onset_s for n in perf_notes])
  perf_note_cents = np.array([n.cents for n in perf_notes]) + melody.offset_cents
  perf_cents = alignment_lib.frame_cents(perf)
  to_perf = _inverse_map(melody, perf.n_frames * hop, hop)
  on_line = lambda r: (r - melody.latency_s) / melody.tempo_ratio  # global map.
  out = []
  for i, note in enumerate(ref_notes):
    expected, expected_end = (float(x) for x in to_perf([note.onset_s, note.offset_s]))
    timing, start = None, expected
    shift = perf_onsets - expected
    near = np.abs(shift) <= MAX_ONSET_SHIFT_SECONDS
    if near.any():
      interval = np.abs(perf_note_cents[near] - note.cents)
      interval = np.minimum(np.abs((interval + 600.0) % 1200.0 - 600.0), 300.0)
      cost = np.abs(shift[near]) / ONSET_SECONDS_SCALE + interval / ONSET_CENTS_SCALE
      start = float(perf_onsets[near][np.argmin(cost)])
      timing = float(min(start - expected, start - on_line(note.onset_s), key=abs))
    end = max(expected_end, start + hop)
    trim = EDGE_TRIM * (end - start)
    sung, fraction = _median_cents(perf_cents, hop, start + trim, end - trim)
    flags, cents = [], None
    if sung is None or fraction < MIN_SUNG_FRACTION:
      flags.append("missed")
    else:
      cents = sung + melody.offset_cents - note.cents
      folded = (cents + 600.0) % 1200.0 - 600.0
      if abs(folded - cents) > 1.0:
        flags.append("octave")
      cents = float(folded)
      if abs(cents) > WRONG_NOTE_CENTS:
        flags.append("wrong_note")
      elif cents > PITCH_FLAG_CENTS:
        flags.append("sharp")
      elif cents < -PITCH_FLAG_CENTS:
        flags.append("flat")
    if timing is not None and timing > TIMING_FLAG_SECONDS:
      flags.append("late")
    elif timing is not None and timing < -TIMING_FLAG_SECONDS:
      flags.append("early")
    out.append(NoteFeedback(
        index=i, reference_onset_s=note.onset_s, reference_offset_s=note.offset_s,
        reference_midi=69.0 + note.cents / 100.0, performance_onset_s=float(start),
        performance_offset_s=float(end), cents_error=cents, timing_error_s=timing,
        flags=tuple(f for f in NOTE_FLAGS if f in flags)))
  return out
