"""Where numba caches librosa's compiled functions, and who may write that cache.

Why this module exists (BUILD_NOTES.md, "The numba cache crash"): librosa marks its
numba functions `cache=True`, so the first process that calls one writes the machine
code to disk and later processes load it. numba's gufunc cache is not safe against two
processes compiling the same module at once (numba issue 10128, open in 0.68.1): a
`@guvectorize` function is cached as two files, the kernel and its `guf-` wrapper, and
the wrapper calls the kernel by a symbol whose version tag comes from a per-process
counter. When two feature-build workers compile concurrently, the kernel file can come
from one process and the wrapper from the other; every later process that loads the
pair calls a symbol that does not exist and dies of SIGSEGV at address 0 (first seen in
`librosa.yin`'s `_parabolic_interpolation`).

The fix has two parts:
  * `configure()` points numba's cache at a folder of ours (`cache_dir()`), not at
    `site-packages/librosa/**/__pycache__`, which is shared by every user of the venv
    and, once corrupted, crashes them all;
  * `warm(config)` compiles every numba function that a build worker calls, in one
    process, under an exclusive file lock, before any worker starts. Workers then only
    load from the cache and never write it, so no two processes write it at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
from typing import Iterator

ENV_CACHE_DIR = "NUMBA_CACHE_DIR"
ENV_OUR_CACHE = "ASA_JAX_CACHE_DIR"
_LOCK_NAME = ".asa_jax_warm.lock"


def cache_dir() -> str:
  """The numba cache folder used by asa-jax processes (absolute path).

  $NUMBA_CACHE_DIR when the user set it; else $ASA_JAX_CACHE_DIR/numba; else
  $XDG_CACHE_HOME/asa-jax/numba (default ~/.cache/asa-jax/numba). The numba and
  Python versions are part of numba's own file names, so one folder serves several
  venvs.
  """
  if os.environ.get(ENV_CACHE_DIR):
    return os.path.abspath(os.environ[ENV_CACHE_DIR])
  root = os.environ.get(ENV_OUR_CACHE) or os.path.join(
      os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "asa-jax")
  return os.path.abspath(os.path.join(root, "numba"))


def configure() -> str:
  """Sets NUMBA_CACHE_DIR to `cache_dir()` for this process and its children.

  Must run before librosa's numba functions are first imported (asa_jax/__init__.py
  calls it); if numba is already imported its config is re-read. Spawned workers
  inherit the variable.

  Returns:
    The cache folder (created).
  """
  path = cache_dir()
  os.makedirs(path, exist_ok=True)
  if os.environ.get(ENV_CACHE_DIR) != path:
    os.environ[ENV_CACHE_DIR] = path
    if "numba" in sys.modules:
      from numba.core import config as numba_config  # pylint: disable=g-import-not-at-top
      numba_config.reload_config()
  return path


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

  path = configure()
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
