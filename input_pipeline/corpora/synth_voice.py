"""A small, vectorised formant singing-voice and chord synthesiser (numpy only).

Used by `input_pipeline.corpora.demo` to render synthetic "original singing"
(the reference of paper 3.3), amateur performances with known errors, and a
sustained-chord accompaniment (the Racc reference of paper 3.3).

Voice model (source-filter):
  * Source: a band-limited harmonic series with equal harmonic amplitudes (the
    count fixed per render so that no harmonic exceeds `max_harmonic_hz`),
    computed in closed form (Dirichlet kernel, O(samples)),
    followed by a one-pole low-pass (glottal spectral tilt, about -6 dB/octave
    above its corner) plus band-passed breath noise.
  * Filter: three two-pole formant resonators (F1..F3) per vowel; the vowel can
    change on every note; the five vowel filters run in parallel and are
    cross-faded with smoothed per-note vowel weights. A singer's vocal-tract size
    scales all formant frequencies.
  * F0: target pitch per note (MIDI + cents offsets), ~40 ms portamento, vibrato
    (rate in Hz, depth in cents, fades in after the note onset), slow wander.
  * Amplitude: attack / release envelope per note.

All times are in seconds, pitches in MIDI note numbers (float) or cents, audio is
float32 mono at `sample_rate` Hz (16 kHz in this project).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal

# Formant frequencies F1, F2, F3 (Hz) of five vowels, adult averages (Peterson &
# Barney style values); bandwidths (Hz) per formant.
VOWEL_FORMANTS = np.array([
    [800.0, 1200.0, 2600.0],  # a
    [500.0, 1800.0, 2600.0],  # e
    [300.0, 2300.0, 3000.0],  # i
    [500.0, 900.0, 2500.0],  # o
    [320.0, 800.0, 2400.0],  # u
])
FORMANT_BANDWIDTHS = np.array([80.0, 100.0, 140.0])
N_VOWELS = VOWEL_FORMANTS.shape[0]
CONTROL_RATE = 1000  # Hz; rate of the f0 / envelope / vowel control curves.


@dataclasses.dataclass(frozen=True)
class Note:
  """One sung note of a plan.

  Attributes:
    onset: start time in seconds.
    duration: length in seconds (> 0).
    midi: target (score) pitch as a MIDI note number.
    offset_cents: constant pitch error of this note in cents (detune plus any
      wrong-note offset), added to `midi`.
    drift_cents: linear pitch drift across the note in cents: the error goes
      from -drift/2 at the onset to +drift/2 at the end.
    vowel: vowel index into `VOWEL_FORMANTS` (0..4).
    gain_db: note loudness in dB relative to the voice level.
  """
  onset: float
  duration: float
  midi: float
  offset_cents: float = 0.0
  drift_cents: float = 0.0
  vowel: int = 0
  gain_db: float = 0.0


@dataclasses.dataclass(frozen=True)
class Voice:
  """Timbre and expression of one synthetic singer.

  Attributes:
    formant_scale: multiplies all formant frequencies (vocal-tract size; ~0.85
      for a large tract, ~1.2 for a small one).
    tilt: pole of the one-pole source low-pass in (0, 1); larger = darker.
    vibrato_rate: Hz.
    vibrato_depth: peak deviation in cents.
    vibrato_delay: seconds after a note onset before the vibrato is full.
    breath: breath-noise level relative to the voiced source RMS (0 = none).
    octave: octave shift of the sung pitch relative to the plan (integer).
  """
  formant_scale: float = 1.0
  tilt: float = 0.9
  vibrato_rate: float = 5.5
  vibrato_depth: float = 40.0
  vibrato_delay: float = 0.2
  breath: float = 0.02
  octave: int = 0


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
  """Moving average over the last axis, `width` samples, same length."""
  if width <= 1:
    return x
  kernel = np.ones(width) / width
  pad = [(0, 0)] * (x.ndim - 1) + [(width // 2, width - 1 - width // 2)]
  xp = np.pad(x, pad, mode="edge")
  return np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="valid"), -1, xp)


def _to_audio_rate(curve: np.ndarray, n: int, sample_rate: int) -> np.ndarray:
  """Linearly interpolates a control-rate curve (..., m) to n audio samples."""
  t_audio = np.arange(n) / sample_rate
  t_ctrl = np.arange(curve.shape[-1]) / CONTROL_RATE
  if curve.ndim == 1:
    return np.interp(t_audio, t_ctrl, curve)
  return np.stack([np.interp(t_audio, t_ctrl, c) for c in curve])


def note_index_curve(notes: list[Note], n_ctrl: int) -> np.ndarray:
  """Index of the active note per control frame, -1 where none (int, (n_ctrl,))."""
  t = np.arange(n_ctrl) / CONTROL_RATE
  idx = np.full(n_ctrl, -1, dtype=np.int64)
  for i, note in enumerate(notes):
    idx[(t >= note.onset) & (t < note.onset + note.duration)] = i
  return idx


def pitch_error_curve(notes: list[Note], n_ctrl: int,
                      wander_cents: np.ndarray | None = None) -> np.ndarray:
  """Pitch error (sung minus target, cents) per control frame, 0 outside notes.

  The error of a frame inside note i is offset_cents + drift_cents * (u - 0.5)
  + wander_cents, with u in [0, 1) the relative position inside the note.
  Vibrato is expression, not error, and is not included.

  Returns:
    float64 (n_ctrl,) cents at CONTROL_RATE.
  """
  t = np.arange(n_ctrl) / CONTROL_RATE
  err = np.zeros(n_ctrl)
  for note in notes:
    m = (t >= note.onset) & (t < note.onset + note.duration)
    u = (t[m] - note.onset) / note.duration
    err[m] = note.offset_cents + note.drift_cents * (u - 0.5)
  if wander_cents is not None:
    err = err + np.where(note_index_curve(notes, n_ctrl) >= 0,
                         wander_cents[:n_ctrl], 0.0)
  return err


def _formant_bank(x: np.ndarray, formant_scale: float, sample_rate: int) -> np.ndarray:
  """Filters x through each vowel's 3-resonator cascade: (N_VOWELS, n)."""
  out = np.empty((N_VOWELS, x.shape[0]))
  nyq = sample_rate / 2
  for v in range(N_VOWELS):
    y = x
    for f, bw in zip(VOWEL_FORMANTS[v] * formant_scale, FORMANT_BANDWIDTHS):
      f = min(f, 0.9 * nyq)
      r = np.exp(-np.pi * bw / sample_rate)
      c = 2 * r * np.cos(2 * np.pi * f / sample_rate)
      # Unity gain at DC: b0 = 1 - c + r^2.
      y = signal.lfilter([1 - c + r * r], [1.0, -c, r * r], y)
    out[v] = y
  return out


