"""Key- and tempo-invariant alignment of two melodies' pitch sequences.

The alignment core of the melodic similarity rating `dtw_melody`
(asa_jax.baselines.dtw_melody; E. Molina, I. Barbancho, E. Gomez,
A. M. Barbancho, L. J. Tardon, "Fundamental frequency alignment vs. note-based
melodic similarity for singing voice assessment", ICASSP 2013, its "f0
alignment" method), in the features layer so that the aligned-contour
representation (asa_jax.features.aligned_contour) and the baselines share it.
It works on plain numpy pitch sequences in cents (voiced frames only), from any
f0 source. The choices (every constant is ours; we did not have the paper's
text):

  * Octave repair (`repair_octaves`): a stretch of frames entered and left by
    frame-to-frame jumps of an octave (1200 +- OCTAVE_JUMP_TOLERANCE_CENTS),
    at most MAX_OCTAVE_ERROR_S long, is moved back by an octave when that
    brings it closer to the median of the OCTAVE_CONTEXT_S of frames either
    side.
  * Global tempo: when the lengths differ by more than TEMPO_NORMALISE_RATIO,
    the longer sequence is block-averaged by round(ratio); both are then
    block-averaged by one common factor to at most MAX_FRAMES frames.
  * DTW (`dtw_cost`): librosa.sequence.dtw with steps (1, 1), (1, 2), (2, 1)
    weighted 2, 3, 3 (local tempo ratios 1/2..2; every path has total weight
    N + M - 1); local cost min(|perf + offset - ref|, COST_CAP) cents.
  * Transposition search (`best_transposition`): offsets every
    GRID_STEP_CENTS within GRID_STEPS steps of the difference of medians and
    of the pitch-histogram cross-correlation peak (`histogram_offset`), the
    best refined by alternating the path's weighted-median offset and a new DTW.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import threading

import numpy as np
import scipy.ndimage

FRAME_SECONDS = 0.01  # the project's contour frame period (10 ms).
MIN_FRAMES = 2  # voiced frames (as asa_jax.baselines.dtw.MIN_FRAMES).
COST_CAP = 600.0  # cents; a wrong note costs at most a tritone (as dtw_pitch).
STEP_SIZES = np.array([[1, 1], [1, 2], [2, 1]])  # local tempo ratio 1/2..2.
STEP_WEIGHTS = np.array([2.0, 3.0, 3.0])  # di + dj: no path length is favoured.
TEMPO_NORMALISE_RATIO = 1.5
MAX_FRAMES = 3000  # final DTW, per sequence (as asa_jax.baselines.dtw).
SEARCH_FRAMES = 400  # transposition search, per sequence.
GRID_STEP_CENTS = 100.0
GRID_STEPS = 2  # candidates at seed + k * GRID_STEP_CENTS, |k| <= GRID_STEPS.
HISTOGRAM_BIN_CENTS = 10.0
HISTOGRAM_SMOOTH_CENTS = 30.0  # Gaussian sigma of the histogram smoothing.
REFINE_ITERATIONS = 8
REFINE_TOLERANCE_CENTS = 1e-3  # stop refining when the cost drops less.
OCTAVE_JUMP_TOLERANCE_CENTS = 250.0  # octave jump: 1200 +- this per frame.
MAX_OCTAVE_ERROR_S = 1.0  # longest stretch folded as an octave error, seconds.
OCTAVE_CONTEXT_S = 1.0  # local median: frames this long before and after.
OCTAVE_PASSES = 3


@dataclasses.dataclass(frozen=True)
class MelodyAlignment:
  """Result of `align_melodies`.

  Attributes:
    offset_cents: the key offset added to the performance (cents; e.g. -300
      when the performance is 3 semitones above the reference).
    cost_cents: mean local cost along the warping path (cents, in
      [0, COST_CAP]).
    path: int (L, 2) warping path, rows (i, j) in increasing order, indices
      into the block-averaged performance / reference sequences.
    perf_factor: block size (voiced frames per DTW frame) of the performance.
    ref_factor: block size of the reference.
  """
  offset_cents: float
  cost_cents: float
  path: np.ndarray
  perf_factor: int
  ref_factor: int


def _octave_jumps(x: np.ndarray) -> np.ndarray:
  """Indices i where x[i] -> x[i + 1] jumps by about an octave."""
  jump = np.abs(np.diff(x))
  return np.flatnonzero(np.abs(jump - 1200.0) <= OCTAVE_JUMP_TOLERANCE_CENTS)


def repair_octaves(cents: np.ndarray, hop_s: float = FRAME_SECONDS
                   ) -> tuple[np.ndarray, int]:
  """Folds f0-tracker octave errors back (Molina et al. 2013, f0 alignment).

  An f0 tracker's octave error is a stretch of frames an octave off the
  melody around it, entered and left by an abrupt jump. Here a candidate is a
  stretch of frames bounded by two consecutive octave jumps (successive
  voiced frames 1200 +- OCTAVE_JUMP_TOLERANCE_CENTS apart) of opposite
  direction, or by the first (last) octave jump and the start (end) of the
  contour, that lasts at most MAX_OCTAVE_ERROR_S. It is moved by one octave
  (towards the jumps' far side) when that brings its median closer to the local
  median contour: the median of the frames within OCTAVE_CONTEXT_S before and
  after it (the stretch itself excluded). Repeated (at most OCTAVE_PASSES
  passes) until nothing moves. Genuine melodic leaps smaller than
  1200 - OCTAVE_JUMP_TOLERANCE_CENTS are never candidates; a genuine octave
  excursion shorter than MAX_OCTAVE_ERROR_S with abrupt jumps both ways is
  folded like an error.

  Args:
    cents: float (V,) pitch in cents of the voiced frames, in frame order.
    hop_s: seconds per frame (sets the durations in frames).

  Returns:
    (repaired float64 (V,) cents, number of frames moved).

  Raises:
    ValueError: cents not 1D or not finite, or hop_s <= 0.
  """
  x = np.array(cents, np.float64)
  if x.ndim != 1 or not np.all(np.isfinite(x)):
    raise ValueError(f"cents must be a finite 1D array, got shape {x.shape}")
  if hop_s <= 0:
    raise ValueError(f"hop_s must be > 0, got {hop_s}")
  max_len = max(1, int(round(MAX_OCTAVE_ERROR_S / hop_s)))
  context = max(1, int(round(OCTAVE_CONTEXT_S / hop_s)))
  moved = 0
  for _ in range(OCTAVE_PASSES):
    jumps = _octave_jumps(x)
    if jumps.size == 0:
      break
    # Stretches [a, b) and the direction of the octave jump into them
    # (+1 = the stretch is an octave above its neighbours).
    stretches = [(0, jumps[0] + 1, -np.sign(x[jumps[0] + 1] - x[jumps[0]]))]
    for i, j in zip(jumps[:-1], jumps[1:]):
      up_in = np.sign(x[i + 1] - x[i])
      if up_in == -np.sign(x[j + 1] - x[j]):
        stretches.append((i + 1, j + 1, up_in))
    stretches.append((jumps[-1] + 1, len(x),
                      np.sign(x[jumps[-1] + 1] - x[jumps[-1]])))
    fold = np.zeros_like(x)
    for a, b, direction in stretches:
      if b - a > max_len:
        continue
      around = np.concatenate([x[max(0, a - context):a], x[b:b + context]])
      median = np.median(x[a:b])
      local = np.median(around)
      if abs(median - 1200.0 * direction - local) < abs(median - local):
        fold[a:b] = direction
    n = int(np.count_nonzero(fold))
    if n == 0:
      break
    x -= 1200.0 * fold
    moved += n
  return x, moved


def block_mean(x: np.ndarray, factor: int) -> np.ndarray:
  """float64 (ceil(N / factor),) means of consecutive blocks of `factor` values of
  x (N,) (the last block may be short); x itself when factor <= 1."""
  if factor <= 1:
    return x
  n = len(x) // factor * factor
  head = x[:n].reshape(-1, factor).mean(axis=1)
  return np.concatenate([head, [x[n:].mean()]]) if n < len(x) else head


def _reachable(n: int, m: int) -> bool:
  """Whether STEP_SIZES lead from cell (0, 0) to (n - 1, m - 1)."""
  return m - 1 <= 2 * (n - 1) and n - 1 <= 2 * (m - 1)


def tempo_factors(n: int, m: int, max_frames: int) -> tuple[int, int]:
  """Block sizes (fp, fr) of perf (n frames) and ref (m frames): the longer one is
  first averaged by the rounded tempo ratio when it exceeds TEMPO_NORMALISE_RATIO,
  then both by one common factor so that neither exceeds max_frames."""
  fp = fr = 1
  if n > TEMPO_NORMALISE_RATIO * m:
    fp = int(round(n / m))
  elif m > TEMPO_NORMALISE_RATIO * n:
    fr = int(round(m / n))
  common = max(1, -(-max(-(-n // fp), -(-m // fr)) // max_frames))
  return fp * common, fr * common


def path_weights(path: np.ndarray) -> np.ndarray:
  """float64 (L,) weight of each path cell: 1 for the first, then di + dj."""
  return np.concatenate([[1.0], np.diff(path, axis=0).sum(axis=1)]).astype(
      np.float64)


def octave_distance(d: np.ndarray) -> np.ndarray:
  """|d| (cents) to the nearest whole number of octaves: 0..600 cents."""
  return np.abs((np.asarray(d, np.float64) + 600.0) % 1200.0 - 600.0)


def dtw_cost(perf: np.ndarray, ref: np.ndarray, offset_cents: float = 0.0, *,
             fold_octaves: bool = False) -> tuple[float, np.ndarray]:
  """Mean capped pitch distance along the slope-constrained DTW path.

  Args:
    perf: float (N,) performance pitch in cents; ref: float (M,) reference
      pitch in cents, with M - 1 <= 2 (N - 1) and N - 1 <= 2 (M - 1).
    offset_cents: added to perf (the transposition).
    fold_octaves: local distance to the nearest octave (`octave_distance`): a
      passage sung an octave off costs nothing (the alignment confidence's
      octave tolerance, issue 19); the default is the plain distance.

  Returns:
    (cost, path): cost = D[N-1, M-1] / (N + M - 1) in cents, D the accumulated
    cost of librosa.sequence.dtw with STEP_SIZES and STEP_WEIGHTS on the local
    cost min(|perf_i + offset - ref_j|, COST_CAP): every path's weights sum to
    N + M - 1, so the cost is a weighted mean of the local costs on the path,
    in [0, COST_CAP]; path int (L, 2) cells (i, j) in increasing order.

  Raises:
    ValueError: the lengths admit no path with STEP_SIZES.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (slow import)
  perf = np.asarray(perf, np.float64)
  ref = np.asarray(ref, np.float64)
  if not _reachable(len(perf), len(ref)):
    raise ValueError(f"no DTW path with local tempo ratios in [1/2, 2] "
                     f"between {len(perf)} and {len(ref)} frames")
  # The (N, M) local cost in one buffer, in place (the same values as the
  # expressions of `octave_distance` and min(|d|, COST_CAP)): for 3,000-frame
  # melodies each extra (N, M) temporary is 72 MB of a scoring's peak memory.
  cost = np.subtract.outer(perf + offset_cents, ref)
  if fold_octaves:
    cost += 600.0
    np.mod(cost, 1200.0, out=cost)
    cost -= 600.0
  np.abs(cost, out=cost)
  np.minimum(cost, COST_CAP, out=cost)
  acc, path = librosa.sequence.dtw(C=cost, step_sizes_sigma=STEP_SIZES,
                                   weights_mul=STEP_WEIGHTS, backtrack=True)
  return (float(acc[-1, -1] / (len(perf) + len(ref) - 1)),
          np.ascontiguousarray(path[::-1]))


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
  """Smallest x whose cumulative weight reaches half the total."""
  order = np.argsort(x)
  cum = np.cumsum(w[order])
  return float(x[order][np.searchsorted(cum, 0.5 * cum[-1])])


def histogram_offset(perf: np.ndarray, ref: np.ndarray) -> float:
  """Key offset (cents) at the peak of the pitch histograms' cross-correlation.

  Histograms of HISTOGRAM_BIN_CENTS bins over the joint range, smoothed with
  a Gaussian (sigma HISTOGRAM_SMOOTH_CENTS); the lag of the largest
  cross-correlation value, in cents (to be added to perf).

  Args:
    perf: float (N,) cents, N >= 1; ref: float (M,) cents, M >= 1, finite.

  Returns:
    The offset in cents, a multiple of HISTOGRAM_BIN_CENTS.
  """
  perf = np.asarray(perf, np.float64)
  ref = np.asarray(ref, np.float64)
  lo = min(perf.min(), ref.min()) - 2 * HISTOGRAM_BIN_CENTS
  hi = max(perf.max(), ref.max()) + 2 * HISTOGRAM_BIN_CENTS
  edges = np.arange(lo, hi + HISTOGRAM_BIN_CENTS, HISTOGRAM_BIN_CENTS)
  sigma = HISTOGRAM_SMOOTH_CENTS / HISTOGRAM_BIN_CENTS
  hp = scipy.ndimage.gaussian_filter1d(
      np.histogram(perf, edges)[0].astype(np.float64), sigma, mode="constant")
  hr = scipy.ndimage.gaussian_filter1d(
      np.histogram(ref, edges)[0].astype(np.float64), sigma, mode="constant")
  xcorr = np.correlate(hr, hp, mode="full")  # index k: perf shifted k-(B-1).
  return float((np.argmax(xcorr) - (len(hp) - 1)) * HISTOGRAM_BIN_CENTS)


def _refine(perf, ref, offset, cost, path):
  """Alternates the L1-optimal offset for the path and a new DTW."""
  for _ in range(REFINE_ITERATIONS):
    new_offset = _weighted_median(ref[path[:, 1]] - perf[path[:, 0]],
                                  path_weights(path))
    new_cost, new_path = dtw_cost(perf, ref, new_offset)
    if new_cost >= cost - REFINE_TOLERANCE_CENTS:
      break
    offset, cost, path = new_offset, new_cost, new_path
  return offset, cost, path


def _search(perf: np.ndarray, ref: np.ndarray
            ) -> tuple[float, float, np.ndarray]:
  """(offset, cost, path) of the transposition search (`best_transposition`)."""
  seeds = (float(np.median(ref) - np.median(perf)),
           histogram_offset(perf, ref))
  candidates: list[float] = []
  for seed in seeds:
    for k in range(-GRID_STEPS, GRID_STEPS + 1):
      o = seed + k * GRID_STEP_CENTS
      if all(abs(o - c) > 0.2 * GRID_STEP_CENTS for c in candidates):
        candidates.append(o)
  results = [(dtw_cost(perf, ref, o), o) for o in candidates]
  (cost, path), offset = min(results, key=lambda r: r[0][0])
  return _refine(perf, ref, offset, cost, path)


def best_transposition(perf: np.ndarray, ref: np.ndarray) -> float:
  """Key offset (cents) minimising the DTW cost of perf + offset vs ref.

  Molina et al. 2013's transposition to the reference's key, searched as the
  module doc says: candidates every GRID_STEP_CENTS within
  GRID_STEPS * GRID_STEP_CENTS of the difference of medians and of the
  histogram cross-correlation peak (`histogram_offset`), the best by
  `dtw_cost`, then alternating weighted path-median offset / new DTW while the
  cost drops.

  Args:
    perf: float (N,) performance cents; ref: float (M,) reference cents, both
      finite and of lengths that admit a DTW path (see `dtw_cost`).

  Returns:
    The offset in cents to add to perf.

  Raises:
    ValueError: the lengths admit no path (see `dtw_cost`).
  """
  return _search(np.asarray(perf, np.float64),
                 np.asarray(ref, np.float64))[0]


# The last few results of align_melodies, keyed by the exact inputs: one scoring
# aligns the same two melodies twice (the melody map of `assess.alignment` and the
# aligned contour of the pair's terms), and each costs 1.3 s for 3-minute songs.
_MEMO_SIZE = 4
_memo: collections.OrderedDict = collections.OrderedDict()
_memo_lock = threading.Lock()


def _key(perf: np.ndarray, ref: np.ndarray) -> str:
  digest = hashlib.sha256()
  for x in (perf, ref):
    digest.update(np.int64(x.size).tobytes())
    digest.update(np.ascontiguousarray(x).tobytes())
  return digest.hexdigest()


def align_melodies(perf_cents: np.ndarray, ref_cents: np.ndarray
                   ) -> MelodyAlignment:
  """Transposition-optimal, slope-constrained DTW of two pitch sequences.

  Molina et al. 2013's f0 alignment with the choices of the module doc:
  global tempo normalisation, transposition search (`best_transposition`) on
  sequences of at most SEARCH_FRAMES, final DTW on at most MAX_FRAMES with one
  more refinement. The last _MEMO_SIZE results are kept, keyed by the exact input
  values (float64), so aligning the same pair again costs a hash (the returned
  path is read-only).

  Args:
    perf_cents: float (N,) performance pitch in cents (voiced frames, octave
      errors already repaired), N >= MIN_FRAMES.
    ref_cents: float (M,) reference pitch in cents, M >= MIN_FRAMES.

  Returns:
    MelodyAlignment (offset, mean cost in cents, path, block sizes).

  Raises:
    ValueError: fewer than MIN_FRAMES values or non-finite values in either,
      or sequences too short for any admissible path (e.g. 2 vs 5 frames).
  """
  perf = np.asarray(perf_cents, np.float64).reshape(-1)
  ref = np.asarray(ref_cents, np.float64).reshape(-1)
  for name, x in (("performance", perf), ("reference", ref)):
    if x.size < MIN_FRAMES:
      raise ValueError(f"too few voiced frames in the {name} for a melody "
                       f"rating: {x.size} (need {MIN_FRAMES})")
    if not np.all(np.isfinite(x)):
      raise ValueError(f"non-finite pitch values in the {name}")
  key = _key(perf, ref)
  with _memo_lock:
    if key in _memo:
      _memo.move_to_end(key)
      return _memo[key]
  result = _align(perf, ref)
  result.path.flags.writeable = False
  with _memo_lock:
    _memo[key] = result
    while len(_memo) > _MEMO_SIZE:
      _memo.popitem(last=False)
  return result


def _align(perf: np.ndarray, ref: np.ndarray) -> MelodyAlignment:
  """`align_melodies` without the checks and the memo."""
  sp, sr = tempo_factors(len(perf), len(ref), SEARCH_FRAMES)
  offset, cost, path = _search(block_mean(perf, sp), block_mean(ref, sr))
  fp, fr = tempo_factors(len(perf), len(ref), MAX_FRAMES)
  if (fp, fr) != (sp, sr):  # refine at the final resolution.
    p, r = block_mean(perf, fp), block_mean(ref, fr)
    cost, path = dtw_cost(p, r, offset)
    offset, cost, path = _refine(p, r, offset, cost, path)
  return MelodyAlignment(offset_cents=offset, cost_cents=cost, path=path,
                         perf_factor=fp, ref_factor=fr)
