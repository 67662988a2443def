"""Shared test helpers: the real-data gate, and one XLA compilation cache per run.

Tests that read real recordings from ../shared/data skip, with the path in the
message, when it is absent. With ASA_REQUIRE_DATA=1 (.ci/run sets it) a missing data
folder is a failure instead, so CI cannot pass by silently skipping them (issue 22).
"""

import atexit
import os
import shutil
import tempfile

import pytest

# One XLA compilation cache for the whole test run, in a fresh temporary folder: many
# tests (and the workers they start, which inherit the environment) compile the same
# small train and eval steps, and each compile of those costs 15-30 s on 2 CPU cores.
# A loaded executable is the compiled code itself, so results do not change. The
# folder starts empty, so a run never reads an earlier run's executables.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _XLA_CACHE = tempfile.mkdtemp(prefix="asa_jax_tests_xla_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA_DIR = os.path.join(ROOT, "..", "shared", "data")


def data_required() -> bool:
  """True when ASA_REQUIRE_DATA is set to a non-empty value other than 0."""
  return os.environ.get("ASA_REQUIRE_DATA", "") not in ("", "0")


def require_data(path: str, what: str = "real data") -> str:
  """Returns `path` if it exists; otherwise skips the test, or fails it when
  ASA_REQUIRE_DATA=1.

  Args:
    path: a file or folder under ../shared/data.
    what: what it is, for the message.

  Raises:
    pytest.skip.Exception / pytest.fail.Exception (the test's outcome).
  """
  if os.path.exists(path):
    return path
  message = f"{what} not found: {os.path.abspath(path)} (../shared/data absent)"
  if data_required():
    pytest.fail(f"ASA_REQUIRE_DATA is set but {message}", pytrace=False)
  pytest.skip(message)


@pytest.fixture(autouse=True)
def _user_cache_in_tmp(monkeypatch, tmp_path_factory):
  """asa-score writes its reference cache under $XDG_CACHE_HOME by default: tests
  write into a temporary folder, never the user's ~/.cache."""
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
  """After each test module, JAX's compiled executables are dropped.

  The README's test command runs the whole suite in one process, and XLA keeps the
  CPU code of every function compiled so far until the process ends. With the
  third session's tests that process crashed (SIGSEGV inside an XLA compile) at
  the same test twice, though that test passes alone (BUILD_NOTES, "Fresh-clone
  runs"). Later modules load what they use again from this run's compilation
  cache (above), or compile it.
  """
  yield
  import gc  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  if "jax" in sys.modules:
    sys.modules["jax"].clear_caches()
  gc.collect()
