"""Key- and tempo-invariant melodic similarity rating `dtw_melody`.

Implements the f0-alignment measure of E. Molina, I. Barbancho, E. Gomez,
A. M. Barbancho, L. J. Tardon, "Fundamental frequency alignment vs. note-based
melodic similarity for singing voice assessment", ICASSP 2013 (its "f0
alignment" method, as opposed to its note-based one): the performance's and
the reference's f0 contours, in cents, are aligned by dynamic time warping
AFTER transposing the performance by the constant key offset that minimises
the alignment cost, with the f0 tracker's octave errors repaired first; the
mean pitch difference along the optimal alignment is the dissimilarity. Key
invariance comes from the transposition, tempo invariance from DTW itself.
Molina's system (the ICASSP paper and the 2012 UPF master thesis it builds on)
maps its similarity measures to a grade with a polynomial fitted to expert
grades; a rule-based baseline has no grades to fit, so our rating is minus
the cost (higher = better singing, like every baseline in asa_jax.baselines).
We did not have the paper's text; the steps below follow its published
outline, and every constant is our choice:

  * Contours: the voiced frames of each `Contours` (CREPE f0 with voicing,
    10 ms hop, or an f0 curve), in cents re A4, unvoiced frames dropped (as
    `dtw.dtw_pitch_rating`); fewer than MIN_FRAMES voiced frames: ValueError.
  * Octave repair (`repair_octaves`), on the performance and the reference
    alike: a stretch of frames entered and left by frame-to-frame jumps of an
    octave (1200 +- OCTAVE_JUMP_TOLERANCE_CENTS = 950..1450 cents, i.e. more
    than a major sixth and less than a minor tenth), at most
    MAX_OCTAVE_ERROR_S (1 s) long, is moved back by an octave when that brings
    it closer to the local median contour (the median of the OCTAVE_CONTEXT_S
    = 1 s of frames either side of the stretch).
  * Global tempo: when the voiced lengths differ by more than
    TEMPO_NORMALISE_RATIO (1.5), the longer sequence is block-averaged by the
    integer round(ratio), so any global tempo ratio is absorbed; both are then
    block-averaged by one common factor to at most MAX_FRAMES frames (keeping
    their tempo ratio).
  * DTW: librosa.sequence.dtw with step sizes (1, 1), (1, 2), (2, 1) (local
    tempo ratios between 1/2 and 2 relative to the global tempo) weighted
    2, 3, 3 (di + dj, so that every path has the same total weight N + M - 1
    and none is favoured for skipping cells); local cost
    min(|perf + offset - ref|, COST_CAP) cents; cost = accumulated cost /
    (N + M - 1), a weighted mean of the local costs on the path, in cents.
  * Transposition search (`best_transposition`): candidate offsets
    k * GRID_STEP_CENTS (100 cents), |k| <= GRID_STEPS (2), around two seeds:
    the difference of the medians and the peak of the cross-correlation of
    the two pitch histograms (10-cent bins, 30-cent Gaussian smoothing). The
    candidate of least DTW cost on sequences block-averaged to at most
    SEARCH_FRAMES (400) is refined by alternating (a) the offset that
    minimises the L1 cost for the current path (weighted median of
    ref - perf over the path's cells) and (b) a new DTW with it, while the cost
    drops (at most REFINE_ITERATIONS); then once more at full resolution.
  * Rating: minus the final mean cost in cents, in [-COST_CAP, 0]; 0 =
    identical up to a transposition and a time warp.
"""

from __future__ import annotations

import numpy as np

from asa_jax.baselines import contours as contours_lib
# The alignment core lives in the features layer (shared with the aligned-contour
# representation); re-exported here under its historical names.
from asa_jax.features.melody_alignment import (  # pylint: disable=unused-import
    COST_CAP, GRID_STEP_CENTS, GRID_STEPS, HISTOGRAM_BIN_CENTS,
    HISTOGRAM_SMOOTH_CENTS, MAX_FRAMES, MAX_OCTAVE_ERROR_S, MIN_FRAMES,
    OCTAVE_CONTEXT_S, OCTAVE_JUMP_TOLERANCE_CENTS, OCTAVE_PASSES,
    REFINE_ITERATIONS, REFINE_TOLERANCE_CENTS, SEARCH_FRAMES, STEP_SIZES,
    STEP_WEIGHTS, TEMPO_NORMALISE_RATIO, MelodyAlignment, _block_mean,
    align_melodies, best_transposition, dtw_cost, histogram_offset,
    repair_octaves)

MEASURE = "dtw_melody"


def melody_cents(c: contours_lib.Contours, *, repair: bool = True
                 ) -> np.ndarray:
  """float64 (V,) voiced f0 in cents re A4, octave errors repaired.

  Args:
    c: contours (f0 in Hz, 0 = unvoiced).
    repair: apply `repair_octaves`.

  Raises:
    ValueError: fewer than MIN_FRAMES voiced frames.
  """
  cents = c.voiced_cents()
  if cents.size < MIN_FRAMES:
    raise ValueError(f"too few voiced frames for a melody rating: "
                     f"{cents.size} (need {MIN_FRAMES})")
  return repair_octaves(cents, c.hop_s)[0] if repair else cents


def dtw_melody_rating(perf: contours_lib.Contours, ref: contours_lib.Contours,
                      *, repair: bool = True) -> float:
  """Key- and tempo-invariant melodic similarity rating (Molina et al. 2013).

  Minus the mean pitch distance in cents (in [-COST_CAP, 0]) between the
  performance's and the reference's voiced f0 contours, octave-repaired, after
  the best transposition and a DTW with local tempo ratios in [1/2, 2] (any
  global tempo). Higher = better singing; 0 = the same melody up to key and
  time warping.

  Args:
    perf: the performance's contours (f0 in Hz, 0 = unvoiced).
    ref: the reference's contours, same hop_s.
    repair: repair octave errors first (`repair_octaves`); False only to
      measure what the repair does.

  Raises:
    ValueError: different hop_s, fewer than MIN_FRAMES voiced frames in
      either, or too few for an admissible path (see `align_melodies`).
  """
  if not np.isclose(perf.hop_s, ref.hop_s):
    raise ValueError(f"contours have different frame periods: {perf.hop_s} s "
                     f"vs {ref.hop_s} s")
  return -align_melodies(melody_cents(perf, repair=repair),
                         melody_cents(ref, repair=repair)).cost_cents


RATINGS = {MEASURE: dtw_melody_rating}
