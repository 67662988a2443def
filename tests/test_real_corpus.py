"""input_pipeline.corpora.real: deterministic, resumable, disjoint splits, real audio."""

import csv
import hashlib
import os

import pytest

from input_pipeline import manifest as manifest_lib
from input_pipeline.corpora import real as real_corpus
from tests.conftest import require_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIR1K = os.path.join(ROOT, "..", "shared", "data", "mir1k")



@pytest.fixture(autouse=True)
def _mir1k():
  """Skips (or fails, with ASA_REQUIRE_DATA=1) without MIR-1K."""
  require_data(os.path.join(MIR1K, "voice"), "real singing data (MIR-1K)")


def _digest(folder):
  """sha1 of every file under folder except the report (it holds timings)."""
  out = {}
  for d, _, files in os.walk(folder):
    for f in files:
      if f == "report.json":
        continue
      path = os.path.join(d, f)
      with open(path, "rb") as fh:
        out[os.path.relpath(path, folder)] = hashlib.sha1(fh.read()).hexdigest()
  return out


def _build(out, **kw):
  return real_corpus.build_corpus(str(out), mir1k_dir=MIR1K, variant="small",
                                  max_sources=4, versions=3, seed=3, **kw)


def test_builder_is_deterministic_resumable_and_writes_a_valid_manifest(tmp_path):
  report = _build(tmp_path / "a")
  assert report["sources_built"] >= 3 and not report["sources_skipped"]
  rows, problems = manifest_lib.read_manifest(str(tmp_path / "a" / "manifest.csv"))
  assert not problems and len(rows) == 3 * report["sources_built"]
  with open(tmp_path / "a" / "manifest.csv", encoding="utf-8") as f:
    extra = list(csv.DictReader(f))
  for row, meta in zip(rows, extra):
    assert os.path.exists(row.performance_audio) and os.path.exists(row.reference_audio)
    assert row.accompaniment_audio and os.path.exists(row.accompaniment_audio)
    assert 0.0 <= row.score <= 100.0
    for family in ("pitch_score", "timing_score", "voice_score"):
      assert 0.0 <= float(meta[family]) <= 100.0
      assert row.score <= float(meta[family]) + 1e-9  # The total includes every loss.
    if row.performance_id.endswith("_v0"):
      assert row.score == 100.0  # The undegraded (vocoded) version.
    assert row.reference_audio != row.performance_audio
  assert len({r.score for r in rows}) > len(rows) // 2  # Spread, not one level.

  # Same seed, another folder: the same bytes.
  _build(tmp_path / "b", workers=2)
  assert _digest(tmp_path / "a") == _digest(tmp_path / "b")

  # Resume: finished sources are not rebuilt; a lost one is rebuilt identically.
  before = _digest(tmp_path / "a")
  victim = rows[0].performance_id.rsplit("_v", 1)[0]
  os.remove(tmp_path / "a" / "sources" / f"{victim}.json")
  mtimes = {p: os.stat(tmp_path / "a" / p).st_mtime_ns for p in before
            if os.path.exists(tmp_path / "a" / p)}
  _build(tmp_path / "a")
  assert _digest(tmp_path / "a") == before
  rebuilt = {p for p in before
             if os.stat(tmp_path / "a" / p).st_mtime_ns != mtimes.get(p)}
  assert rebuilt and all(victim in p or p == "manifest.csv" for p in rebuilt)


def test_splits_are_disjoint_by_song_and_singer():
  sources = real_corpus.discover_mir1k(MIR1K)
  assert len(sources) == 1000
  songs = real_corpus.song_groups(sources, MIR1K)
  shared = [g for g in set(songs.values())
            if len({k.split("_")[0] for k, v in songs.items() if v == g}) > 1]
  assert len(shared) >= 5  # MIR-1K has ~10 songs sung by several singers.
  v = real_corpus.VARIANTS["full"]
  splits, dropped = real_corpus.assign_splits(
      sources, songs, seed=0, test_singers=v.test_singers,
      validation_singers=v.validation_singers)
  by = {s.clip: s for s in sources}
  singers = {sp: {by[c].singer for c, x in splits.items() if x == sp}
             for sp in ("train", "validation", "test")}
  song_sets = {sp: {songs[by[c].song_key] for c, x in splits.items() if x == sp}
               for sp in ("train", "validation", "test")}
  assert len(singers["test"]) == v.test_singers
  for a, b in (("train", "test"), ("train", "validation"), ("validation", "test")):
    assert not singers[a] & singers[b]
    assert not song_sets[a] & song_sets[b]
  assert len(splits) + len(dropped) == len(sources)
