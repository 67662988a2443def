"""Throughput of the clip representation (paper 3.1): clips/s per channel and total.

Synthetic vocal-like 3 s clips (a glottal-like harmonic tone with vibrato, a
random melody of held notes, syllable-rate amplitude envelope, a little breath
noise) are pushed through each channel function and through
`extract.extract_features` for each CREPE capacity, in one process. CREPE is
jit-compiled and run once on the batch before timing. The librosa channels
run with single-threaded BLAS, as `extract_features` runs them. Prints numbers only: wall-clock clips/s and ms/clip,
and this process's CPU ms/clip (less sensitive to other load on the machine;
above wall time when a library uses several threads).

  python benchmarks/features.py --n=32 --capacity=tiny,full --batch=16
"""

import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                ".."))

from asa_jax.features import chroma as chroma_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.features import constants  # pylint: disable=wrong-import-position
from asa_jax.features import extract  # pylint: disable=wrong-import-position
from asa_jax.features import logmel  # pylint: disable=wrong-import-position
from asa_jax.features import tempogram  # pylint: disable=wrong-import-position

_N = flags.DEFINE_integer("n", 32, "Number of clips to time.")
_BATCH = flags.DEFINE_integer("batch", 16, "Clips per extract_features call.")
_CAPACITY = flags.DEFINE_list("capacity", ["tiny", "full"],
                              "CREPE capacities to time ('tiny', 'full'); empty: none.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed of the synthetic clips.")


def vocal_like_clips(n: int, seed: int = 0) -> np.ndarray:
  """(n, 48000) float32 synthetic sung phrases at 16 kHz."""
  rng = np.random.default_rng(seed)
  sr, length = constants.SAMPLE_RATE, constants.CLIP_SAMPLES
  t = np.arange(length) / sr
  clips = np.zeros((n, length), np.float32)
  for i in range(n):
    n_notes = rng.integers(3, 7)
    bounds = np.sort(rng.integers(0, length, n_notes - 1))
    midi = np.repeat(rng.integers(50, 72, n_notes),
                     np.diff(np.concatenate([[0], bounds, [length]])))
    vib = 0.3 * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * t)
    f0 = 440.0 * 2.0 ** ((midi + vib - 69) / 12)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(h * phase) / h ** 1.2 for h in range(1, 16)
            if h * f0.max() < sr / 2)
    env = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t)) ** 0.5
    x = x * env + 0.02 * rng.standard_normal(length)
    clips[i] = (0.3 * x / np.max(np.abs(x))).astype(np.float32)
  return clips


def _time(fn, clips, batch):
  """Returns (wall seconds, CPU seconds of this process) for all clips."""
  start, cpu = time.perf_counter(), time.process_time()
  for i in range(0, clips.shape[0], batch):
    with extract.single_threaded_blas():  # as extract_features runs them
      fn(clips[i:i + batch])
  return time.perf_counter() - start, time.process_time() - cpu


def _report(name, n, seconds):
  wall, cpu = seconds
  print(f"  {name:32s} {n / wall:8.1f} clips/s  ({1000 * wall / n:7.1f} ms/clip "
        f"wall, {1000 * cpu / n:7.1f} ms/clip CPU)")


def main(argv):
  del argv
  n, batch = _N.value, _BATCH.value
  clips = vocal_like_clips(n, _SEED.value)
  print(f"{n} synthetic vocal-like clips of {constants.CLIP_SECONDS} s, "
        f"batches of {batch}, pid {os.getpid()}, "
        f"cpu count {os.cpu_count()}")
  mel = logmel.log_mel(clips[:2])  # warm up librosa caches (filters, numba)
  chroma_lib.chroma(clips[:2])
  tempogram.cyclic_tempogram_from_logmel(mel)
  rows = [
      ("spec (log-mel)", logmel.log_mel),
      ("chroma (CQT) + tchroma", lambda x: chroma_lib.chroma_to_tchroma(
          chroma_lib.chroma(x))),
      ("tempo (incl. its log-mel)", tempogram.cyclic_tempogram),
      ("tempo from given log-mel", None),
      ("4 channels, no f0 (extract)",
       lambda x: extract.extract_features(
           x, channels=("spec", "chroma", "tchroma", "tempo"))),
  ]
  mels = {i: logmel.log_mel(clips[i:i + batch]) for i in range(0, n, batch)}
  for name, fn in rows:
    if fn is None:
      start, cpu = time.perf_counter(), time.process_time()
      for m in mels.values():
        with extract.single_threaded_blas():
          tempogram.cyclic_tempogram_from_logmel(m)
      seconds = (time.perf_counter() - start, time.process_time() - cpu)
    else:
      _time(fn, clips[:batch], batch)  # warm up at the timed batch shape
      seconds = _time(fn, clips, batch)
    _report(name, n, seconds)
  for capacity in _CAPACITY.value:
    try:
      from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top
      start = time.perf_counter()
      crepe.crepe_activation(clips[:batch], capacity=capacity)
      print(f"  [crepe {capacity}: first call incl. weights + jit "
            f"{time.perf_counter() - start:.1f} s]")
      seconds = _time(lambda x, c=capacity: crepe.crepe_to_96(
          crepe.crepe_activation(x, capacity=c)), clips, batch)
      _report("f0 CREPE " + capacity, n, seconds)
      seconds = _time(lambda x, c=capacity: extract.extract_features(
          x, crepe_capacity=c), clips, batch)
      _report("ALL 5 channels, CREPE " + capacity, n, seconds)
    except Exception as e:  # pylint: disable=broad-except  (report, go on)
      print(f"  f0 CREPE {capacity}: not measured: {type(e).__name__}: {e}")

if __name__ == "__main__":
  app.run(main)
