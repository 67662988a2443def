"""Cyclic tempogram channel 'tempo' (paper 3.1 v).

Paper 3.1 (v): "We also extract the cyclic tempogram [18] of the clip,
representing the estimated tempo that evolves over time." [18] is Grosche,
Mueller and Kurth, "Cyclic tempogram - a mid-level tempo representation for
music signals", ICASSP 2010. librosa has no cyclic tempogram, so it is built here
from librosa's onset strength, following Grosche et al. section 2-3:

  1. Novelty curve: `librosa.onset.onset_strength` (spectral flux of the log-mel
     spectrogram, mean over bands of the positive dB increase) at 31.25 frames/s
     (hop 512 at 16 kHz), 94 frames per 3 s clip. The log-mel of the 'spec'
     channel is reused, with librosa's default 80 dB dynamic range below the
     clip's maximum for this step only (so sub-audible noise makes no onsets).
  2. Fourier tempogram at log-spaced tempi (Grosche eq. 2: windowed DFT of the
     novelty curve evaluated directly at each tempo, not at FFT bins): tempo
     theta_{k,j} = 60 BPM * 2^k * 2^(j/96) for octaves k = -1, 0, 1, 2 and
     j = 0..95, i.e. 30..480 BPM (Grosche's tempo range), 96 bins per octave.
  3. Octave folding (Grosche eq. 4): C(t, s_j) = sum_k |T(t, 60 * 2^k * s_j)|,
     s_j = 2^(j/96) in [1, 2); reference tempo 60 BPM, so row j is the tempo
     class of 60 * s_j BPM and all its octaves (row 0: 30, 60, 120, 240 BPM;
     row 48: 42.4, 84.9, 169.7, 339.4 BPM). A pulse and its double/half tempo
     land in the same row; the axis is cyclic (row 95 neighbours row 0).
  4. Each frame is max-normalised to 1 (librosa's tempogram convention,
     Grosche's normalised cyclic tempogram), dividing by max(peak, NORM_FLOOR)
     so frames without rhythmic novelty (a steady tone, silence) stay near 0.

Window (the clip is short, recorded in BUILD_NOTES.md): a 64-frame (2.05 s) Hann
window centred on each of the 94 frames. Outside the clip there is no data: the
window is truncated to the part inside the clip (masked, not zero-padded data
that would add a spurious step), and the window-weighted mean of the novelty
inside it is removed before the DFT so the 0 Hz component does not leak into the
30-60 BPM octave. 2 s holds at least one period of the slowest tempo (30 BPM)
and two beats at 60 BPM while still letting the tempo evolve across the clip;
the frequency resolution (~0.5 Hz, i.e. 30 BPM) is coarse for the lowest octave
but the folded sum is dominated by the sharper (in log-tempo) higher harmonics.
"""

import functools

import numpy as np
import librosa

from asa_jax.features import constants
from asa_jax.features import logmel

FRAME_RATE = constants.SAMPLE_RATE / constants.HOP_LENGTH  # 31.25 frames/s
WINDOW_FRAMES = 64  # novelty frames per tempogram window (2.05 s).
REFERENCE_BPM = 60.0  # tempo of row 0's class.
OCTAVES = (-1, 0, 1, 2)  # 30..480 BPM.
BINS_PER_OCTAVE = constants.N_BINS  # 96
ONSET_TOP_DB = 80.0  # dynamic range of the log-mel used for the novelty curve.
# Per-frame max normalisation divides by max(peak, NORM_FLOOR). Folded magnitudes
# (novelty in dB per band, summed over the window): a steady tone ~0.02, white
# noise ~4, sung vibrato ~5, a click train ~300. The floor keeps a rhythm-less
# frame near 0 instead of blowing its numerical noise up to 1.
NORM_FLOOR = 1.0


def tempo_classes_bpm() -> np.ndarray:
  """(96,) float64: the tempo (BPM) in [60, 120) representing each cyclic row."""
  return REFERENCE_BPM * 2.0 ** (np.arange(BINS_PER_OCTAVE) / BINS_PER_OCTAVE)


