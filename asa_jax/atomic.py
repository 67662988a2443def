"""Atomic file writes: the one helper every writer in asa-jax goes through.

A file is written under a hidden temporary name in its final folder (`TMP_MARK` in
the name, so that resumable builds can find and delete leftovers), flushed and
fsynced, then `os.replace`d to its final name: a reader sees the old file or the whole
new one, never part of one, and a crash leaves only a temporary to delete.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Any, Iterator

TMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
  """Yields a temporary path beside `path`; moves it to `path` if the block succeeds.

  For writers that need a file name (ArrayRecord writers, np.savez). The parent folder
  is created. If the block raises, the temporary file is removed and `path` is left as
  it was.

  Args:
    path: the final file path.

  Yields:
    str: the temporary path (hidden, in the same folder, `TMP_MARK` in its name).
  """
  path = os.fspath(path)
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  tmp = os.path.join(folder, f".{os.path.basename(path)}{TMP_MARK}{os.getpid()}-"
                     f"{uuid.uuid4().hex[:8]}")
  try:
    yield tmp
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically (parents created; fsynced before the rename)."""
  with atomic_path(path) as tmp:
    with open(tmp, "xb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
  """UTF-8 text version of `write_bytes`."""
  write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> None:
  """Writes `obj` as JSON atomically.

  Raises:
    ValueError: `obj` holds NaN or infinity (not valid JSON), or a circular reference.
    TypeError: `obj` is not JSON-serialisable.
  """
  write_text(path, json.dumps(obj, indent=indent, allow_nan=False))
