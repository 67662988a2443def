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
  * `input_pipeline.numba_warm.warm(config)` compiles every numba function that a
    build worker calls, in one process, under an exclusive file lock, before any
    worker starts. Workers then only load from the cache and never write it, so no two
    processes write it at once. (It lives with the build it serves: it runs the
    build's own segment planning.)
"""

from __future__ import annotations

import os
import sys

ENV_CACHE_DIR = "NUMBA_CACHE_DIR"
ENV_OUR_CACHE = "ASA_JAX_CACHE_DIR"


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
