"""Controlled, labelled degradations of real solo singing with the WORLD vocoder.

The learned systems need training performances of known quality sung by real voices
(issue "Make the learned systems work on real singing"; the paper's own karaoke set,
section 3.3, is private). This module analyses a real solo vocal once with WORLD
(Morise et al. 2016, `pyworld`: f0, spectral envelope `sp`, aperiodicity `ap`), edits
those parameters in known ways, and resynthesises:

  pitch errors   per-note detune, wrong notes (1-2 semitones), slow drift away from the
                 key, unstable pitch (slow random wander), scoops into notes,
                 vibrato flattened or exaggerated;
  timing errors  note onsets moved (notes lengthened or shortened), rushing or
                 dragging (a tempo ramp), early or late entry: one smooth monotone
                 time map applied to all WORLD parameters;
  voice errors   breathiness (aperiodicity raised), roughness (frame-rate f0 jitter
                 and amplitude shimmer), unstable loudness (slow gain wobble);
  not errors     another key, a uniform tempo change, another voice (spectral
                 envelope frequency warp), another gain: the label is unchanged.

Every version of a recording, the undegraded one included, goes through the same
analysis and resynthesis, so vocoder artefacts carry no label.

The label is computed from the errors actually applied (`Applied`), like the demo
corpus's (input_pipeline/corpora/demo.py):

    P = mean over notes of the mean |pitch change| in cents inside the note (key
        shift and roughness excluded, vibrato change included), each note capped
        at 300 cents;
    T = mean over notes of |new onset - onset expected after the uniform tempo
        change| in seconds;
    V = 0.25 min(breathiness, 1) + 0.25 min(roughness / 50 cents, 1)
        + 0.25 min(loudness wobble / 6 dB, 1);
    score        = 100 clip(1 - P / 200 - T / 0.5 - V, 0, 1);
    pitch_score  = 100 clip(1 - P / 200, 0, 1);
    timing_score = 100 clip(1 - T / 0.5, 0, 1);
    voice_score  = 100 clip(1 - V / 0.75, 0, 1).

All are non-increasing in every error (strictly decreasing inside the clip range).
Times are seconds, pitch changes cents, WORLD frames `FRAME_PERIOD_MS` apart.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

FRAME_PERIOD_MS = 5.0
NOTE_ERROR_CAP_CENTS = 300.0
PITCH_FULL_SCALE_CENTS = 200.0
TIMING_FULL_SCALE_SECONDS = 0.5
VOICE_WEIGHT = 0.25
ROUGHNESS_FULL_SCALE_CENTS = 50.0
LOUDNESS_FULL_SCALE_DB = 6.0
_MIN_NOTE_FRAMES = 12  # 60 ms: shorter pitch plateaus join their neighbour.
_SILENCE_POWER = 1e-12  # sp of frames outside the performance (digital silence).


class DegradeError(ValueError):
  """Audio that cannot be analysed (empty, silent, non-finite, no voiced frame)."""


@dataclasses.dataclass(frozen=True)
class WorldParams:
  """WORLD parameters of one recording.

  Attributes:
    f0: float64 (T,) Hz per frame, 0 where unvoiced.
    sp: float64 (T, F) power spectral envelope (F = fft_size // 2 + 1).
    ap: float64 (T, F) aperiodicity in [0, 1] (1 = noise).
    sample_rate: Hz.
    frame_period_ms: frame hop in milliseconds.
  """
  f0: np.ndarray
  sp: np.ndarray
  ap: np.ndarray
  sample_rate: int
  frame_period_ms: float = FRAME_PERIOD_MS

  @property
  def frame_seconds(self) -> float:
    """Frame hop in seconds."""
    return self.frame_period_ms / 1000.0

  @property
  def num_frames(self) -> int:
    """T."""
    return int(self.f0.shape[0])


def _f0_on_grid(values_hz: np.ndarray, hop_seconds: float, n_frames: int,
                frame_seconds: float) -> np.ndarray:
  """Resamples an f0 track (0 = unvoiced) to the WORLD frame grid: log-linear inside
  voiced stretches, voicing from the nearest source frame."""
  values_hz = np.asarray(values_hz, np.float64)
  src_t = np.arange(len(values_hz)) * hop_seconds
  t = np.arange(n_frames) * frame_seconds
  voiced = values_hz > 0
  if not voiced.any():
    return np.zeros(n_frames)
  logf = np.interp(t, src_t[voiced], np.log(values_hz[voiced]))
  nearest = np.clip(np.round(t / hop_seconds).astype(int), 0, len(values_hz) - 1)
  return np.where(voiced[nearest], np.exp(logf), 0.0)


def analyse(audio: np.ndarray, sample_rate: int, *, f0: np.ndarray | None = None,
            f0_hop_seconds: float | None = None, f0_method: str = "harvest",
            f0_floor: float = 65.0, f0_ceil: float = 1100.0) -> WorldParams:
  """WORLD analysis of a mono recording.

  Args:
    audio: (n,) float mono samples, full scale 1.0.
    sample_rate: Hz.
    f0: optional f0 track in Hz (0 = unvoiced), e.g. a dataset's pitch labels or
      confident CREPE frames; resampled to the WORLD grid. None: estimated with
      `f0_method`.
    f0_hop_seconds: hop of `f0` in seconds (required with `f0`).
    f0_method: 'harvest' (robust, ~0.2 s of CPU per second of audio) or 'dio'
      (DIO + StoneMask, fast).
    f0_floor, f0_ceil: search range of the estimator, Hz.

  Returns:
    WorldParams on a 5 ms grid.

  Raises:
    DegradeError: empty, non-finite or silent audio, or no voiced frame.
    ValueError: bad f0 arguments or method.
  """
  import pyworld  # pylint: disable=g-import-not-at-top
  x = np.asarray(audio, np.float64)
  if x.ndim != 1 or x.size == 0:
    raise DegradeError(f"audio must be a non-empty (n,) array, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise DegradeError("audio contains NaN or infinite samples")
  if np.max(np.abs(x)) < 1e-5:
    raise DegradeError("audio is silent")
  fp = FRAME_PERIOD_MS
  if f0 is not None:
    if not f0_hop_seconds or f0_hop_seconds <= 0:
      raise ValueError("f0_hop_seconds (> 0) is required with f0")
    n_frames = int(len(x) / sample_rate / (fp / 1000.0)) + 1
    f0_world = _f0_on_grid(f0, f0_hop_seconds, n_frames, fp / 1000.0)
    t = np.arange(n_frames) * fp / 1000.0
  elif f0_method == "harvest":
    f0_world, t = pyworld.harvest(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil,
                                  frame_period=fp)
  elif f0_method == "dio":
    f0_world, t = pyworld.dio(x, sample_rate, f0_floor=f0_floor, f0_ceil=f0_ceil,
                              frame_period=fp)
    f0_world = pyworld.stonemask(x, f0_world, t, sample_rate)
  else:
    raise ValueError(f"f0_method must be 'harvest' or 'dio', not {f0_method!r}")
  f0_world = np.ascontiguousarray(f0_world, np.float64)
  if not np.any(f0_world > 0):
    raise DegradeError("no voiced frame found")
  sp = pyworld.cheaptrick(x, f0_world, t, sample_rate)
  ap = pyworld.d4c(x, f0_world, t, sample_rate)
  return WorldParams(f0=f0_world, sp=sp, ap=ap, sample_rate=int(sample_rate),
                     frame_period_ms=fp)


def synthesise(params: WorldParams) -> np.ndarray:
  """WORLD synthesis: float32 (n,) samples at params.sample_rate, clipped to +-1."""
  import pyworld  # pylint: disable=g-import-not-at-top
  y = pyworld.synthesize(np.ascontiguousarray(params.f0, np.float64),
                         np.ascontiguousarray(params.sp, np.float64),
                         np.ascontiguousarray(params.ap, np.float64),
                         params.sample_rate, params.frame_period_ms)
  return np.clip(y, -1.0, 1.0).astype(np.float32)


# --- Notes. ----------------------------------------------------------------------


def segment_notes(f0: np.ndarray, frame_seconds: float = FRAME_PERIOD_MS / 1000.0
                  ) -> list[tuple[int, int]]:
  """Notes of a sung f0 track: [(start_frame, end_frame_exclusive)].

  A note is a voiced stretch of constant rounded pitch: the f0 in semitones, smoothed
  over 50 ms, rounded to the singer's own tuning grid (the median offset from equal
  temperament is removed first); plateaus shorter than 60 ms join the previous note.
  Every voiced frame belongs to exactly one note.
  """
  f0 = np.asarray(f0, np.float64)
  voiced = f0 > 0
  notes: list[tuple[int, int]] = []
  if not voiced.any():
    return notes
  midi = np.zeros_like(f0)
  midi[voiced] = 69.0 + 12.0 * np.log2(f0[voiced] / 440.0)
  tuning = float(np.median(midi[voiced] - np.round(midi[voiced])))
  k = max(1, int(round(0.05 / frame_seconds)))
  edges = np.flatnonzero(np.diff(np.concatenate([[0], voiced.astype(int), [0]])))
  for start, end in zip(edges[::2], edges[1::2]):
    seg = midi[start:end] - tuning
    smooth = np.convolve(np.pad(seg, (k // 2, k - 1 - k // 2), mode="edge"),
                         np.ones(k) / k, mode="valid")
    q = np.round(smooth)
    bounds = [0] + [i for i in range(1, len(q)) if q[i] != q[i - 1]] + [len(q)]
    merged = [bounds[0]]
    for b in bounds[1:-1]:
      if b - merged[-1] >= _MIN_NOTE_FRAMES:
        merged.append(b)
    if len(merged) > 1 and bounds[-1] - merged[-1] < _MIN_NOTE_FRAMES:
      merged.pop()
    merged.append(bounds[-1])
    notes += [(start + a, start + b) for a, b in zip(merged[:-1], merged[1:])]
  return notes


# --- Degradation parameters and what was applied. --------------------------------


@dataclasses.dataclass(frozen=True)
class Degradation:
  """What to do to a recording (defaults: nothing).

  Pitch errors (cents): `detune_cents` each note sung off by a magnitude drawn
  uniformly from [0.5, 1.5] x detune_cents, sharp or flat at random;
  `wrong_note_prob` probability that a note is sung 100 or 200 cents off (either
  way); `drift_cents` a linear drift reaching this offset at the end; `jitter_cents`
  standard deviation of a slow random wander (about 100 ms correlation);
  `scoop_cents` each note starts this far below and glides up over `scoop_seconds`;
  `vibrato_scale` multiplies the vibrato (pitch minus its 150 ms moving average):
  0 flattens, 2 doubles it.

  Timing errors (seconds): `onset_jitter_seconds` standard deviation of each note
  onset's displacement; `tempo_drift` rushing (> 0) or dragging (< 0): the local
  tempo changes linearly by this fraction from start to end (|value| <= 0.5);
  `entry_offset_seconds` early (< 0) or late (> 0) entry of the whole performance.

  Voice errors: `breathiness` in [0, 1] (aperiodicity raised towards 1 by this
  fraction); `roughness_cents` standard deviation of frame-rate (200 Hz) f0 jitter,
  with an amplitude shimmer of roughness / 20 dB; `loudness_wobble_db` standard
  deviation of a slow (about 250 ms) random gain.

  Not errors: `key_shift_semitones`, `tempo_ratio` (output duration / input
  duration, 0.92-1.08 is a fair range), `formant_warp` (spectral envelope frequency
  warp: > 1 moves formants up, another voice), `gain_db`.
  """
  detune_cents: float = 0.0
  wrong_note_prob: float = 0.0
  drift_cents: float = 0.0
  jitter_cents: float = 0.0
  scoop_cents: float = 0.0
  scoop_seconds: float = 0.12
  vibrato_scale: float = 1.0
  onset_jitter_seconds: float = 0.0
  tempo_drift: float = 0.0
  entry_offset_seconds: float = 0.0
  breathiness: float = 0.0
  roughness_cents: float = 0.0
  loudness_wobble_db: float = 0.0
  key_shift_semitones: float = 0.0
  tempo_ratio: float = 1.0
  formant_warp: float = 1.0
  gain_db: float = 0.0

  def validate(self) -> None:
    """Raises ValueError naming the first out-of-range field."""
    checks = [("wrong_note_prob", 0.0 <= self.wrong_note_prob <= 1.0),
              ("vibrato_scale", self.vibrato_scale >= 0.0),
              ("tempo_drift", abs(self.tempo_drift) <= 0.5),
              ("breathiness", 0.0 <= self.breathiness <= 1.0),
              ("tempo_ratio", 0.5 <= self.tempo_ratio <= 2.0),
              ("formant_warp", 0.5 <= self.formant_warp <= 2.0),
              ("scoop_seconds", self.scoop_seconds > 0.0)]
    for name in ("detune_cents", "drift_cents", "jitter_cents", "scoop_cents",
                 "onset_jitter_seconds", "roughness_cents", "loudness_wobble_db"):
      checks.append((name, getattr(self, name) >= 0.0 or name == "drift_cents"))
    for name, ok in checks:
      if not ok:
        raise ValueError(f"Degradation.{name} out of range: {getattr(self, name)!r}")


@dataclasses.dataclass(frozen=True)
class Applied:
  """The errors a `degrade` call realised (what the label is computed from).

  Attributes:
    notes: (start, end) frames of the source notes.
    note_offsets_cents: float64 (N,) constant per-note offset (detune + wrong note).
    note_pitch_errors_cents: float64 (N,) mean |pitch change| per note (key shift and
      roughness excluded; detune, wrong notes, drift, wander, scoops, vibrato change
      included), uncapped.
    onsets_seconds: float64 (N,) source note onsets.
    new_onsets_seconds: float64 (N,) their times in the output.
    onset_errors_seconds: float64 (N,) new onset - source onset x tempo_ratio.
    breathiness, roughness_cents, loudness_wobble_db: realised voice errors.
    degradation: the requested Degradation.
  """
  notes: tuple
  note_offsets_cents: np.ndarray
  note_pitch_errors_cents: np.ndarray
  onsets_seconds: np.ndarray
  new_onsets_seconds: np.ndarray
  onset_errors_seconds: np.ndarray
  breathiness: float
  roughness_cents: float
  loudness_wobble_db: float
  degradation: Degradation

  @property
  def pitch_error_cents(self) -> float:
    """P of the module docstring."""
    e = np.minimum(np.abs(self.note_pitch_errors_cents), NOTE_ERROR_CAP_CENTS)
    return float(np.mean(e)) if e.size else 0.0

  @property
  def timing_error_seconds(self) -> float:
    """T of the module docstring."""
    e = np.abs(self.onset_errors_seconds)
    return float(np.mean(e)) if e.size else 0.0

  @property
  def voice_error(self) -> float:
    """V of the module docstring."""
    return voice_error(self.breathiness, self.roughness_cents, self.loudness_wobble_db)

  def scores(self) -> dict:
    """{"score", "pitch_score", "timing_score", "voice_score"} by `label`."""
    return label(self.pitch_error_cents, self.timing_error_seconds, self.voice_error)


def voice_error(breathiness: float, roughness_cents: float,
                loudness_wobble_db: float) -> float:
  """V (module docstring) from the three voice errors; in [0, 0.75]."""
  return VOICE_WEIGHT * (min(max(breathiness, 0.0), 1.0)
                         + min(max(roughness_cents, 0.0) / ROUGHNESS_FULL_SCALE_CENTS, 1.0)
                         + min(max(loudness_wobble_db, 0.0) / LOUDNESS_FULL_SCALE_DB, 1.0))


def label(pitch_error_cents: float, timing_error_seconds: float,
          voice_err: float) -> dict:
  """Quality label 0-100 and per-family sub-scores (module docstring formula).

  Args:
    pitch_error_cents: P (>= 0).
    timing_error_seconds: T (>= 0).
    voice_err: V in [0, 0.75].

  Returns:
    {"score", "pitch_score", "timing_score", "voice_score"}: floats in [0, 100],
    rounded to 0.1.
  """
  p = pitch_error_cents / PITCH_FULL_SCALE_CENTS
  t = timing_error_seconds / TIMING_FULL_SCALE_SECONDS
  clip = lambda v: round(100.0 * float(np.clip(v, 0.0, 1.0)), 1)
  return {"score": clip(1.0 - p - t - voice_err), "pitch_score": clip(1.0 - p),
          "timing_score": clip(1.0 - t),
          "voice_score": clip(1.0 - voice_err / (3 * VOICE_WEIGHT))}


# --- Edits. -------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
  """Unit-variance noise, moving-average smoothed over `width` frames."""
  width = max(1, width)
  x = rng.standard_normal(n + width)
  y = np.convolve(x, np.ones(width) / width, mode="valid")[:n]
  std = y.std()
  return y / std if std > 0 else y


def _moving_average(x: np.ndarray, width: int) -> np.ndarray:
  width = max(1, width)
  return np.convolve(np.pad(x, (width // 2, width - 1 - width // 2), mode="edge"),
                     np.ones(width) / width, mode="valid")


def _pitch_edits(params: WorldParams, notes: list[tuple[int, int]],
                 d: Degradation, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
  """(per-frame pitch change in cents (errors only), per-note constant offsets)."""
  n = params.num_frames
  fs = params.frame_seconds
  change = np.zeros(n)
  offsets = np.zeros(len(notes))
  for i, (a, b) in enumerate(notes):
    off = 0.0
    if d.detune_cents > 0:
      off += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * d.detune_cents
    if d.wrong_note_prob > 0 and rng.random() < d.wrong_note_prob:
      off += rng.choice([-1.0, 1.0]) * rng.choice([100.0, 200.0])
    offsets[i] = off
    change[a:b] += off
    if d.scoop_cents > 0:
      m = min(b - a, max(1, int(round(d.scoop_seconds / fs))))
      change[a:a + m] -= d.scoop_cents * (1.0 - np.arange(m) / m) ** 2
  if d.drift_cents:
    change += d.drift_cents * np.arange(n) / max(n - 1, 1)
  if d.jitter_cents > 0:
    change += d.jitter_cents * _smooth_noise(rng, n, int(round(0.1 / fs)))
  if d.vibrato_scale != 1.0:
    voiced = params.f0 > 0
    cents = np.zeros(n)
    cents[voiced] = 1200.0 * np.log2(params.f0[voiced] / 440.0)
    for a, b in notes:
      seg = cents[a:b]
      vib = seg - _moving_average(seg, int(round(0.15 / fs)))
      change[a:b] += (d.vibrato_scale - 1.0) * vib
  change[params.f0 <= 0] = 0.0
  return change, offsets


def _time_map(params: WorldParams, notes: list[tuple[int, int]], d: Degradation,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Monotone map of source frame times -> output times (seconds), and the onsets'
  displacements before the uniform tempo change and entry offset."""
  from scipy.interpolate import PchipInterpolator  # pylint: disable=g-import-not-at-top
  fs = params.frame_seconds
  t = np.arange(params.num_frames) * fs
  duration = max(t[-1], fs)
  # Rushing / dragging: local tempo 1 + a * t / D, so output time is the integral of
  # 1 / tempo: (D / a) ln(1 + a t / D).
  a = d.tempo_drift
  if a:
    g1 = duration / a * np.log1p(a * t / duration)
  else:
    g1 = t.copy()
  onsets = np.array([na * fs for na, _ in notes])
  anchors_x = [0.0]
  anchors_y = [0.0]
  if d.onset_jitter_seconds > 0 and len(onsets):
    g1_on = np.interp(onsets, t, g1)
    prev = 0.0
    for k, (on, y) in enumerate(zip(onsets, g1_on)):
      nxt = g1_on[k + 1] if k + 1 < len(onsets) else g1[-1]
      lo = prev + 0.02
      hi = nxt - 0.02
      if on <= anchors_x[-1] + 1e-6 or hi <= lo:
        continue
      shift = float(np.clip(rng.normal(0.0, d.onset_jitter_seconds),
                            lo - y, hi - y)) if hi > lo else 0.0
      anchors_x.append(on)
      anchors_y.append(y + shift)
      prev = y + shift
  if t[-1] > anchors_x[-1] + 1e-6:
    anchors_x.append(t[-1])
    anchors_y.append(g1[-1])
  if len(anchors_x) > 2:
    g = PchipInterpolator(anchors_x, anchors_y)(t)
    g = np.maximum.accumulate(g)
  else:
    g = g1
  return g, onsets


