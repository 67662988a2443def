"""Log-mel spectrogram channel 'spec' (paper 3.1 (i)).

"We extract the Log-Mel Spectrogram for each 3s segment with a hop size of 512.
Given 16kHz sampled audio, the resulting representation contains 94 frames and
96 bins." (Zhang et al., ISMIR 2021, section 3.1 (i)).

Choices the paper leaves open (recorded in BUILD_NOTES.md):
  * n_fft = 1024 (64 ms Hann window, two hops): 15.6 Hz FFT bins resolve the
    harmonics of a singing voice, and no triangular filter of the 96-band Slaney
    mel bank (0..8 kHz, ~31 Hz apart at the bottom) is empty, as some would be at
    n_fft = 512.
  * power spectrogram (|STFT|^2), librosa's Slaney mel filters (htk=False,
    norm='slaney'), fmin 0 Hz, fmax 8 kHz (Nyquist).
  * dB with a FIXED reference: 10 log10(max(power, 1e-10) / 1.0); no per-clip
    max normalisation and no relative top_db clamp, so loudness differences
    between clips survive (a soft performance is visibly softer than its
    reference) and digital silence gives the finite floor -100 dB.
  * center=True (zero padding of n_fft // 2, librosa 0.11 default) ->
    1 + 48000 // 512 = 94 frames, frame k centred at sample 512 k.
"""

import numpy as np
import librosa

from asa_jax.features import constants

N_FFT = 1024  # samples (64 ms at 16 kHz).
AMIN = 1e-10  # power floor -> -100 dB for silence.
FLOOR_DB = 10.0 * np.log10(AMIN)  # -100.0 dB


def mel_power(clips: np.ndarray) -> np.ndarray:
  """Mel power spectrogram (linear power, not dB).

  Args:
    clips: float array (..., n) of 16 kHz audio (full scale 1.0).

  Returns:
    float32 (..., 96, 1 + n // 512) mel-band power (|STFT|^2 through Slaney
    mel filters), n_fft 1024, hop 512, centred frames.
  """
  clips = np.asarray(clips, dtype=np.float32)
  s = librosa.feature.melspectrogram(
      y=clips, sr=constants.SAMPLE_RATE, n_fft=N_FFT,
      hop_length=constants.HOP_LENGTH, center=True, power=2.0, n_mels=constants.N_BINS,
      fmin=0.0, fmax=constants.SAMPLE_RATE / 2)
  return s.astype(np.float32, copy=False)


def power_to_db(power: np.ndarray) -> np.ndarray:
  """10 log10(max(power, 1e-10)) in dB: fixed reference 1.0, floor -100 dB."""
  db = (10.0 * np.log10(np.maximum(power, AMIN))).astype(np.float32)
  # float32 log10 is not correctly rounded on every CPU (AVX-512 numpy gives
  # log10(float32(1e-10)) = -10.000001): clamp so silence is exactly the floor.
  return np.maximum(db, np.float32(FLOOR_DB))


def log_mel(clips: np.ndarray) -> np.ndarray:
  """Log-mel spectrogram in dB, paper 3.1 (i).

  Args:
    clips: float array (..., 48000) (or any length n) of 16 kHz audio.

  Returns:
    float32 (..., 96, 94) (94 = 1 + n // 512): rows are mel bands from low to
    high frequency, columns frames at 32 ms hops. Values in dB relative to a
    fixed power of 1.0 (a full-scale sine gives about +40 dB in its band),
    floored at -100 dB; silence gives exactly -100 dB, never -inf or NaN.
  """
  return power_to_db(mel_power(clips))
