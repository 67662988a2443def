"""numba's cache: our own folder, and build workers only ever read it.

Two processes compiling librosa's gufuncs at once can leave a kernel and its wrapper
from different processes in the cache, and every later reader segfaults (numba issue
10128; BUILD_NOTES.md "The numba cache crash"). The build therefore fills the cache in
one process (`numba_warm.warm`) before its workers start; these tests check that
nothing a worker calls is left for the workers to compile and write.
"""

import os
import subprocess
import sys

import pytest

from asa_jax import numba_cache

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What a feature-build worker runs (input_pipeline.shard._build_song), on audio unlike
# the warm-up's: another length, key, sample rate, and DTW alignment.
WORKER = r"""
import numpy as np, soundfile as sf, sys, tempfile, os
from configs import base
from asa_jax.features import constants, extract
from input_pipeline import segments, shard
from tests import signals
config = base.get_config()
config.data.alignment = "dtw"
notes = [62, 64, 66, 67, 69, 71, 73, 74, 62, 66, 69]
y = np.concatenate([signals.harmonic_tone(m, 0.7, 0.3, harmonics=5) for m in notes])
with tempfile.TemporaryDirectory() as d:
  sf.write(os.path.join(d, "p.wav"), np.repeat(y, 3)[:, None], 48000)
  perf = shard.load_audio(os.path.join(d, "p.wav"), min_seconds=3.0)
ref = perf[::-1].copy()
t = segments.transposition_from_profiles(segments.pitch_class_profile(perf),
                                         segments.pitch_class_profile(ref))
segs = segments.plan_segments(perf, ref, config, transposition=t)
clips = np.stack([extract.clip_at(perf, s.start) for s in segs[:2]] or
                 [extract.clip_at(perf, 0.0)])
extract.extract_features(clips, channels=[c for c in constants.CHANNELS if c != "f0"])
print("worker path ok")
"""

WARM = r"""
from configs import base
from input_pipeline import numba_warm
print("warm", numba_warm.warm(base.get_config()))
"""


def _run(code, cache):
  env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=ROOT)
  return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                        capture_output=True, text=True, timeout=600)


def _snapshot(folder):
  return {os.path.relpath(os.path.join(d, f), folder):
          os.stat(os.path.join(d, f)).st_mtime_ns
          for d, _, files in os.walk(folder) for f in files}


@pytest.mark.timeout(900)
def test_warm_leaves_nothing_for_workers_to_write(tmp_path):
  cache = tmp_path / "numba"
  warm = _run(WARM, cache)
  assert warm.returncode == 0, warm.stderr[-3000:]
  before = _snapshot(cache)
  assert any(name.endswith(".nbc") for name in before)
  assert any("guf-" in name for name in before)  # librosa's gufuncs are cached.
  worker = _run(WORKER, cache)
  assert worker.returncode == 0, worker.stderr[-3000:]
  assert "worker path ok" in worker.stdout
  after = _snapshot(cache)
  assert after == before, (
      "a build worker compiled and wrote numba cache entries that numba_warm.warm "
      f"does not cover: {sorted(set(after.items()) - set(before.items()))}")


def test_cache_dir_is_ours_not_site_packages(monkeypatch, tmp_path):
  monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
  monkeypatch.setenv("ASA_JAX_CACHE_DIR", str(tmp_path / "c"))
  assert numba_cache.cache_dir() == str(tmp_path / "c" / "numba")
  monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "user"))
  assert numba_cache.cache_dir() == str(tmp_path / "user")  # The user's choice wins.
  # Importing asa_jax sets it (for the process and the workers it spawns), and numba,
  # even when imported first, then caches there.
  code = ("import numba, os, asa_jax; from numba.core import config; "
          "print(os.environ['NUMBA_CACHE_DIR'], config.CACHE_DIR)")
  env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
  out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
  want = str(tmp_path / "c" / "numba")
  assert out.stdout.split() == [want, want], out.stderr[-2000:]
  assert os.path.isdir(want)
