"""Fills numba's cache before a feature build's workers start (asa_jax/numba_cache.py).

numba's gufunc cache is not safe against two processes compiling the same module at
once (numba issue 10128; BUILD_NOTES.md "The numba cache crash"), so `warm` compiles
every numba function a build worker calls, in one process, under an exclusive file
lock; the workers then only read the cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from typing import Iterator

from asa_jax import numba_cache

_LOCK_NAME = ".asa_jax_warm.lock"


@contextlib.contextmanager
def _exclusive(path: str) -> Iterator[None]:
  """An exclusive advisory lock (fcntl.flock) on `path`, held inside the block."""
  with open(path, "a", encoding="utf-8") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def _tone(seconds: float, sample_rate: int) -> "np.ndarray":
  import numpy as np  # pylint: disable=g-import-not-at-top
  t = np.arange(int(seconds * sample_rate)) / sample_rate
  notes = 220.0 * 2.0 ** (np.floor(t / 0.5) % 5 / 12.0)  # A short 5-note melody.
  phase = 2 * np.pi * np.cumsum(notes) / sample_rate
  return (0.3 * (np.sin(phase) + 0.3 * np.sin(2 * phase))).astype(np.float32)


def warm(config) -> str:
  """Compiles and caches every numba function a feature-build worker calls.

  Runs the worker's librosa path once on a synthetic 8 s melody: audio loading and
  resampling (from a temporary 22.05 kHz stereo WAV), the pitch-class profile (YIN),
  `segments.plan_segments` and the DTW path (`segments.dtw_path`), and the librosa
  channels of `extract.extract_features` (log-mel, chroma, circle-of-fifths chroma, cyclic
  tempogram; CREPE is JAX, not numba). The lock serialises concurrent warm-ups of
  several builds on one cache.

  Args:
    config: the build's ConfigDict (reads config.data.alignment and segmentation
      fields through `segments.plan_segments`).

  Returns:
    The cache folder.
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top

  from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
  from asa_jax.features import constants  # pylint: disable=g-import-not-at-top
  from asa_jax.features import extract  # pylint: disable=g-import-not-at-top
  from input_pipeline import segments  # pylint: disable=g-import-not-at-top

  path = numba_cache.configure()
  with _exclusive(os.path.join(path, _LOCK_NAME)):
    with tempfile.TemporaryDirectory() as tmp:
      wav = os.path.join(tmp, "warm.wav")
      stereo = _tone(8.0, 22050)
      sf.write(wav, np.stack([stereo, stereo], axis=1), 22050)
      y = audio_lib.load_audio(wav, sample_rate=constants.SAMPLE_RATE)
    segments.pitch_class_profile(y)
    segs = segments.plan_segments(y, y, config, transposition=0)
    segments.dtw_path(y, y)  # DTW alignment, whatever config.data.alignment says.
    start = segs[0].start if segs else 0.0
    clip = extract.clip_at(y, start)[None]
    librosa_channels = [c for c in constants.CHANNELS if c != "f0"]
    extract.extract_features(clip, channels=librosa_channels)
  return path
