"""Bit-reproducibility of the main job's data stages (issue 20, part 5).

The same command on the same machine must give byte-identical demo audio and
feature records. Uninitialised memory (`np.empty`) was the cause of the demo audio's
one-LSB differences between runs, and it only shows when the heap happens to hold
other values, so the second corpus here is generated with every `np.empty` /
`np.empty_like` filled with NaN: any read of unwritten memory changes (or breaks)
the files.
"""

import hashlib
import os

import numpy as np
import pytest

from input_pipeline.corpora import demo as demo_corpus


def _hashes(root) -> dict[str, str]:
  """relative path -> SHA-256 of the file's bytes, for every file under root."""
  out = {}
  for folder, _, files in os.walk(root):
    for name in files:
      path = os.path.join(folder, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
  return out


def _poisoned(real):
  """np.empty / np.empty_like that return NaN-filled (floats) or -1 (ints) arrays."""
  def empty(*args, **kwargs):
    x = real(*args, **kwargs)
    x[...] = np.nan if np.issubdtype(x.dtype, np.inexact) else -1
    return x
  return empty


def test_demo_corpus_is_byte_identical_whatever_the_heap_holds(tmp_path, monkeypatch):
  kwargs = dict(songs=3, performances=2, seed=3, min_seconds=3.0, max_seconds=3.5)
  demo_corpus.generate_corpus(str(tmp_path / "a"), **kwargs)
  monkeypatch.setattr(np, "empty", _poisoned(np.empty))
  monkeypatch.setattr(np, "empty_like", _poisoned(np.empty_like))
  demo_corpus.generate_corpus(str(tmp_path / "b"), **kwargs)
  monkeypatch.undo()
  a, b = _hashes(tmp_path / "a"), _hashes(tmp_path / "b")
  assert len(a) == 3 * (2 + 2) + 2  # wavs (2 performances, reference,
  # accompaniment per song), manifest.csv, README.txt.
  assert a == b, sorted(k for k in a if a[k] != b.get(k))


def test_feature_records_are_byte_identical_whatever_the_heap_holds(tmp_path,
                                                                    monkeypatch):
  """The real feature build (all 5 channels, CREPE tiny, one in-process Dask worker)
  of a one-song corpus, twice: the second time with np.empty poisoned as above."""
  from configs import rori  # pylint: disable=g-import-not-at-top
  from input_pipeline import build as build_lib  # pylint: disable=g-import-not-at-top
  corpus = tmp_path / "corpus"
  demo_corpus.generate_corpus(str(corpus), songs=1, performances=2, seed=4,
                              min_seconds=4.0, max_seconds=4.5)
  config = rori.get_config("demo")
  config.data.build_workers = 1
  config.data.min_voiced_fraction = 0.0  # a record per 3 s segment, voiced or not.

  def build(out):
    report = build_lib.build_records(str(corpus / "manifest.csv"), str(out), config)
    assert sorted(report.built) == ["song00_p00", "song00_p01"], report.skipped
    # build_report.json names its own folder; every other file must be equal.
    return {k: v for k, v in _hashes(out).items() if k != "build_report.json"}

  first = build(tmp_path / "a")
  monkeypatch.setattr(np, "empty", _poisoned(np.empty))
  monkeypatch.setattr(np, "empty_like", _poisoned(np.empty_like))
  second = build(tmp_path / "b")
  monkeypatch.undo()
  assert any(k.endswith(".array_record") for k in first), first
  assert first == second, sorted(k for k in first if first[k] != second.get(k))
