"""asa_jax.atomic: a failed write leaves the old file and no temporary behind."""

import math
import os

import pytest

from asa_jax import atomic


def test_write_replaces_whole_file_and_creates_parents(tmp_path):
  path = tmp_path / "a" / "b" / "out.json"
  atomic.write_json(path, {"x": 1})
  atomic.write_text(path, "second")
  assert path.read_text() == "second"
  assert os.listdir(path.parent) == ["out.json"]


def test_failed_write_keeps_old_file_and_removes_temporary(tmp_path):
  path = tmp_path / "out.txt"
  atomic.write_text(path, "old")
  with pytest.raises(RuntimeError, match="boom"):
    with atomic.atomic_path(path) as tmp:
      assert atomic.TMP_MARK in os.path.basename(tmp)
      with open(tmp, "w", encoding="utf-8") as f:
        f.write("half")
      raise RuntimeError("boom")
  assert path.read_text() == "old"
  assert os.listdir(tmp_path) == ["out.txt"]
  with pytest.raises(ValueError, match="not JSON compliant"):  # NaN: nothing written.
    atomic.write_json(path, {"r": math.nan})
  assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]
