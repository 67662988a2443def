"""Tests for the SSVD manifest adapter (input_pipeline/corpora/ssvd.py)."""

import collections
import csv
import json
import os

import numpy as np
import pytest

from input_pipeline import manifest
from input_pipeline.corpora import ssvd
from tests.conftest import require_data

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SSVD_DIR = os.path.join(REPO, "..", "shared", "data", "ssvd")


def _table(rows):
  return np.array(rows, dtype=np.float64)


def test_score_formula_hand_checked():
  # Score notes 0..5; index 4 is never sung (missing), one extra note (index -1).
  # Sung minus score: +0.2, +0.2, +0.7, +0.2, +0.2 semitones -> t = 0.2,
  # deviations 0, 0, 50, 0, 0 cents -> D = 10 -> pitch term (110 - 10) / 100 = 1.
  # complete = 1 - (1 missing + 1 extra) / 6 = 2/3 -> score 66.7.
  labels = _table([
      [0.5, 60.2, 0, 60],
      [1.0, 62.2, 1, 62],
      [1.5, 64.7, 2, 64],
      [2.0, 65.2, 3, 65],
      [2.2, 70.0, -1, 19],
      [3.0, 69.2, 5, 69],
  ])
  r = ssvd.score_labels(labels)
  assert r.n_score_notes == 6 and r.matched == 5 and r.missing == 1 and r.extra == 1
  assert r.transposition == pytest.approx(0.2)
  assert r.mean_deviation_cents == pytest.approx(10.0)
  assert r.score == pytest.approx(66.7)


def test_score_formula_transposition_cap_and_unsung_rows():
  # Sung an octave lower throughout (t = -12) except one note a further octave down
  # (capped at 200 cents); one score note unsung (sung pitch -1). N = 4.
  # D = (0 + 0 + 200) / 3 = 66.67 -> pitch = (110 - 66.67) / 100 = 0.4333;
  # complete = 1 - 1/4 = 0.75 -> score = 32.5.
  labels = _table([
      [0.5, 48.0, 0, 60],
      [1.0, 50.0, 1, 62],
      [1.5, 40.0, 2, 64],
      [-1.0, -1.0, 3, -1],
  ])
  r = ssvd.score_labels(labels)
  assert r.transposition == pytest.approx(-12.0)
  assert r.missing == 1 and r.matched == 3
  assert r.score == pytest.approx(32.5)
  # Perfect singing in another key scores 100.
  perfect = _table([[0.1 * i, 55.3 + p, i, 60 + p] for i, p in enumerate([0, 2, 4, 5, 7])])
  assert ssvd.score_labels(perfect).score == 100.0
  # The melody's note count counts notes a singer stopped before.
  assert ssvd.score_labels(perfect, n_score_notes=10).score == 50.0


def test_bad_label_files(tmp_path):
  bad = tmp_path / "bad_label.txt"
  bad.write_text("0.5\t66.2\t66.3\t20.00\n0.9\t63.9\t63.27\t21.00\n")
  with pytest.raises(ssvd.SSVDError, match="not integer-valued"):
    ssvd.read_labels(str(bad))
  with pytest.raises(ssvd.SSVDError, match="not found"):
    ssvd.read_labels(str(tmp_path / "missing.txt"))
  three = tmp_path / "three.txt"
  three.write_text("0.5\t66.2\t1\n")
  with pytest.raises(ssvd.SSVDError, match="4 columns"):
    ssvd.read_labels(str(three))
  with pytest.raises(ssvd.SSVDError, match="matched notes"):
    ssvd.score_labels(_table([[0.5, 60.0, 0, 60], [-1, -1, 1, -1]]))


def test_song_ids_are_ascii():
  assert ssvd.song_id_for("Poem_Chorus") == "ssvd-Poem_Chorus"
  sid = ssvd.song_id_for("送别")
  assert sid.isascii() and sid.startswith("ssvd-m") and sid == ssvd.song_id_for("送别")


