"""The 5-channel clip representation (paper 3.1): clips -> (B, C, 96, 94).

"we employ five channels of 2-dimensional audio representations ... with
96 x 94 in dimension concatenated together like a 5-channel image" (Zhang et al.,
ISMIR 2021, section 3.1). Channels, in `constants.CHANNELS` order:

  'spec'    log-mel spectrogram in dB              logmel.log_mel        3.1 (i)
  'chroma'  constant-Q chroma, 8 rows per class    chroma.chroma         3.1 (ii)
  'tchroma' chroma in circle-of-fifths order       chroma.tchroma        3.1 (iii)
  'f0'      CREPE activation in 50-cent rows       crepe.crepe_to_96     3.1 (iv)
  'tempo'   cyclic tempogram                       tempogram             3.1 (v)

Every channel is computed for the whole batch at once (librosa's batched
leading axes; one CREPE call over all frames of all clips, which is the
expensive part); the log-mel is computed once and reused for the tempogram's
novelty curve and chroma once for tchroma. Values are NOT normalised here
(the loader normalises with per-channel training statistics).

The librosa/numpy part runs with single-threaded BLAS (`single_threaded_blas`):
its matrix products are small (e.g. 16 x 94 x 64 by 64 x 768), and on a busy
2-core machine OpenBLAS's spinning worker threads made one such product cost
250 ms of CPU instead of 1 ms. XLA's own thread pool (CREPE) is not affected.
"""

import contextlib
from typing import Iterator, Sequence

import numpy as np
import threadpoolctl

from asa_jax.features import chroma as chroma_lib
from asa_jax.features import constants
from asa_jax.features import logmel
from asa_jax.features import tempogram


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
  """Context manager: BLAS (OpenBLAS/MKL) limited to one thread inside it."""
  with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
    yield


def _validate_channels(channels: Sequence[str]) -> tuple[str, ...]:
  if isinstance(channels, str):
    raise ValueError(f"channels must be a sequence of names, got the string "
                     f"{channels!r}")
  channels = tuple(channels)
  unknown = [c for c in channels if c not in constants.CHANNELS]
  if unknown or not channels or len(set(channels)) != len(channels):
    raise ValueError(
        f"channels must be distinct names from {constants.CHANNELS}; got "
        f"{channels}")
  return channels


def _f0_channel(clips: np.ndarray, capacity: str) -> np.ndarray:
  """(B, 48000) -> (B, 96, 94) CREPE activations in 50-cent rows (C2 at row 0)."""
  from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top  (JAX)
  act = crepe.crepe_activation(clips, capacity=capacity,
                               hop_length=constants.HOP_LENGTH, center=True)
  rows = np.asarray(crepe.crepe_to_96(np.asarray(act, np.float32)), np.float32)
  return np.swapaxes(rows, -1, -2)  # (B, T, 96) -> (B, 96, T)


def extract_features(clips: np.ndarray, *,
                     channels: Sequence[str] = constants.CHANNELS,
                     crepe_capacity: str = "full") -> np.ndarray:
  """Computes the clip representation of paper 3.1 for a batch of 3 s clips.

  Args:
    clips: float array (B, 48000) of 16 kHz mono audio, full scale 1.0
      (float32; other float dtypes are converted). B may be 0.
    channels: names from constants.CHANNELS, in the wanted output order.
    crepe_capacity: 'full' or 'tiny' CREPE for the 'f0' channel.

  Returns:
    float32 (B, len(channels), 96, 94), un-normalised: spec in dB (floor
    -100), chroma/tchroma in [0, 1], f0 activations in [0, 1], tempo in [0, 1].

  Raises:
    ValueError: clips not a (B, 48000) floating array, non-finite samples,
      unknown/duplicate channel names, or a bad crepe_capacity.
  """
  channels = _validate_channels(channels)
  if crepe_capacity not in ("full", "tiny"):
    raise ValueError(
        f"crepe_capacity must be 'full' or 'tiny'; got {crepe_capacity!r}")
  x = np.asarray(clips)
  expected = f"(B, {constants.CLIP_SAMPLES}) float32 at {constants.SAMPLE_RATE} Hz"
  if x.ndim != 2 or x.shape[1] != constants.CLIP_SAMPLES:
    raise ValueError(f"clips must have shape {expected}; got shape {x.shape}")
  if not np.issubdtype(x.dtype, np.floating):
    raise ValueError(
        f"clips must have shape {expected}; got dtype {x.dtype} (convert "
        "integer PCM to float in [-1, 1] first)")
  x = np.ascontiguousarray(x, dtype=np.float32)
  b = x.shape[0]
  out = np.zeros((b, len(channels), constants.N_BINS, constants.N_FRAMES),
                 np.float32)
  if b == 0:
    return out
  if not np.all(np.isfinite(x)):
    raise ValueError("clips contain NaN or infinite samples")

  computed = {}
  with single_threaded_blas():
    if "spec" in channels or "tempo" in channels:
      spec = logmel.log_mel(x)
      computed["spec"] = spec
      if "tempo" in channels:
        computed["tempo"] = tempogram.cyclic_tempogram_from_logmel(spec)
    if "chroma" in channels or "tchroma" in channels:
      c96 = chroma_lib.chroma(x)
      computed["chroma"] = c96
      computed["tchroma"] = chroma_lib.chroma_to_tchroma(c96)
  if "f0" in channels:
    computed["f0"] = _f0_channel(x, crepe_capacity)
  for i, name in enumerate(channels):
    out[:, i] = computed[name]
  return out


def clip_at(audio: np.ndarray, start_seconds: float) -> np.ndarray:
  """Cuts the 3 s clip starting at `start_seconds` (paper 3.3: 3 s segments).

  Args:
    audio: (n,) float 16 kHz mono audio.
    start_seconds: clip start in seconds (>= 0); rounded to the nearest sample.

  Returns:
    float32 (48000,): audio[start : start + 48000], zero-padded where it runs
    past the end of `audio` (all zeros if it starts past the end).

  Raises:
    ValueError: audio not 1D, or start_seconds negative or not finite.
  """
  a = np.asarray(audio)
  if a.ndim != 1:
    raise ValueError(f"audio must be a 1D (n,) array; got shape {a.shape}")
  start_seconds = float(start_seconds)
  if not np.isfinite(start_seconds) or start_seconds < 0:
    raise ValueError(f"start_seconds must be finite and >= 0; got {start_seconds}")
  start = int(round(start_seconds * constants.SAMPLE_RATE))
  out = np.zeros(constants.CLIP_SAMPLES, np.float32)
  piece = a[start:start + constants.CLIP_SAMPLES]
  out[:piece.shape[0]] = piece
  return out