def _warp_envelope(sp: np.ndarray, warp: float) -> np.ndarray:
  """sp'(f) = sp(f / warp) per frame (linear interpolation over bins)."""
  if warp == 1.0:
    return sp
  bins = np.arange(sp.shape[1], dtype=np.float64)
  src = np.clip(bins / warp, 0, sp.shape[1] - 1)
  lo = np.floor(src).astype(int)
  hi = np.minimum(lo + 1, sp.shape[1] - 1)
  w = src - lo
  return sp[:, lo] * (1.0 - w) + sp[:, hi] * w


def degrade(params: WorldParams, degradation: Degradation, rng: np.random.Generator
            ) -> tuple[WorldParams, Applied]:
  """Applies a Degradation to WORLD parameters (edit, then time-map).

  Pitch edits and voice edits are made in source time; then one monotone time map
  (tempo ramp, onset displacements, uniform tempo ratio, entry offset) resamples
  f0, sp and ap (nearest source frame) onto the output's 5 ms grid. Frames before
  a late entry are digital silence.

  Args:
    params: `analyse` output.
    degradation: what to apply (validated).
    rng: numpy Generator (all randomness comes from it).

  Returns:
    (degraded WorldParams, Applied).

  Raises:
    ValueError: a Degradation field out of range.
  """
  d = degradation
  d.validate()
  fs = params.frame_seconds
  notes = segment_notes(params.f0, fs)
  change, offsets = _pitch_edits(params, notes, d, rng)
  voiced = params.f0 > 0
  rough = np.zeros(params.num_frames)
  if d.roughness_cents > 0:
    rough = d.roughness_cents * rng.standard_normal(params.num_frames)
  cents = change + rough + 100.0 * d.key_shift_semitones
  f0 = np.where(voiced, params.f0 * 2.0 ** (cents / 1200.0), 0.0)

  gain_db = np.full(params.num_frames, float(d.gain_db))
  if d.loudness_wobble_db > 0:
    gain_db += d.loudness_wobble_db * _smooth_noise(rng, params.num_frames,
                                                    int(round(0.25 / fs)))
  if d.roughness_cents > 0:
    gain_db += d.roughness_cents / 20.0 * rng.standard_normal(params.num_frames)
  sp = _warp_envelope(params.sp, d.formant_warp) * (10.0 ** (gain_db / 10.0))[:, None]
  ap = params.ap + d.breathiness * (1.0 - params.ap)

  g, onsets = _time_map(params, notes, d, rng)
  g = g * d.tempo_ratio
  entry = float(d.entry_offset_seconds)
  if entry < 0 and notes:  # An early entry can only eat leading silence.
    entry = max(entry, -max(onsets[0] - 0.05, 0.0))
  g = g + entry
  # The output ends at the map's end g[-1]. A whole number of frames there can divide
  # to just under it (1.995 / 0.005 = 398.99999999999994: the last frame was lost) and
  # k x 5 ms can round to just past it (that frame was silence): a tolerance, then tau
  # is held inside the map.
  out_n = int(math.floor(max(g[-1], 0.0) / fs + 1e-6)) + 1
  tau = np.minimum(np.arange(out_n) * fs, max(g[-1], 0.0))
  src_t = np.interp(tau, g, np.arange(params.num_frames) * fs,
                    left=-1.0, right=-1.0)
  inside = src_t >= 0
  idx = np.clip(np.round(src_t / fs).astype(int), 0, params.num_frames - 1)
  out_f0 = np.where(inside, f0[idx], 0.0)
  out_sp = np.where(inside[:, None], sp[idx], _SILENCE_POWER)
  out_ap = np.where(inside[:, None], ap[idx], 1.0)

  new_onsets = np.interp(onsets, np.arange(params.num_frames) * fs, g)
  note_err = np.array([np.mean(np.abs(change[a:b])) for a, b in notes])
  applied = Applied(
      notes=tuple(notes), note_offsets_cents=offsets,
      note_pitch_errors_cents=note_err, onsets_seconds=onsets,
      new_onsets_seconds=new_onsets,
      onset_errors_seconds=new_onsets - onsets * d.tempo_ratio,
      breathiness=float(d.breathiness), roughness_cents=float(d.roughness_cents),
      loudness_wobble_db=float(d.loudness_wobble_db), degradation=d)
  out = WorldParams(f0=out_f0, sp=out_sp, ap=np.clip(out_ap, 0.0, 1.0),
                    sample_rate=params.sample_rate,
                    frame_period_ms=params.frame_period_ms)
  return out, applied
