"""Tests of the MAST check: loader, pairing, agreement statistics, CLI."""

import io
import json
import os
import tarfile

import numpy as np
import pytest

from asa_jax.baselines import mast
from input_pipeline.corpora import mast_data
from tests.conftest import require_data

MAST_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "..", "shared", "data", "mast")


def test_parse_name():
  assert mast_data.parse_name("f0data/51_mel1_per106160_pass.f0s.txt") == {
      "melody": "51_mel1", "kind": "per", "id": "106160", "grade": "pass"}
  assert mast_data.parse_name("510_mel2_ref148559.f0s.txt") == {
      "melody": "510_mel2", "kind": "ref", "id": "148559", "grade": None}
  assert mast_data.parse_name("README.txt") is None


def test_roc_auc_and_pearson():
  assert mast.roc_auc([3, 4, 1, 2], [True, True, False, False]) == 1.0
  assert mast.roc_auc([1, 2, 3, 4], [True, True, False, False]) == 0.0
  # Pairs (pos, neg): (2,1) win, (2,3) loss, (3,1) win, (3,3) tie -> 2.5 / 4.
  assert mast.roc_auc([2, 3, 1, 3], [True, True, False, False]) == 0.625
  assert np.isnan(mast.roc_auc([1, 2], [True, True]))
  r, _ = mast.pearson([1, 2, 3, 4], [2, 4, 6, 8.5])
  assert r == pytest.approx(np.corrcoef([1, 2, 3, 4], [2, 4, 6, 8.5])[0, 1])
  assert np.isnan(mast.pearson([1, 1, 1], [1, 2, 3])[0])
  assert np.isnan(mast.pearson([1, 2], [1, 2])[0])


def curve(name, f0):
  info = mast_data.parse_name(name + ".f0s.txt")
  passed = None if info["grade"] is None else info["grade"] == "pass"
  times = np.arange(len(f0)) * 0.0029
  return mast_data.MastCurve(name, info["melody"], info["kind"], info["id"],
                             passed, times, np.asarray(f0, float))


def test_pair_references():
  f0 = np.full(10, 220.0)
  curves = [curve("1_mel1_ref30", f0), curve("1_mel1_ref20", f0),
            curve("1_mel1_per20_pass", f0), curve("1_mel1_per99_fail", f0),
            curve("2_mel1_per20_fail", f0)]
  pairs = mast_data.pair_references(curves)
  assert pairs["1_mel1_per20_pass"][0] == "same_id"
  assert [r.name for r in pairs["1_mel1_per20_pass"][1]] == ["1_mel1_ref20"]
  assert pairs["1_mel1_per99_fail"][0] == "melody"
  assert [r.name for r in pairs["1_mel1_per99_fail"][1]] == [
      "1_mel1_ref20", "1_mel1_ref30"]
  assert pairs["2_mel1_per20_fail"] == ("none", [])


def melody_f0(notes, wrong=()):
  """f0 at 2.9 ms frames: 0.3 s per note, 30 ms gaps; `wrong` notes +250 c."""
  out = []
  for i, m in enumerate(notes):
    cents = 100.0 * (m - 69) + (250.0 if i in wrong else 0.0)
    out += [np.full(103, 440 * 2 ** (cents / 1200)), np.zeros(10)]
  return np.concatenate(out)


def write_fake_mast(root):
  """Two melodies; passes sing the melody (an octave lower), fails have
  wrong notes; grades follow pass/fail."""
  files = {}
  grades = []
  for mel, notes in (("1_mel1", [60, 62, 64, 65, 67, 64, 60]),
                     ("1_mel2", [67, 65, 64, 62, 60, 62, 64])):
    files[f"{mel}_ref100"] = melody_f0(notes)
    for k in range(4):
      files[f"{mel}_per{200 + k}_pass"] = melody_f0(notes) / 2
      grades.append((f"{mel}_per{200 + k}", 4.0))
      files[f"{mel}_per{300 + k}_fail"] = melody_f0(notes, wrong=(1, 2 + k)) / 2
      grades.append((f"{mel}_per{300 + k}", 1.0 + k % 2))
  os.makedirs(root, exist_ok=True)
  with tarfile.open(os.path.join(root, mast_data.F0_ARCHIVE), "w:xz") as tar:
    for name, f0 in files.items():
      times = np.arange(len(f0)) * 0.0029
      data = "".join(f"{t}\t{f}\n" for t, f in zip(times, f0)).encode()
      info = tarfile.TarInfo(f"f0data/{name}.f0s.txt")
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  lines = ["index,file," + ",".join(mast_data.RATER_COLUMNS) +
           ",fullAgree,fullAgree_score,majority_score"]
  for i, (stem, g) in enumerate(grades):
    lines.append(f"{i},{stem}.wav,{g},{g},,{g},{g},True,{g},{g}")
  with open(os.path.join(root, mast_data.ANNOTATIONS), "w") as f:
    f.write("\n".join(lines) + "\n")


