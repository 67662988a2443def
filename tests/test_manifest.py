"""Tests of input_pipeline.manifest.read_manifest (paper 3.3 corpus manifest)."""

import os

import pytest

from input_pipeline import manifest

HEADER = ("song_id,performance_id,performance_audio,reference_audio,"
          "accompaniment_audio,score,judge_scores,split\n")


@pytest.fixture
def folder(tmp_path):
  for name in ("p1.wav", "p2.wav", "ref.wav", "acc.wav"):
    (tmp_path / name).write_bytes(b"x")
  return tmp_path


def _write(folder, lines):
  path = folder / "manifest.csv"
  path.write_text(HEADER + "".join(line + "\n" for line in lines),
                  encoding="utf-8")
  return str(path)


def test_good_rows_are_parsed_and_paths_resolved(folder):
  sub = folder / "sub"
  sub.mkdir()
  (sub / "p3.wav").write_bytes(b"x")
  path = _write(folder, [
      "s1,a,p1.wav,ref.wav,acc.wav,85,80;90,train",
      f"s1,b,{folder / 'p2.wav'},ref.wav,,,,validation",
      "s2,c,sub/p3.wav,ref.wav,,12.5,  ,test",
  ])
  rows, problems = manifest.read_manifest(path)
  assert problems == []
  assert [r.performance_id for r in rows] == ["a", "b", "c"]
  a, b, c = rows
  assert a.performance_audio == str(folder / "p1.wav")
  assert a.reference_audio == str(folder / "ref.wav")
  assert a.accompaniment_audio == str(folder / "acc.wav")
  assert a.score == 85.0 and a.judge_scores == (80.0, 90.0)
  assert a.split == "train" and a.line == 2
  assert b.score is None and b.accompaniment_audio is None
  assert b.judge_scores == () and b.line == 3
  assert c.performance_audio == str(sub / "p3.wav") and c.score == 12.5
  assert os.path.isabs(c.reference_audio)


@pytest.mark.parametrize("row, reason", [
    ("s1,a,p1.wav,ref.wav,,85,,holdout", "split 'holdout'"),
    ("s1,a,p1.wav,ref.wav,,good,,train", "score 'good' is not a number"),
    ("s1,a,p1.wav,ref.wav,,120,,train", "outside [0, 100]"),
    ("s1,a,p1.wav,ref.wav,,85,8;x,train", "judge score 'x'"),
    ("s1,a,missing.wav,ref.wav,,85,,train", "performance_audio file not found"),
    ("s1,a,p1.wav,ref.wav,nope.wav,85,,train",
     "accompaniment_audio file not found"),
    (",a,p1.wav,ref.wav,,85,,train", "empty song_id"),
    ("s1,a,p1.wav", "fewer fields"),
    ("s1,a,p1.wav,ref.wav,,85,,train,extra", "fields"),
])
def test_bad_row_raises_naming_file_and_line(folder, row, reason):
  path = _write(folder, ["s1,ok,p2.wav,ref.wav,,50,,train", row])
  with pytest.raises(manifest.ManifestError) as e:
    manifest.read_manifest(path, on_error="raise")
  message = str(e.value)
  assert f"{path}:3:" in message
  assert reason in message


def test_skip_mode_reports_and_keeps_good_rows(folder):
  path = _write(folder, [
      "s1,a,p1.wav,ref.wav,,85,,train",
      "s1,b,p2.wav,ref.wav,,85,,nosplit",
      "s1,c,gone.wav,ref.wav,,85,,train",
      "s1,d,p2.wav,ref.wav,,abc,,train",
      "",
      "s1,e,p2.wav,ref.wav,,10,,test",
  ])
  rows, problems = manifest.read_manifest(path, on_error="skip")
  assert [r.performance_id for r in rows] == ["a", "e"]
  assert len(problems) == 3
  assert problems[0].startswith(f"{path}:3:") and "nosplit" in problems[0]
  assert problems[1].startswith(f"{path}:4:") and "gone.wav" in problems[1]
  assert problems[2].startswith(f"{path}:5:") and "abc" in problems[2]


def test_phrase_rows_share_a_performance_but_must_agree(folder):
  path = _write(folder, [
      "s1,a,p1.wav,ref.wav,,85,,train",
      "s1,a,p2.wav,ref.wav,,85,,train",
      "s1,a,p2.wav,ref.wav,,60,,train",
  ])
  rows, problems = manifest.read_manifest(path, on_error="skip")
  assert [r.line for r in rows] == [2, 3]
  assert len(problems) == 1 and f"{path}:4:" in problems[0]
  assert "score" in problems[0] and "line 2" in problems[0]


def test_header_problems_always_raise(folder):
  path = folder / "m.csv"
  path.write_text("song_id,performance_id,split\ns,a,train\n", encoding="utf-8")
  with pytest.raises(manifest.ManifestError, match="header lacks column"):
    manifest.read_manifest(str(path), on_error="skip")
  with pytest.raises(manifest.ManifestError, match="not found"):
    manifest.read_manifest(str(folder / "none.csv"))
  bad = folder / "latin1.csv"
  bad.write_bytes(HEADER.encode() + "s\xe9,a,p1.wav,ref.wav,,1,,train\n".encode(
      "latin-1"))
  with pytest.raises(manifest.ManifestError, match="UTF-8"):
    manifest.read_manifest(str(bad))
  with pytest.raises(ValueError, match="on_error"):
    manifest.read_manifest(str(bad), on_error="ignore")
