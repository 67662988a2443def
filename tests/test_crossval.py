"""Leave-songs-out folds (input_pipeline.corpora.folds) and their pooled r
(asa_jax.evaluation.crossval)."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from asa_jax.evaluation import crossval as cv_eval
from configs import base
from input_pipeline import build
from input_pipeline.corpora import folds as crossval
from input_pipeline import manifest as manifest_lib
from input_pipeline import records as records_lib
from input_pipeline import shard as shard_lib

FIELDS = ("song_id,performance_id,performance_audio,reference_audio,"
          "accompaniment_audio,score,judge_scores,split,corpus").split(",")


def _manifest(tmp_path, songs):
  """Writes a manifest: 3 mir1k rows plus ssvd songs {song: n performances}."""
  wav = tmp_path / "a.wav"
  sf.write(wav, np.zeros(1600, np.float32), 16000)
  rows = [dict(song_id="m", performance_id=f"m{i}", performance_audio="a.wav",
               reference_audio="a.wav", accompaniment_audio="", score="50",
               judge_scores="", split=s, corpus="mir1k")
          for i, s in enumerate(("train", "validation", "test"))]
  for song, n in songs.items():
    rows += [dict(song_id=song, performance_id=f"{song}-{i}", performance_audio="a.wav",
                  reference_audio="a.wav", accompaniment_audio="", score=str(10 * i),
                  judge_scores="", split="train", corpus="ssvd") for i in range(n)]
  path = tmp_path / "manifest.csv"
  with open(path, "w", newline="", encoding="utf-8") as f:
    w = csv.DictWriter(f, fieldnames=FIELDS)
    w.writeheader()
    w.writerows(rows)
  return path


def _read(path):
  with open(path, newline="", encoding="utf-8") as f:
    return list(csv.DictReader(f))


def test_assign_folds_balanced_and_deterministic():
  counts = {f"s{i}": c for i, c in enumerate([9, 7, 5, 5, 4, 4, 3, 2, 1])}
  a = crossval.assign_folds(counts, 3, seed=1)
  assert a == crossval.assign_folds(counts, 3, seed=1)
  load = [sum(c for s, c in counts.items() if a[s] == k) for k in range(3)]
  assert sorted(load) == [13, 13, 14] and set(a) == set(counts)
  with pytest.raises(ValueError, match="cannot fill"):
    crossval.assign_folds({"a": 1}, 2)
  with pytest.raises(ValueError, match=">= 2"):
    crossval.assign_folds(counts, 1)


def test_fold_manifests_test_every_song_once(tmp_path):
  songs = {"A": 4, "B": 3, "C": 3, "D": 2, "E": 2}
  paths = crossval.write_fold_manifests(str(_manifest(tmp_path, songs)),
                                        str(tmp_path / "cv"), corpus="ssvd", folds=3)
  tested = []
  for k, path in enumerate(paths):
    rows = _read(path)
    split_of = {}
    for row in rows:
      if row["corpus"] == "ssvd":
        split_of.setdefault(row["song_id"], set()).add(row["split"])
      else:  # Other corpora keep their split; audio paths become absolute.
        assert row["split"] == {"m0": "train", "m1": "validation", "m2": "test"}[
            row["performance_id"]]
        assert row["performance_audio"] == str(tmp_path / "a.wav")
    assert all(len(s) == 1 for s in split_of.values())  # A song is in one split.
    by_split = {s: {g for g, v in split_of.items() if s in v}
                for s in ("train", "validation", "test")}
    assert by_split["test"] and by_split["validation"] and by_split["train"]
    tested += sorted(by_split["test"])
  assert sorted(tested) == sorted(songs)  # Every song tested exactly once.
  info = json.loads((tmp_path / "cv" / "folds.json").read_text())
  assert sum(info["performances_per_fold"]) == 14


def _refiled(records_dir, split, pid):
  """(metas, records) of performance `pid` in the complete shards of a split."""
  from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
  for name in records_lib.complete_keys(str(records_dir), split):
    metas = records_lib.read_index(str(records_dir), split, name)["records"]
    pos = [i for i, m in enumerate(metas) if m["performance_id"] == pid]
    if pos:
      reader = array_record_module.ArrayRecordReader(
          str(records_dir / split / f"{name}.array_record"))
      recs = [records_lib.deserialize_record(b) for b in reader.read(pos)]
      reader.close()
      return [metas[i] for i in pos], recs
  return [], []


def test_refile_records_changes_only_the_split(tmp_path, monkeypatch):
  manifest = _manifest(tmp_path, {"A": 2, "B": 2})
  config = base.get_config()
  src = tmp_path / "src"
  rng = np.random.default_rng(0)
  arrays = {}
  rows, _ = manifest_lib.read_manifest(str(manifest))
  for song, perfs in build.group_performances(rows).items():
    for split in ("train", "validation", "test"):  # One source shard per song+split.
      perfs_here = [p for p in perfs if p.split == split]
      if not perfs_here:
        continue
      metas, perf, ref, entries = [], [], [], []
      for p in perfs_here:
        arrays[p.performance_id] = (
            rng.normal(size=(2, 5, 96, 94)).astype(np.float16),
            rng.normal(size=(2, 5, 96, 94)).astype(np.float16))
        perf.append(arrays[p.performance_id][0])
        ref.append(arrays[p.performance_id][1])
        metas += [dict(song_id=song, performance_id=p.performance_id, split=split,
                       segment_start=3.0 * i, reference_start=3.0 * i,
                       score=p.score, transposition=0) for i in range(2)]
        entries.append(dict(performance_id=p.performance_id, song_id=song,
                             split=split, status="built", problems=[],
                             spec=shard_lib.performance_spec(p, "original")))
      records_lib.write_shard(str(src), split, f"shard-{split}-{song}", metas,
                              np.concatenate(perf), np.concatenate(ref),
                              performances=entries)
  (src / "build_config.json").write_text(
      json.dumps(records_lib.build_fingerprint(config)))
  path = crossval.write_fold_manifests(str(manifest), str(tmp_path / "cv"),
                                       corpus="ssvd", folds=2)[0]
  dst = tmp_path / "cv" / "fold_0" / "records"
  res = crossval.refile_records(str(src), path, str(dst))
  assert res == {"refiled": 7, "present": 0, "missing": []}
  for row in _read(path):
    metas, recs = _refiled(dst, row["split"], row["performance_id"])
    assert [m["split"] for m in metas] == [row["split"]] * 2
    assert [m["segment_start"] for m in metas] == [0.0, 3.0]
    assert {r["split"] for r in recs} == {row["split"]}
    np.testing.assert_array_equal(np.stack([r["performance"] for r in recs]),
                                  arrays[row["performance_id"]][0])
    np.testing.assert_array_equal(np.stack([r["reference"] for r in recs]),
                                  arrays[row["performance_id"]][1])
  assert records_lib.complete_performances(str(dst)) == {
      row["performance_id"]: row["split"] for row in _read(path)}
  # Resumable.
  assert crossval.refile_records(str(src), path, str(dst))["present"] == 7

  # build_records on the fold manifest keeps the refiled shards: nothing to extract.
  def no_extraction(clips, *, crepe_capacity):
    raise AssertionError("features extracted again")
  monkeypatch.setattr(shard_lib, "extract_features", no_extraction)
  report = build.build_records(path, str(dst), config)
  assert sorted(report.existing) == sorted(arrays)
  assert not report.built and not report.removed_stale and not report.skipped

  # A folder with other feature settings is refused.
  (src / "build_config.json").write_text(json.dumps({"crepe": "full"}))
  with pytest.raises(records_lib.RecordsConfigError, match="other feature settings"):
    crossval.refile_records(str(src), path, str(dst))


def test_pooled_pearson_over_folds(tmp_path):
  wanted = {f"p{i}": f"s{i // 2}" for i in range(8)}
  human = np.arange(8, dtype=float) * 10
  files = []
  for k in range(2):  # Fold k scores performances 4k..4k+3; fold 1 on another scale.
    lines = ["system,song_id,performance_id,predicted,human"]
    for i in range(4 * k, 4 * k + 4):
      lines.append(f"sys,{wanted[f'p{i}']},p{i},{human[i] * (1 if k == 0 else 0.01)},"
                   f"{human[i]}")
      lines.append(f"rev,{wanted[f'p{i}']},p{i},{-human[i]},{human[i]}")
    lines.append("sys,x,other,5,5")  # Not wanted: ignored.
    path = tmp_path / f"f{k}.csv"
    path.write_text("\n".join(lines) + "\n")
    files.append(str(path))
  out = cv_eval.pooled(files, wanted, n_resamples=100)
  assert out["rev"]["r"] == pytest.approx(-1.0) and out["rev"]["n"] == 8
  assert out["sys"]["songs"] == 4 and out["sys"]["coverage"] == 1.0
  # Within each fold r = 1, but pooling two scales lowers the pooled r.
  assert out["sys"]["mean_per_file_r"] == pytest.approx(1.0)
  # Exactly: predicted = human for p0..p3 and human / 100 for p4..p7.
  predicted = np.concatenate([human[:4], human[4:] * 0.01])
  import scipy.stats  # pylint: disable=g-import-not-at-top
  exact = scipy.stats.pearsonr(predicted, human).statistic
  assert exact < 0.9  # Pooling two scales does lower it.
  assert out["sys"]["r"] == pytest.approx(exact, abs=1e-12)
  assert out["sys"]["n"] == 8 and len(out["sys"]["ci95"]) == 2
  with pytest.raises(ValueError, match="folds overlap"):
    cv_eval.pooled(files + files[:1], wanted)
  with pytest.raises(FileNotFoundError, match="nothing.csv"):
    cv_eval.expand(str(tmp_path / "nothing.csv"))
