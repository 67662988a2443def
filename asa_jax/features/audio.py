"""Audio loading: any file -> 16 kHz mono float32 (paper 3.1, 3.3).

Every feature of the clip representation (Zhang et al., ISMIR 2021, section 3.1:
"Given 16kHz sampled audio") is computed from 16 kHz mono audio. `load_audio`
reads a file with soundfile (wav, flac, ogg and, with libsndfile >= 1.1, mp3) and
falls back to audioread (ffmpeg/gstreamer backends) for other formats, mixes the
channels down to mono, resamples with soxr (high quality) and checks the result.

Bad input raises `AudioError`, whose message always starts with the file path and
states the reason: missing, unreadable (corrupt or unknown format), empty, silent,
too short, or non-finite samples.
"""

import os
import warnings
from typing import Union

import numpy as np
import soundfile as sf
import soxr

from asa_jax.features import constants

# A file whose peak absolute amplitude (full scale = 1.0) is below this is silent.
SILENCE_PEAK = 1e-4
# The lowest sample rate that carries singing (telephone band: harmonics up to
# 4 kHz); callers that need it pass min_sample_rate=MIN_SAMPLE_RATE.
MIN_SAMPLE_RATE = 8000

PathLike = Union[str, os.PathLike]


class AudioError(ValueError):
  """An audio file cannot be used; the message names the file and the reason."""

  def __init__(self, path: PathLike, reason: str):
    self.path = os.fspath(path)
    self.reason = reason
    super().__init__(f"{self.path}: {reason}")


def _read_soundfile(path: str) -> tuple[np.ndarray, int]:
  """Reads with libsndfile; returns ((n, channels) float32, sample rate in Hz)."""
  data, sr = sf.read(path, dtype="float32", always_2d=True)
  return data, int(sr)


def _read_audioread(path: str) -> tuple[np.ndarray, int]:
  """Reads with audioread; returns ((n, channels) float32, sample rate in Hz)."""
  # audioread's backends import aifc/audioop/sunau (deprecated in Python 3.11).
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioread  # pylint: disable=g-import-not-at-top  (exotic formats only)
    with audioread.audio_open(path) as f:
      sr, n_channels = int(f.samplerate), int(f.channels)
      chunks = [np.frombuffer(buf, dtype="<i2") for buf in f]
  if chunks:
    data = np.concatenate(chunks).astype(np.float32) / 32768.0
  else:
    data = np.zeros((0,), np.float32)
  n_channels = max(n_channels, 1)
  data = data[: len(data) - len(data) % n_channels]
  return data.reshape(-1, n_channels), sr


def _describe(error: Exception) -> str:
  text = str(error).strip()
  if type(error).__name__ == "NoBackendError":
    text = text or "no installed backend (ffmpeg, gstreamer, ...) decodes it"
  return f"{type(error).__name__}: {text}" if text else type(error).__name__


def load_audio(path: PathLike, *, sample_rate: int = constants.SAMPLE_RATE,
               min_seconds: float = 0.0, min_sample_rate: int = 0) -> np.ndarray:
  """Loads an audio file as mono float32 at `sample_rate` (paper 3.1: 16 kHz).

  Args:
    path: audio file (wav, flac, ogg, mp3, ...; anything soundfile or audioread
      can decode).
    sample_rate: output sample rate in Hz.
    min_seconds: minimum duration in seconds (after decoding).
    min_sample_rate: the file's lowest acceptable sample rate, Hz (0: any).

  Returns:
    float32 array (n,) of samples in [-1, 1] (full scale), mono (channel mean),
    resampled to `sample_rate` with soxr 'HQ'.

  Raises:
    AudioError (a ValueError) naming the file and the reason when the file is
    missing or not a file, cannot be decoded (corrupt or unknown format), holds
    0 samples, holds NaN/inf, is shorter than `min_seconds`, has a sample rate
    under `min_sample_rate`, or is silent (peak absolute amplitude < 1e-4).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    raise AudioError(path, "file not found (missing)")
  if not os.path.isfile(path):
    raise AudioError(path, "not a regular file")
  try:
    data, sr = _read_soundfile(path)
  except Exception as sf_error:  # pylint: disable=broad-except
    try:
      data, sr = _read_audioread(path)
    except Exception as ar_error:  # pylint: disable=broad-except
      raise AudioError(
          path, "unreadable: corrupt file or unknown audio format "
          f"(soundfile: {_describe(sf_error)}; audioread: "
          f"{_describe(ar_error)})") from ar_error
  return prepare_samples(data, sr, name=path, sample_rate=sample_rate,
                         min_seconds=min_seconds, min_sample_rate=min_sample_rate)


def prepare_samples(data: np.ndarray, sr: int, *, name: str,
                    sample_rate: int = constants.SAMPLE_RATE,
                    min_seconds: float = 0.0, min_sample_rate: int = 0
                    ) -> np.ndarray:
  """Checks decoded samples and makes them mono float32 at `sample_rate`.

  Args:
    data: (n,) mono or (n, channels) samples, full scale 1.0 (float) or int16/int32
      PCM (scaled to full scale).
    sr: their sample rate, Hz.
    name: what the samples are (a file path, or e.g. "<performance array>"), named
      in errors.
    sample_rate: output sample rate in Hz.
    min_seconds: minimum duration in seconds.
    min_sample_rate: lowest acceptable `sr`, Hz (0: any).

  Returns:
    float32 (m,) mono (channel mean) at `sample_rate` (soxr 'HQ').

  Raises:
    AudioError naming `name`: empty, more than 2 dimensions, a non-positive sample
    rate or one under `min_sample_rate`, NaN/inf samples, shorter than
    `min_seconds`, or silent (peak < 1e-4).
  """
  data = np.asarray(data)
  if np.issubdtype(data.dtype, np.integer):
    data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
  data = data.astype(np.float32, copy=False)
  if data.ndim == 1:
    data = data[:, None]
  if data.ndim != 2:
    raise AudioError(name, f"samples must be (n,) or (n, channels), got {data.shape}")
  if data.size == 0 or data.shape[0] == 0:
    raise AudioError(name, "empty audio (0 samples)")
  if sr <= 0:
    raise AudioError(name, f"invalid sample rate {sr} Hz")
  if sr < min_sample_rate:
    raise AudioError(name, f"wrong sample rate: {sr} Hz is under the {min_sample_rate} "
                     "Hz that singing needs")
  mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
  if not np.all(np.isfinite(mono)):
    raise AudioError(name, "audio contains NaN or infinite samples (corrupt)")
  duration = mono.shape[0] / sr
  if duration < min_seconds:
    raise AudioError(
        name, f"too short: {duration:.3f} s < minimum {min_seconds:.3f} s")
  peak = float(np.max(np.abs(mono)))
  if peak < SILENCE_PEAK:
    raise AudioError(
        name, f"silent: peak amplitude {peak:.2e} < {SILENCE_PEAK:.0e}")
  if sr != sample_rate:
    mono = soxr.resample(mono, sr, sample_rate, quality="HQ")
  return np.ascontiguousarray(mono, dtype=np.float32)