def test_run_on_a_fake_mast(tmp_path):
  mast_dir = str(tmp_path / "mast")
  write_fake_mast(mast_dir)
  out_dir = str(tmp_path / "out")
  lines = []
  summary = mast.run(mast_dir, out_dir, log=lines.append)
  assert summary["n_performances"] == 16 and summary["n_graded"] == 16
  assert summary["pairing"] == {"same_id": 0, "melody": 16, "none": 0}
  with open(os.path.join(out_dir, "mast.json")) as f:
    written = json.load(f)
  assert set(written["results"]) == set(mast.MEASURES)
  dtw = written["results"]["dtw_pitch"]
  assert dtw["overall"]["auc"] == 1.0
  assert dtw["overall"]["pearson"] > 0.8
  assert set(dtw["per_melody"]) == {"1_mel1", "1_mel2"}
  perf = {p["name"]: p for p in written["performances"]}
  assert perf["1_mel1_per200_pass"]["dtw_pitch"] == pytest.approx(0.0,
                                                                 abs=1e-6)
  assert perf["1_mel1_per200_pass"]["mean_grade"] == 4.0
  md = open(os.path.join(out_dir, "mast.md")).read()
  assert "| dtw_pitch |" in md and "## ROC AUC per melody" in md
  assert any("| dtw_pitch | " in line for line in lines)
  assert not [f for f in os.listdir(out_dir) if f.startswith(".tmp")]


def test_cli_requires_its_flags():
  with pytest.raises(SystemExit) as info:
    mast.main([])
  assert info.value.code == 2  # argparse's usage error.


@pytest.fixture(scope="module")
def real_curves():
  require_data(os.path.join(MAST_DIR, mast_data.F0_ARCHIVE), "MAST data")
  return mast_data.load_curves(MAST_DIR)


def test_real_mast_loader_and_pairing(real_curves):
  perfs = [c for c in real_curves if c.kind == "per"]
  assert len(real_curves) == 3538 and len(perfs) == 996
  assert sum(c.passed for c in perfs) == 266
  assert len({c.melody for c in perfs}) == 39
  pairs = mast_data.pair_references(real_curves)
  kinds = [p[0] for p in pairs.values()]
  assert kinds.count("same_id") == 869 and kinds.count("melody") == 127
  by_name = {c.name: c for c in perfs}
  for name, (kind, refs) in pairs.items():
    per = by_name[name]
    assert all(r.melody == per.melody and r.kind == "ref" for r in refs)
    if kind == "same_id":
      assert [r.rec_id for r in refs] == [per.rec_id]
    else:
      assert 1 <= len(refs) <= mast_data.MAX_FALLBACK_REFS
  grades = mast_data.load_grades(MAST_DIR)
  assert grades["53_mel1_ref256758"] == (4.0, 4.0, 4.0, 4.0)
  assert all(mast_data.grade_key(c) in grades for c in perfs)
  c = perfs[0]
  assert c.times_s.shape == c.f0_hz.shape and np.all(np.diff(c.times_s) > 0)


def test_real_mast_dtw_pitch_agrees_with_the_jury(real_curves):
  melodies = {"52_mel1", "52_mel2", "53_mel1"}
  subset = [c for c in real_curves if c.melody in melodies]
  rows = mast.score_curves(subset, log=lambda _: None)
  assert len(rows) == sum(c.kind == "per" for c in subset)
  res = mast.agreement(rows, "dtw_pitch")
  assert res["auc"] > 0.65, res