@functools.lru_cache(maxsize=4)
def _dft_basis(window_frames: int) -> np.ndarray:
  """(W, 2 * len(OCTAVES) * 96) float32: [cos | sin](2 pi f n / fps) at the tempi."""
  bpm = np.concatenate([tempo_classes_bpm() * 2.0 ** k for k in OCTAVES])
  freqs_hz = bpm / 60.0
  phase = 2 * np.pi * np.arange(window_frames)[:, None] * freqs_hz / FRAME_RATE
  return np.concatenate([np.cos(phase), np.sin(phase)], axis=1).astype(
      np.float32)


def novelty_from_logmel(log_mel_db: np.ndarray) -> np.ndarray:
  """Onset strength (spectral flux) from a log-mel spectrogram in dB.

  Args:
    log_mel_db: (..., 96, T) float, dB (as `logmel.log_mel`).

  Returns:
    float32 (..., T) non-negative novelty, librosa.onset.onset_strength of the
    spectrogram clamped to its clip maximum - 80 dB.
  """
  s = np.asarray(log_mel_db, dtype=np.float32)
  s = np.maximum(s, s.max(axis=(-2, -1), keepdims=True) - ONSET_TOP_DB)
  onset = librosa.onset.onset_strength(
      S=s, sr=constants.SAMPLE_RATE, hop_length=constants.HOP_LENGTH,
      n_fft=logmel.N_FFT)
  return onset.astype(np.float32)


def cyclic_tempogram_from_novelty(novelty: np.ndarray,
                                  window_frames: int = WINDOW_FRAMES
                                  ) -> np.ndarray:
  """Cyclic Fourier tempogram of a novelty curve (Grosche et al. 2010, eq. 2-4).

  Args:
    novelty: (..., T) float novelty curve at 31.25 frames/s.
    window_frames: Hann window length in frames (see module doc).

  Returns:
    float32 (..., 96, T): row j = tempo class 60 * 2^(j/96) BPM (all octaves
    30..480 BPM folded), column t = window centred at frame t; each column
    divided by max(column peak, NORM_FLOOR): peak 1 where there is rhythmic
    novelty, near 0 where the novelty is flat (0 for silence).
  """
  x = np.asarray(novelty, dtype=np.float32)
  t = x.shape[-1]
  half = window_frames // 2
  pad = [(0, 0)] * (x.ndim - 1) + [(half, window_frames - half - 1)]
  xp = np.pad(x, pad)
  mask = np.pad(np.ones(t, np.float32), pad[-1])
  # (..., T, W) windows; the window for frame t covers frames t-half..t+W-half-1.
  frames = np.lib.stride_tricks.sliding_window_view(xp, window_frames, axis=-1)
  mframes = np.lib.stride_tricks.sliding_window_view(mask, window_frames)
  w = mframes * np.hanning(window_frames + 2)[1:-1].astype(np.float32)  # (T, W)
  mean = (frames * w).sum(-1, keepdims=True) / w.sum(-1, keepdims=True)
  y = (frames - mean) * w  # zero outside the clip; no DC inside the window
  re_im = y.astype(np.float32) @ _dft_basis(window_frames)  # (..., T, 2F)
  n_freq = len(OCTAVES) * BINS_PER_OCTAVE
  spec = np.hypot(re_im[..., :n_freq], re_im[..., n_freq:])  # |DFT|
  spec = spec.reshape(spec.shape[:-1] + (len(OCTAVES), BINS_PER_OCTAVE))
  cyc = spec.sum(axis=-2)  # (..., T, 96): fold octaves
  peak = cyc.max(axis=-1, keepdims=True)
  cyc = cyc / np.maximum(peak, NORM_FLOOR)
  return np.swapaxes(cyc, -1, -2).astype(np.float32)


def cyclic_tempogram_from_logmel(log_mel_db: np.ndarray) -> np.ndarray:
  """Tempo channel from the log-mel channel: (..., 96, T) dB -> (..., 96, T)."""
  return cyclic_tempogram_from_novelty(novelty_from_logmel(log_mel_db))


def cyclic_tempogram(clips: np.ndarray) -> np.ndarray:
  """Tempo channel, paper 3.1 (v): float32 (..., 96, 94) for clips (..., 48000).

  See the module docstring for the construction (Grosche et al., ICASSP 2010).
  """
  return cyclic_tempogram_from_logmel(logmel.log_mel(clips))
