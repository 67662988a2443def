"""Notes of a pitch contour: runs of frames on one tuned semitone.

The measured terms (issue 18, section 5) compare a performance with its reference
note by note; the notes are read off the REFERENCE's contour (a piano rendition for
MAST, another singer for SSVD), so they do not depend on how well the performance
was sung. Rule (ours): on the voiced frames, median-filtered over MEDIAN_FRAMES,
each frame takes the nearest semitone of the contour's own tuning (the circular
mean of cents mod 100); a note is a run of frames on one semitone, within one
voiced run, at least MIN_NOTE_S long; shorter runs are transitions (glides,
consonants) and belong to no note.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage

MEDIAN_FRAMES = 5
MIN_NOTE_S = 0.08


def tuning_cents(cents: np.ndarray) -> float:
  """The contour's tuning in (-50, 50] cents: circular mean of cents mod 100."""
  c = np.asarray(cents, np.float64)
  c = c[np.isfinite(c)]
  if c.size == 0:
    return 0.0
  angle = np.angle(np.mean(np.exp(2j * np.pi * c / 100.0)))
  return float(angle / (2 * np.pi) * 100.0)


def segment_notes(cents, hop_s: float, *, min_note_s: float = MIN_NOTE_S
                  ) -> np.ndarray:
  """Notes of a contour (module doc).

  Args:
    cents: float (T,) pitch in cents re A4 per frame, nan where unvoiced.
    hop_s: frame period, seconds (> 0).
    min_note_s: shortest note, seconds.

  Returns:
    int64 (K, 2) [start, end) frame indices of the notes, in time order.

  Raises:
    ValueError: cents not 1-D, or hop_s <= 0.
  """
  c = np.asarray(cents, np.float64)
  if c.ndim != 1 or hop_s <= 0:
    raise ValueError(f"cents must be 1-D and hop_s > 0, got {c.shape}, {hop_s}")
  voiced = np.isfinite(c)
  if not voiced.any():
    return np.zeros((0, 2), np.int64)
  tuning = tuning_cents(c)
  semitone = np.full(c.shape, np.iinfo(np.int64).min)
  runs = _runs(voiced)
  for a, b in runs:
    smooth = scipy.ndimage.median_filter(c[a:b], size=MEDIAN_FRAMES, mode="nearest")
    semitone[a:b] = np.round((smooth - tuning) / 100.0).astype(np.int64)
  min_len = max(1, int(round(min_note_s / hop_s)))
  notes = []
  for a, b in runs:
    s = semitone[a:b]
    change = np.flatnonzero(np.diff(s)) + 1
    bounds = np.concatenate([[0], change, [b - a]])
    for x, y in zip(bounds[:-1], bounds[1:]):
      if y - x >= min_len:
        notes.append((a + x, a + y))
  return np.array(notes, np.int64).reshape(-1, 2)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
  """[start, end) of the runs of True in a bool array."""
  m = np.concatenate([[False], mask, [False]]).astype(np.int8)
  d = np.diff(m)
  return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))
