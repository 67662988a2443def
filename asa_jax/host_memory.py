"""Give freed heap back to the operating system (glibc's malloc_trim).

Two users: the training loop, after the initialiser and the step compile and before
the step's first call, and after each validation; and each scoring-service worker
after every request (asa_jax.assess.serve.worker: the alignment's large
temporary matrices, freed, otherwise stay in malloc's arenas between requests).

Compiling the paper-config train step on the CPU backend takes the process from
~0.55 to ~1.85 GiB of RSS; most of it is compiler memory that is already freed but
that glibc's malloc keeps in its arenas, so the step's own buffers (XLA temp ~1.85
GiB at batch 32) come on top of it. `malloc_trim(0)` once after the compilation
returns it: peak RSS of a batch-32 paper step 4.06 -> 3.22 GiB (BUILD_NOTES.md,
"CPU speed against the PyTorch peer").
"""

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _malloc_trim():
  """glibc's malloc_trim, or None (another C library, or not Linux)."""
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return libc.malloc_trim
  except (OSError, AttributeError):
    return None


def release() -> bool:
  """Returns freed heap pages to the OS (glibc `malloc_trim(0)`); host-only, it does
  not wait for the devices. True if it ran, False where there is no malloc_trim."""
  trim = _malloc_trim()
  if trim is None:
    return False
  trim(0)
  return True
