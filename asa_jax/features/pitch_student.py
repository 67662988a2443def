"""A small pitch network distilled from CREPE tiny: a fast f0 tracker for the
contour and scoring path (issue 20, part 1).

CREPE tiny costs about 37 M multiply-adds per frame (its first convolution reads
the raw 1024-sample frame); this student reads the frame's STFT instead: the
log-magnitude of a 1024-sample Hann window (librosa.stft, centred, the frame grid
of `crepe.crepe_activation`), bins 0-4 kHz (N_BINS = 257), in dB re the frame's
loudest bin, clipped at -80 dB and scaled to [0, 1]; then an MLP (ReLU hidden
layers) to CREPE's 360 pitch bins (sigmoid), decoded as CREPE is
(`crepe.activation_to_f0`: local weighted average, confidence = max activation).
About 0.58 M multiply-adds per frame with 512 hidden units.

It was trained (`asa_jax.experiments.distil_pitch`, the recipe) on CREPE tiny's
activations as soft targets (binary cross-entropy, as CREPE's own training) of
singing that is NOT in the evaluation sets: SSVD v2's train_valid recordings, the
jingju teacher/student phrases and vocadito, each also resampled +-4 semitones. No
MIR-1K (the accuracy test) and no SSVD v1 (the scorer's check). The weights ship in
the package (`pitch_student.npz`, float32; no download, no torch).

VOICING_THRESHOLD is the confidence at which the student's voicing agrees best with
CREPE tiny's (confidence >= 0.5) on the training data's held-out blocks.
"""

from __future__ import annotations

import functools
import hashlib
import os

import numpy as np

from asa_jax.features import crepe

WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pitch_student.npz")
N_FFT = crepe.WINDOW_SIZE  # 1024 samples at 16 kHz, CREPE's frame.
N_BINS = 257  # STFT bins 0 .. 4 kHz (15.6 Hz apart).
FLOOR_DB = 80.0  # the log-magnitude is clipped this far below the frame's peak.
VOICING_THRESHOLD = 0.3


class PitchStudentError(RuntimeError):
  """The shipped weights are missing or unreadable (names the file)."""


def magnitudes(audio: np.ndarray, hop_length: int = 160) -> np.ndarray:
  """STFT magnitudes of the student's frames: float32 (T, N_BINS), T = 1 + n //
  hop_length (1024-sample Hann window, centred; bins 0-4 kHz).

  Args:
    audio: float (n,) mono samples at 16 kHz.
    hop_length: samples between frames (frame k centred at sample k * hop_length).

  Raises:
    ValueError: audio not 1-D.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (slow import)
  x = np.asarray(audio, np.float32)
  if x.ndim != 1:
    raise ValueError(f"audio must be (n,), got {x.shape}")
  return np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=hop_length, window="hann",
                             center=True))[:N_BINS].T


def scale(mag: np.ndarray) -> np.ndarray:
  """Magnitudes (T, N_BINS) -> the student's input, float32 in [0, 1]: dB re each
  frame's loudest bin, clipped at -FLOOR_DB."""
  db = 20.0 * np.log10(np.asarray(mag, np.float32) + 1e-6)
  db -= db.max(axis=1, keepdims=True)
  return (np.clip(db, -FLOOR_DB, 0.0) / FLOOR_DB + 1.0).astype(np.float32)


def features(audio: np.ndarray, hop_length: int = 160) -> np.ndarray:
  """The student's input: float32 (T, N_BINS) in [0, 1], T = 1 + n // hop_length
  (`scale` of `magnitudes`).

  Raises:
    ValueError: audio not 1-D.
  """
  return scale(magnitudes(audio, hop_length))


@functools.lru_cache(maxsize=4)
def load_params(path: str = WEIGHTS) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """((W float32 (d_in, d_out), b float32 (d_out,)), ...) of the MLP's layers.

  Raises:
    PitchStudentError: the file is missing or not the student's weights.
  """
  try:
    with np.load(path) as z:
      n = sum(1 for k in z.files if k.startswith("W"))
      params = tuple((np.asarray(z[f"W{i}"], np.float32), np.asarray(z[f"b{i}"], np.float32))
                     for i in range(n))
  except (OSError, KeyError, ValueError) as e:
    raise PitchStudentError(f"{path}: cannot read the pitch student's weights ({e}); "
                            "rebuild them with python -m asa_jax.experiments."
                            "distil_pitch") from e
  if not params or params[0][0].shape[0] != N_BINS or params[-1][0].shape[1] != crepe.PITCH_BINS:
    raise PitchStudentError(f"{path}: not a {N_BINS} -> {crepe.PITCH_BINS} pitch student")
  return params


def settings(path: str = WEIGHTS) -> dict:
  """What the student's contours depend on besides the audio (cache keys): its
  weights' fingerprint and its voicing threshold."""
  return {"student_weights": fingerprint(path),
          "student_voicing_threshold": VOICING_THRESHOLD}


def fingerprint(path: str = WEIGHTS) -> str:
  """SHA-256 (16 hex digits) of the weights file (part of cache keys); hashed once
  per file version (path, size, modification time).

  Raises:
    OSError: the file cannot be read.
  """
  st = os.stat(path)
  return _fingerprint(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _fingerprint(path: str, size: int, mtime_ns: int) -> str:
  del size, mtime_ns  # the cache key only.
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()[:16]


def activation(x: np.ndarray, params) -> np.ndarray:
  """The MLP: float32 (T, N_BINS) features -> (T, 360) sigmoid activations."""
  h = np.asarray(x, np.float32)
  for w, b in params[:-1]:
    h = np.maximum(h @ w + b, 0.0)
  w, b = params[-1]
  z = h @ w + b
  return (0.5 * (1.0 + np.tanh(0.5 * z))).astype(np.float32)  # sigmoid, no overflow.


def student_f0(audio: np.ndarray, *, hop_length: int = 160,
               n_frames: int | None = None, path: str = WEIGHTS
               ) -> tuple[np.ndarray, np.ndarray]:
  """f0 and confidence of 16 kHz mono audio on CREPE's frame grid.

  Args:
    audio: float (n,) mono samples at 16 kHz.
    hop_length: samples between frames.
    n_frames: frames to return (default 1 + n // hop_length; cut or last-padded).
    path: the weights file.

  Returns:
    (f0 Hz float32 (T,): a guess on every frame; confidence float32 (T,) in [0, 1]:
     voiced where >= VOICING_THRESHOLD).

  Raises:
    ValueError: audio not 1-D.
    PitchStudentError: the weights cannot be read.
  """
  act = activation(features(audio, hop_length), load_params(path))
  f0, conf = crepe.activation_to_f0(act)
  if n_frames is not None and len(f0) != n_frames:
    idx = np.minimum(np.arange(n_frames), len(f0) - 1)
    f0, conf = f0[idx], conf[idx]
  return f0.astype(np.float32), conf.astype(np.float32)
