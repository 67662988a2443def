"""Aligned-contour representation: a performance against its reference, per frame.

Issue 18, section 1. Compares WHAT WAS SUNG, not what the recording sounds like:
the performance's f0 contour is aligned to the reference's by the key- and
tempo-invariant alignment of `dtw_melody` (asa_jax.features.melody_alignment;
Molina et al., ICASSP 2013: octave repair, the transposition that minimises the
DTW cost, slope-constrained DTW), and every channel is then read on the
REFERENCE's time axis, one value per reference frame at `hop_s` (10 ms for the
project's contours):

  pitch_deviation_cents  performance pitch + transposition - reference pitch,
                         cents (nan where either is unvoiced);
  perf_voiced, ref_voiced  voicing of the aligned performance frame / reference;
  local_tempo            the warp's slope: performance frames per reference frame
                         over +-TEMPO_HALF_WINDOW_S (1 = same tempo, 2 = the
                         performance takes twice as long here);
  perf_energy_db, ref_energy_db  energy in dB re each recording's median voiced
                         energy (nan when the source has no energy, e.g. MAST);
  perf_onset_strength, ref_onset_strength  onset strength scaled to [0, 1] by its
                         maximum (nan when not given);
  perf_relative_cents    the performance's own pitch minus its median voiced
                         pitch, cents (nan where unvoiced).

Built from plain numpy arrays, from any f0 source: CREPE on audio
(asa_jax.features.crepe), MAST's f0 curves, MIR-1K's PitchLabel (MIDI at 20 ms:
`midi_frames_to_hz` then `to_frame_grid`), contours rendered from note labels
(`notes_to_hz`). Both inputs must be on the same frame grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from asa_jax.features import melody_alignment as alignment_lib

FRAME_SECONDS = alignment_lib.FRAME_SECONDS  # 10 ms.
TEMPO_HALF_WINDOW_S = 0.5  # local tempo: warp slope over +-0.5 s.

CHANNELS = ("pitch_deviation_cents", "perf_voiced", "ref_voiced", "local_tempo",
            "perf_energy_db", "ref_energy_db", "perf_onset_strength",
            "ref_onset_strength", "perf_relative_cents")


@dataclasses.dataclass(frozen=True)
class AlignedContour:
  """A performance aligned to its reference, on the reference's frames (M of them).

  Attributes (float32 (M,) unless stated; channels as in the module doc):
    hop_s: frame period in seconds (both inputs').
    pitch_deviation_cents, perf_voiced (bool), ref_voiced (bool), local_tempo,
    perf_energy_db, ref_energy_db, perf_onset_strength, ref_onset_strength,
    perf_relative_cents: the channels.
    ref_cents: float64 (M,) the reference's pitch in cents re A4, octaves
      repaired (nan where unvoiced): where the notes are.
    perf_cents: float64 (N,) the performance's own pitch in cents re A4 on its
      own frames, octaves repaired, nan where unvoiced.
    perf_frame: float64 (M,) the performance frame (fractional, non-decreasing)
      aligned with each reference frame.
    offset_cents: transposition added to the performance, cents.
    cost_cents: the alignment's mean capped pitch distance, cents (-dtw_melody).
  """
  hop_s: float
  pitch_deviation_cents: np.ndarray
  perf_voiced: np.ndarray
  ref_voiced: np.ndarray
  local_tempo: np.ndarray
  perf_energy_db: np.ndarray
  ref_energy_db: np.ndarray
  perf_onset_strength: np.ndarray
  ref_onset_strength: np.ndarray
  perf_relative_cents: np.ndarray
  ref_cents: np.ndarray
  perf_cents: np.ndarray
  perf_frame: np.ndarray
  offset_cents: float
  cost_cents: float

  @property
  def n_frames(self) -> int:
    """Number of aligned frames M."""
    return int(self.ref_cents.shape[0])

  def stack(self) -> np.ndarray:
    """float32 (M, len(CHANNELS)) the channels in CHANNELS order (bools as 0/1)."""
    return np.stack([np.asarray(getattr(self, c), np.float32) for c in CHANNELS],
                    axis=1)


def hz_to_cents(f0_hz) -> tuple[np.ndarray, np.ndarray]:
  """(float64 (T,) cents re A4 with nan where unvoiced, bool (T,) voiced).

  f0 <= 0 or non-finite = unvoiced.
  """
  f0 = np.asarray(f0_hz, np.float64).reshape(-1)
  voiced = np.isfinite(f0) & (f0 > 0)
  cents = np.full(f0.shape, np.nan)
  cents[voiced] = 1200.0 * np.log2(f0[voiced] / 440.0)
  return cents, voiced


def midi_frames_to_hz(midi) -> np.ndarray:
  """float64 (T,) Hz of MIDI pitch frames (MIR-1K PitchLabel; 0 = unvoiced -> 0 Hz)."""
  m = np.asarray(midi, np.float64).reshape(-1)
  return np.where(m > 0, 440.0 * 2.0 ** ((m - 69.0) / 12.0), 0.0)


def to_frame_grid(times_s, values, hop_s: float = FRAME_SECONDS) -> np.ndarray:
  """Nearest-frame resampling of a curve to frames k * hop_s, k = 0..last time.

  Args:
    times_s: (N,) ascending times, seconds (e.g. MIR-1K's 20 ms frames, MAST's
      2.9 ms).
    values: (N,) values (f0 in Hz, 0 = unvoiced; or anything else).
    hop_s: output frame period, seconds.

  Returns:
    float64 (floor(times[-1] / hop_s) + 1,) values of the nearest input frame.

  Raises:
    ValueError: shapes differ, empty, times not ascending, or hop_s <= 0.
  """
  t = np.asarray(times_s, np.float64).reshape(-1)
  v = np.asarray(values, np.float64).reshape(-1)
  if t.shape != v.shape or t.size == 0:
    raise ValueError(f"times {t.shape} and values {v.shape}: need equal, non-empty")
  if np.any(np.diff(t) < 0) or hop_s <= 0:
    raise ValueError("times must be ascending and hop_s > 0")
  grid = np.arange(int(np.floor(max(t[-1], 0.0) / hop_s)) + 1) * hop_s
  if t.size == 1:
    return np.full(grid.shape, v[0])
  idx = np.clip(np.searchsorted(t, grid), 1, t.size - 1)
  left = idx - 1
  idx = np.where(np.abs(t[left] - grid) <= np.abs(t[idx] - grid), left, idx)
  return v[idx]


def notes_to_hz(onsets_s, offsets_s, midi, hop_s: float = FRAME_SECONDS
                ) -> np.ndarray:
  """f0 in Hz on frames k * hop_s rendered from note labels (e.g. SSVD v2).

  Args:
    onsets_s, offsets_s: (K,) note start and end times, seconds (offset > onset).
    midi: (K,) note pitch, MIDI (float allowed); <= 0 skips the note.
    hop_s: frame period, seconds.

  Returns:
    float64 (ceil(max offset / hop_s) + 1,) f0 in Hz, 0 between notes.

  Raises:
    ValueError: shapes differ or no note.
  """
  on = np.asarray(onsets_s, np.float64).reshape(-1)
  off = np.asarray(offsets_s, np.float64).reshape(-1)
  m = np.asarray(midi, np.float64).reshape(-1)
  if not on.shape == off.shape == m.shape or on.size == 0:
    raise ValueError("onsets, offsets and midi must be equal, non-empty (K,)")
  out = np.zeros(int(np.ceil(off.max() / hop_s)) + 1)
  for a, b, p in zip(on, off, m):
    if p > 0 and b > a:
      out[int(round(a / hop_s)):int(round(b / hop_s))] = 440.0 * 2.0 ** ((p - 69) / 12)
  return out


def _normalised_db(db, voiced) -> np.ndarray:
  if db is None:
    return None
  db = np.asarray(db, np.float64).reshape(-1)
  ref = db[voiced[:db.size]] if np.any(voiced[:db.size]) else db
  return db - np.median(ref)


def _scaled_onsets(x) -> np.ndarray | None:
  if x is None:
    return None
  x = np.asarray(x, np.float64).reshape(-1)
  top = np.max(x) if x.size else 0.0
  return x / top if top > 0 else np.zeros_like(x)


def _frame_warp(path, perf_idx, ref_idx, n_ref: int) -> np.ndarray:
  """Performance frame (fractional) of every reference frame 0..n_ref-1."""
  p = perf_idx[path[:, 0]]
  r = ref_idx[path[:, 1]]
  r_u, inverse = np.unique(r, return_inverse=True)
  p_u = np.bincount(inverse, p) / np.bincount(inverse)
  k = np.arange(n_ref, dtype=np.float64)
  if r_u.size >= 2:
    slope = (p_u[-1] - p_u[0]) / max(r_u[-1] - r_u[0], 1e-9)
    warp = np.interp(k, r_u, p_u)
    warp = np.where(k < r_u[0], p_u[0] + slope * (k - r_u[0]), warp)
    warp = np.where(k > r_u[-1], p_u[-1] + slope * (k - r_u[-1]), warp)
  else:
    warp = p_u[0] + (k - r_u[0])
  return np.maximum.accumulate(warp)


def _take(x, idx) -> np.ndarray:
  """x at integer frames idx, nan outside [0, len(x))."""
  if x is None:
    return np.full(idx.shape, np.nan, np.float32)
  inside = (idx >= 0) & (idx < len(x))
  out = np.full(idx.shape, np.nan)
  out[inside] = np.asarray(x, np.float64)[idx[inside]]
  return out.astype(np.float32)


def aligned_contour(perf_f0_hz, ref_f0_hz, *, hop_s: float = FRAME_SECONDS,
                    perf_energy_db=None, ref_energy_db=None,
                    perf_onset_strength=None, ref_onset_strength=None,
                    repair: bool = True) -> AlignedContour:
  """Aligns a performance's f0 contour to its reference's (module doc).

  Args:
    perf_f0_hz: (N,) performance f0 in Hz per frame (<= 0 or nan = unvoiced).
      Cents sources convert with 440 * 2 ** (cents / 1200).
    ref_f0_hz: (M,) reference f0 in Hz per frame, same frame period.
    hop_s: the frame period, seconds (10 ms for the project's contours).
    perf_energy_db, ref_energy_db: optional (N,) / (M,) energy in dB.
    perf_onset_strength, ref_onset_strength: optional (N,) / (M,) onset strength
      (e.g. librosa.onset.onset_strength at the same hop), any scale.
    repair: repair f0-tracker octave errors first (`repair_octaves`).

  Returns:
    AlignedContour with M reference frames.

  Raises:
    ValueError: fewer than alignment_lib.MIN_FRAMES voiced frames in either
      (names which), or sequences too short for an admissible DTW path.
  """
  perf_c, perf_v = hz_to_cents(perf_f0_hz)
  ref_c, ref_v = hz_to_cents(ref_f0_hz)
  for name, v in (("performance", perf_v), ("reference", ref_v)):
    if v.sum() < alignment_lib.MIN_FRAMES:
      raise ValueError(f"too few voiced frames in the {name} to align: "
                       f"{int(v.sum())} (need {alignment_lib.MIN_FRAMES})")
  if repair:
    perf_c[perf_v] = alignment_lib.repair_octaves(perf_c[perf_v], hop_s)[0]
    ref_c[ref_v] = alignment_lib.repair_octaves(ref_c[ref_v], hop_s)[0]
  result = alignment_lib.align_melodies(perf_c[perf_v], ref_c[ref_v])
  block = alignment_lib.block_mean
  perf_idx = block(np.flatnonzero(perf_v).astype(np.float64), result.perf_factor)
  ref_idx = block(np.flatnonzero(ref_v).astype(np.float64), result.ref_factor)
  warp = _frame_warp(result.path, perf_idx, ref_idx, len(ref_c))
  near = np.round(warp).astype(np.int64)
  p_at = _take(perf_c, near).astype(np.float64)
  pv_at = np.isfinite(p_at)
  dev = np.where(pv_at & ref_v, p_at + result.offset_cents - ref_c, np.nan)
  half = max(1, int(round(TEMPO_HALF_WINDOW_S / hop_s)))
  k = np.arange(len(ref_c))
  lo, hi = np.clip(k - half, 0, len(k) - 1), np.clip(k + half, 0, len(k) - 1)
  tempo = (warp[hi] - warp[lo]) / np.maximum(hi - lo, 1)
  rel = p_at - np.median(perf_c[perf_v])
  return AlignedContour(
      hop_s=float(hop_s), pitch_deviation_cents=dev.astype(np.float32),
      perf_voiced=pv_at, ref_voiced=ref_v, local_tempo=tempo.astype(np.float32),
      perf_energy_db=_take(_normalised_db(perf_energy_db, perf_v), near),
      ref_energy_db=_take(_normalised_db(ref_energy_db, ref_v), k),
      perf_onset_strength=_take(_scaled_onsets(perf_onset_strength), near),
      ref_onset_strength=_take(_scaled_onsets(ref_onset_strength), k),
      perf_relative_cents=rel.astype(np.float32), ref_cents=ref_c,
      perf_cents=perf_c, perf_frame=warp, offset_cents=float(result.offset_cents),
      cost_cents=float(result.cost_cents))