def render_voice(notes: list[Note], voice: Voice, *, total_seconds: float,
                 rng: np.random.Generator, sample_rate: int = 16000,
                 wander_cents: np.ndarray | None = None,
                 max_harmonic_hz: float = 6000.0) -> np.ndarray:
  """Renders a sung note plan with a formant voice.

  Args:
    notes: the plan, sorted by onset, non-overlapping.
    voice: timbre and vibrato of the singer.
    total_seconds: output length in seconds.
    rng: numpy Generator for breath noise, micro-jitter and vibrato phase.
    sample_rate: Hz.
    wander_cents: optional slow pitch-error curve at CONTROL_RATE (cents), at
      least total_seconds * CONTROL_RATE long.
    max_harmonic_hz: highest harmonic frequency of the source (band limit, below
      sample_rate / 2).

  Returns:
    float32 (round(total_seconds * sample_rate),) audio, peak-normalised to 0.5.

  Raises:
    ValueError: if notes is empty or max_harmonic_hz >= sample_rate / 2.
  """
  if not notes:
    raise ValueError("render_voice: empty note plan")
  if max_harmonic_hz >= sample_rate / 2:
    raise ValueError(f"render_voice: max_harmonic_hz {max_harmonic_hz} >= Nyquist")
  n = int(round(total_seconds * sample_rate))
  n_ctrl = int(np.ceil(total_seconds * CONTROL_RATE)) + 2
  t = np.arange(n_ctrl) / CONTROL_RATE
  idx = note_index_curve(notes, n_ctrl)

  # Target pitch (cents above MIDI 0), held through rests, with portamento. The
  # frames past the last note's stop hold its pitch too (np.empty left them as stale
  # memory, which made the render differ between runs through np.std(source)).
  target = np.full(n_ctrl, 100.0 * (notes[-1].midi + 12 * voice.octave))
  vowel = np.zeros((N_VOWELS, n_ctrl))
  env = np.zeros(n_ctrl)
  rel_time = np.zeros(n_ctrl)  # seconds since the onset of the active note.
  for i, note in enumerate(notes):
    start = int(round(note.onset * CONTROL_RATE))
    end = notes[i + 1].onset if i + 1 < len(notes) else total_seconds
    stop = min(int(round(end * CONTROL_RATE)), n_ctrl)
    if i == 0:
      start = 0
    target[start:stop] = 100.0 * (note.midi + 12 * voice.octave)
    vowel[note.vowel, start:stop] = 1.0
  m = idx >= 0
  rel_time[m] = t[m] - np.array([notes[i].onset for i in idx[m]])
  dur = np.array([notes[i].duration for i in idx[m]])
  attack, release = 0.04, 0.07
  a = np.clip(rel_time[m] / attack, 0, 1)
  r = np.clip((dur - rel_time[m]) / release, 0, 1)
  gains = 10 ** (np.array([notes[i].gain_db for i in idx[m]]) / 20)
  env[m] = gains * np.sin(0.5 * np.pi * a) * np.sin(0.5 * np.pi * r)

  cents = _smooth(target, 40) + pitch_error_curve(notes, n_ctrl, wander_cents)
  vib_ramp = np.clip((rel_time - voice.vibrato_delay) / 0.25, 0, 1) * m
  rate = voice.vibrato_rate * (1 + 0.03 * _smooth(rng.standard_normal(n_ctrl), 200))
  vib_phase = 2 * np.pi * np.cumsum(rate) / CONTROL_RATE + rng.uniform(0, 2 * np.pi)
  cents = cents + voice.vibrato_depth * vib_ramp * np.sin(vib_phase)
  cents = cents + 3.0 * _smooth(rng.standard_normal(n_ctrl), 20)  # micro-jitter.
  vowel = _smooth(vowel, 50)

  f0 = 440.0 * 2 ** ((_to_audio_rate(cents, n, sample_rate) - 6900.0) / 1200.0)
  phase = 2 * np.pi * np.cumsum(f0) / sample_rate
  phase = np.mod(phase, 2 * np.pi)
  # One harmonic count for the whole render (no clicks from a changing count),
  # chosen so that the highest harmonic of the highest f0 stays below the limit.
  k = max(np.floor(max_harmonic_hz / np.max(f0)), 1.0)
  half = 0.5 * phase
  den = np.sin(half)
  safe = np.abs(den) > 1e-6
  # sum_{j=1..k} cos(j*phase) = sin((k+1/2) phase) / (2 sin(phase/2)) - 1/2.
  source = np.where(safe, np.sin((k + 0.5) * phase) / np.where(safe, 2 * den, 1.0) - 0.5,
                    k)
  source = source / np.sqrt(k / 2)  # Roughly unit RMS whatever the harmonic count.
  source = signal.lfilter([1 - voice.tilt], [1.0, -voice.tilt], source) * 4.0
  noise = rng.standard_normal(n)
  sos = signal.butter(2, [1000.0, min(6000.0, 0.45 * sample_rate)], btype="band",
                      fs=sample_rate, output="sos")
  noise = signal.sosfilt(sos, noise)
  noise *= voice.breath * np.std(source) / (np.std(noise) + 1e-12) * 3.0
  amp = _to_audio_rate(env, n, sample_rate)
  excitation = (source + noise) * amp
  bank = _formant_bank(excitation, voice.formant_scale, sample_rate)
  weights = _to_audio_rate(vowel, n, sample_rate)
  out = np.sum(bank * weights, axis=0)
  out = signal.lfilter([1.0, -0.95], [1.0], out)  # Lip radiation (+6 dB/octave).
  peak = np.max(np.abs(out))
  if peak > 0:
    out = 0.5 * out / peak
  return out.astype(np.float32)