def test_tiny_fake_corpus(tmp_path):
  """Reference = best recording; held-out melodies need >= 4 recordings."""
  layout = {"A": ["1", "2", "3", "4"], "B": ["5", "6", "7", "8"], "C": ["9", "10"],
            "D": ["11"]}
  offsets = {"1": 0.0, "2": 0.6, "3": 0.3, "4": 0.1, "5": 0.4, "6": 0.0, "7": 0.5,
             "8": 0.9, "9": 0.4, "10": 0.0, "11": 0.0}
  with open(tmp_path / "melodies.csv", "w", encoding="utf-8") as f:
    f.write("recording_id,melody\n")
    for mel, rids in layout.items():
      for rid in rids:
        f.write(f"{rid},{mel}\n")
        os.makedirs(tmp_path / rid)
        (tmp_path / rid / f"{rid}.mp3").write_bytes(b"")
        rows = []
        for i, p in enumerate([60, 62, 64, 65, 67, 69]):
          err = offsets[rid] if i % 2 else 0.0  # every other note off by offset.
          rows.append(f"{0.5 * i:.2f}\t{p + err:.2f}\t{i}\t{p}")
        (tmp_path / rid / f"{rid}_label.txt").write_text("\n".join(rows) + "\n")
  result = ssvd.build_manifest(str(tmp_path), seed=0, test_melodies=1,
                               validation_melodies=1)
  refs = {m["melody"]: m["reference"] for m in result["melodies"]}
  # A: recordings 1 and 4 both score 100 -> the smaller id wins the tie.
  assert refs == {"A": "1", "B": "6", "C": "10"}  # D (1 recording) is dropped.
  splits = {m["melody"]: m["split"] for m in result["melodies"]}
  assert sorted([splits["A"], splits["B"]]) == ["test", "validation"]
  assert splits["C"] == "train"
  assert any(s.startswith("11:") for s in result["skipped"])
  assert len(result["rows"]) == 3 + 3 + 1
  for r in result["rows"]:
    assert os.path.isabs(r["performance_audio"]) and os.path.isabs(r["reference_audio"])
    assert r["performance_audio"] != r["reference_audio"]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
  require_data(os.path.join(SSVD_DIR, "melodies.csv"), "SSVD data")
  out = tmp_path_factory.mktemp("ssvd") / "manifest.csv"
  result = ssvd.build_manifest(SSVD_DIR, seed=0)
  summary = ssvd.summarise(result)
  ssvd.write_outputs(result, summary, str(out))
  return out, result, summary


def test_real_manifest_valid(real):
  out, result, summary = real
  rows, problems = manifest.read_manifest(out, on_error="raise")
  assert not problems and len(rows) == len(result["rows"]) > 40
  for r in rows:
    assert os.path.isfile(r.performance_audio) and os.path.isfile(r.reference_audio)
    assert r.accompaniment_audio is None and r.judge_scores == ()
    assert 0.0 <= r.score <= 100.0
  # Disjoint by melody, and references are never performances.
  split_of = collections.defaultdict(set)
  for r in rows:
    split_of[r.song_id].add(r.split)
  assert all(len(s) == 1 for s in split_of.values())
  assert {r.performance_audio for r in rows}.isdisjoint({r.reference_audio for r in rows})
  # Each test (and validation) melody has >= 3 performances; 2 of each by default.
  for split in ("test", "validation"):
    counts = collections.Counter(r.song_id for r in rows if r.split == split)
    assert len(counts) == 2 and min(counts.values()) >= 3, counts
  # 100144 has a malformed label file and is skipped with a reason.
  assert any(s.startswith("100144:") for s in result["skipped"])
  folder = os.path.dirname(out)
  with open(os.path.join(folder, "ssvd_summary.json"), encoding="utf-8") as f:
    assert json.load(f)["splits"]["train"]["performances"] == summary["splits"]["train"][
        "performances"]
  with open(os.path.join(folder, "ssvd_melodies.csv"), newline="", encoding="utf-8") as f:
    assert len(list(csv.DictReader(f))) == len(result["melodies"])


def test_real_split_deterministic(real):
  _, result, _ = real
  again = ssvd.build_manifest(SSVD_DIR, seed=0)
  assert again["rows"] == result["rows"]
  other = [ssvd.build_manifest(SSVD_DIR, seed=s)["rows"] for s in (1, 2, 3)]
  assert any(o != result["rows"] for o in other)
