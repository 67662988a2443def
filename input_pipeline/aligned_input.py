"""Aligned-contour model input for the contour systems (issue 18, sections 1-3).

The performance is read on the REFERENCE's time axis, as the aligned-contour
representation of `asa_jax.features.aligned_contour` does, so the tower sees, per
reference frame, how far the singer is from the reference and how early or late:
the comparison is in the input, not left to a cosine between two global
embeddings (BUILD_NOTES.md, issue 18, "Lever 1").

An aligned window is three float32 (T,) arrays on 10 ms reference frames:

  ref_cents      the reference's pitch, cents (MIDI x 100), 0 = unvoiced;
  perf_cents     the performance's pitch at the aligned frame, cents, 0 = unvoiced
                 (any transposition; `aligned_channels` removes it);
  perf_offset    aligned performance frame minus reference frame (frames at 100 Hz).

Two sources give the same arrays:
  * training: `from_degradation`, the EXACT alignment known from the on-device
    degradation's time map (`contour_degrade.Result.time_map_frames`), inside the
    jitted step;
  * real pairs: `real_pair_windows`, the DTW alignment of `aligned_contour` (the key-
    and tempo-invariant alignment of dtw_melody) on the host.

`aligned_channels` turns them into the tower's input, float32 (B, CHANNELS, T).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from asa_jax.features import aligned_contour as aligned_lib

FRAME_SECONDS = 0.01
CHANNELS = 7
SMOOTH_FRAMES = 21  # the DTW warp, moving-averaged over 0.2 s: DTW alone follows a vibrato's phase.
TEMPO_HALF_WINDOW = 50  # frames: the local tempo over +-0.5 s (aligned_contour's).
_A4_MIDI_CENTS = 6900.0  # cents re A4 -> MIDI x 100.


def _weighted_line(y: jnp.ndarray, w: jnp.ndarray) -> jnp.ndarray:
  """(B, T) least-squares line through y with weights w (0/1), evaluated at every t."""
  t = jnp.arange(y.shape[1], dtype=jnp.float32)[None]
  sw = jnp.maximum(w.sum(1, keepdims=True), 1.0)
  tm = (w * t).sum(1, keepdims=True) / sw
  ym = (w * y).sum(1, keepdims=True) / sw
  var = (w * (t - tm) ** 2).sum(1, keepdims=True)
  slope = (w * (t - tm) * (y - ym)).sum(1, keepdims=True) / jnp.maximum(var, 1e-6)
  return ym + slope * (t - tm)


def aligned_channels(ref_cents: jnp.ndarray, perf_cents: jnp.ndarray,
                     perf_offset: jnp.ndarray, *, timing: bool = True) -> jnp.ndarray:
  """The tower's input of aligned windows: three (B, T) arrays -> float32 (B, 7, T).

  Channels (0 where a frame has no value):
    0  pitch deviation, semitones, clipped to +-3: performance minus reference after
       the octave fold and the transposition (the median deviation) are removed;
    1  tanh(deviation / 50 cents): resolution for intonation errors of tens of cents;
    2  performance voiced at the aligned frame (0/1);
    3  reference voiced (0/1);
    4  timing residual: the aligned offset minus its least-squares line over the
       reference's voiced frames (a global tempo and a global delay are not errors),
       in units of 0.2 s, clipped to +-3;
    5  local tempo: the residual's slope over +-0.5 s (0 = in time), x 4, clipped;
    6  the reference's pitch minus its median voiced pitch, octaves (where the notes
       are, in the melody's own shape).
  Invariant to a transposition, a global tempo change and a delay of the performance.
  `timing=False` zeroes channels 4 and 5 (pitch only).
  """
  ref_cents, perf_cents = ref_cents.astype(jnp.float32), perf_cents.astype(jnp.float32)
  rv, pv = ref_cents > 0, perf_cents > 0
  both = rv & pv
  dev = perf_cents - ref_cents
  dev = dev - 1200.0 * jnp.round(dev / 1200.0)  # tracker octave errors fold away.
  med = jnp.nanmedian(jnp.where(both, dev, jnp.nan), axis=1, keepdims=True)
  dev = dev - jnp.where(jnp.isfinite(med), med, 0.0)
  dev = jnp.where(both, dev - 1200.0 * jnp.round(dev / 1200.0), 0.0)
  rvf, pvf = rv.astype(jnp.float32), pv.astype(jnp.float32)
  off = perf_offset.astype(jnp.float32) * FRAME_SECONDS
  resid = off - _weighted_line(off, rvf)
  h = TEMPO_HALF_WINDOW
  pad = jnp.pad(resid, ((0, 0), (h, h)), mode="edge")
  tempo = (pad[:, 2 * h:] - pad[:, :-2 * h]) / (2 * h * FRAME_SECONDS)
  rmed = jnp.nanmedian(jnp.where(rv, ref_cents, jnp.nan), axis=1, keepdims=True)
  rel = jnp.where(rv, ref_cents - jnp.where(jnp.isfinite(rmed), rmed, 0.0), 0.0)
  keep = rvf * float(timing)
  return jnp.stack([jnp.clip(dev / 100.0, -3.0, 3.0), jnp.tanh(dev / 50.0) * both,
                    pvf, rvf, jnp.clip(resid / 0.2, -3.0, 3.0) * keep,
                    jnp.clip(4.0 * tempo, -3.0, 3.0) * keep, rel / 1200.0],
                   axis=1).astype(jnp.float32)


def self_aligned(ref_cents: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
  """The reference aligned with itself (Rori's anchor): (ref, ref, zeros), (B, T)."""
  return ref_cents, ref_cents, jnp.zeros_like(ref_cents, jnp.float32)


def from_degradation(ref_cents: jnp.ndarray, perf_cents: jnp.ndarray,
                     time_map_frames: jnp.ndarray) -> tuple[jnp.ndarray, ...]:
  """Aligned windows of on-device degradations, through their exact time map.

  Args:
    ref_cents: float32 (B, T) the clean contour (cents, 0 = unvoiced).
    perf_cents: float32 (B, T) its degraded version, on the output frames.
    time_map_frames: float32 (B, T) output frame of each source frame
      (`contour_degrade.Result.time_map_frames`).

  Returns:
    (ref_cents, perf_cents on the reference frames, perf_offset), float32 (B, T);
    frames mapped outside the output window are unvoiced.
  """
  t = ref_cents.shape[1]
  u = jnp.round(time_map_frames).astype(jnp.int32)
  inside = (u >= 0) & (u < t)
  warped = jnp.take_along_axis(perf_cents, jnp.clip(u, 0, t - 1), axis=1)
  offset = time_map_frames - jnp.arange(t, dtype=jnp.float32)[None]
  return ref_cents, jnp.where(inside, warped, 0.0), offset


def real_pair_windows(performance: np.ndarray, reference: np.ndarray,
                      window_frames: int, smooth_frames: int = SMOOTH_FRAMES, *,
                      aligned=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A real (performance, reference) pair of 10 ms cents tracks -> K aligned windows.

  The performance is aligned to the reference by `aligned_contour.aligned_contour`
  (octave repair, the best transposition, slope-constrained DTW), read on the
  reference's frames, trimmed to the reference's voiced span and cut into
  K = ceil(span / T) windows (evenly spaced starts, the last ending at the span's
  end; a shorter span is one window padded with unvoiced frames).

  Args:
    performance, reference: (N,) / (M,) cents (MIDI x 100) at 10 ms, 0 = unvoiced.
    window_frames: T.
    aligned: the pair's `aligned_contour.AlignedContour` when the caller has it
      already (the same f0 at 10 ms): its DTW is not run again.

  Returns:
    (ref_cents, perf_cents, perf_offset): float32 (K, T) each (module docstring).

  Raises:
    ValueError: too few voiced frames in either to align (names which).
  """
  perf = np.asarray(performance, np.float64)
  ref = np.asarray(reference, np.float64)
  hz = lambda c: np.where(c > 0, 440.0 * 2.0 ** ((c - _A4_MIDI_CENTS) / 1200.0), 0.0)
  ac = aligned if aligned is not None else aligned_lib.aligned_contour(
      hz(perf), hz(ref), hop_s=FRAME_SECONDS)
  m = ac.n_frames
  warp = ac.perf_frame
  if smooth_frames > 1:
    warp = np.maximum.accumulate(scipy.ndimage.uniform_filter1d(
        warp, smooth_frames, mode="nearest"))
  near = np.round(warp).astype(np.int64)
  ok = (near >= 0) & (near < len(ac.perf_cents))
  p = np.full(m, np.nan)
  p[ok] = ac.perf_cents[near[ok]]
  p_c = np.where(np.isfinite(p), p + ac.offset_cents + _A4_MIDI_CENTS, 0.0)
  r_c = np.where(ac.ref_voiced, ac.ref_cents + _A4_MIDI_CENTS, 0.0)
  offset = warp - np.arange(m)
  v = np.flatnonzero(r_c > 0)
  lo, hi = v[0], v[-1] + 1
  span = hi - lo
  k = max(1, int(np.ceil(span / window_frames)))
  starts = np.linspace(lo, max(hi - window_frames, lo), k).round().astype(int)
  out = np.zeros((3, k, window_frames), np.float32)
  for i, s in enumerate(starts):
    e = min(s + window_frames, hi)
    for j, x in enumerate((r_c, p_c, offset)):
      out[j, i, :e - s] = x[s:e]
  return out[0], out[1], out[2]