def render_chords(chords: list[tuple[float, float, tuple[float, ...]]], *,
                  total_seconds: float, sample_rate: int = 16000,
                  n_harmonics: int = 6) -> np.ndarray:
  """Renders sustained chords with a simple additive (organ/pad-like) synth.

  Args:
    chords: (onset seconds, duration seconds, MIDI pitches) per chord.
    total_seconds: output length in seconds.
    sample_rate: Hz.
    n_harmonics: harmonics per tone, amplitude k^-1.5 (only those below
      0.45 * sample_rate are rendered).

  Returns:
    float32 (round(total_seconds * sample_rate),) audio, peak-normalised to 0.5.
  """
  n = int(round(total_seconds * sample_rate))
  out = np.zeros(n)
  for onset, duration, pitches in chords:
    s0 = int(round(onset * sample_rate))
    s1 = min(int(round((onset + duration) * sample_rate)), n)
    if s1 <= s0:
      continue
    tt = np.arange(s1 - s0) / sample_rate
    env = (np.clip(tt / 0.03, 0, 1) * (0.6 + 0.4 * np.exp(-tt / 0.4))
           * np.clip((duration - tt) / 0.08, 0, 1))
    freqs = 440.0 * 2 ** ((np.asarray(pitches, dtype=np.float64) - 69) / 12)
    ks = np.arange(1, n_harmonics + 1)
    fk = (freqs[:, None] * ks[None, :]).ravel()
    ak = np.tile(ks ** -1.5, len(freqs))
    keep = fk < 0.45 * sample_rate
    tone = np.sin(2 * np.pi * fk[keep, None] * tt[None, :]).T @ ak[keep]
    out[s0:s1] += env * tone
  peak = np.max(np.abs(out))
  if peak > 0:
    out = 0.5 * out / peak
  return out.astype(np.float32)
