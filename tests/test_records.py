"""Tests of input_pipeline.build.build_records with fake (cheap) features."""

import collections
import json
import os
import re
import signal
import uuid

import numpy as np
import pytest
import soundfile as sf
from array_record.python import array_record_module

from asa_jax.features import audio as audio_lib
from asa_jax.features import constants
from configs import base
from input_pipeline import build
from input_pipeline import records
from input_pipeline import shard
from tests import signals

SR = 16000
NOTES = [60, 64, 67, 62, 65, 69, 71, 60, 67, 64, 62, 72, 69, 65, 67, 60, 59, 62]


def tone(midi, seconds, amp=0.3):
  return signals.harmonic_tone(midi, seconds, amp, harmonics=5)


def melody(n_notes, shift=0, lead=0.0):
  parts = [np.zeros(int(lead * SR), np.float32)]
  parts += [tone(n + shift, 0.4) for n in NOTES[:n_notes]]
  return np.concatenate(parts)


def fake_features(clips):
  """Deterministic (B, 5, 96, 94) features from frame RMS of each clip."""
  clips = np.asarray(clips, np.float32)
  padded = np.pad(clips, ((0, 0), (0, 94 * 512 - clips.shape[1])))
  rms = np.sqrt((padded.reshape(len(clips), 94, 512) ** 2).mean(-1))
  rows = np.linspace(0.0, 1.0, 96, dtype=np.float32)
  chan = np.arange(1, 6, dtype=np.float32)
  return (chan[None, :, None, None] * rms[:, None, None, :]
          + rows[None, None, :, None]).astype(np.float32)


# Counts of the live Counters, by token. Dask pickles a task's arguments even for
# the in-process worker (build_workers=1), so the extractor the build calls is a
# copy; the copies share their counts through this module-level table.
_COUNTS = collections.defaultdict(lambda: {"calls": 0, "clips": 0})


class Counter:
  """Fake extract_features that counts clips and can fail after N calls (counts
  shared by its pickled copies in this process, see _COUNTS)."""

  def __init__(self, fail_after_calls=None):
    self.token = uuid.uuid4().hex
    self.fail_after_calls = fail_after_calls

  @property
  def calls(self):
    return _COUNTS[self.token]["calls"]

  @property
  def clips(self):
    return _COUNTS[self.token]["clips"]

  def __call__(self, clips, *, crepe_capacity):
    assert crepe_capacity in ("full", "tiny")
    counts = _COUNTS[self.token]
    if self.fail_after_calls is not None and counts["calls"] >= self.fail_after_calls:
      raise RuntimeError("simulated crash")
    counts["calls"] += 1
    counts["clips"] += len(clips)
    return fake_features(clips)


@pytest.fixture
def corpus(tmp_path):
  """Tiny corpus: song s1 (3 train + 1 validation good/poor), bad files."""
  d = tmp_path / "corpus"
  d.mkdir()
  sf.write(d / "ref.wav", melody(18), SR)
  sf.write(d / "good.wav", melody(18), SR)
  sf.write(d / "poor.wav", melody(18, shift=3) * 0.5, SR)
  sf.write(d / "mid.wav", melody(15, lead=0.5), SR)
  sf.write(d / "val.wav", melody(16), SR)
  sf.write(d / "short.wav", melody(2), SR)
  sf.write(d / "silent.wav", np.zeros(5 * SR, np.float32), SR)
  sf.write(d / "empty.wav", np.zeros(0, np.float32), SR)
  (d / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage" * 10)
  lines = [
      "song_id,performance_id,performance_audio,reference_audio,"
      "accompaniment_audio,score,judge_scores,split",
      "s1,good,good.wav,ref.wav,,90,,train",
      "s1,poor,poor.wav,ref.wav,,20,,train",
      "s1,mid,mid.wav,ref.wav,,60,,train",
      "s1,val,val.wav,ref.wav,,85,,validation",
      "s1,short,short.wav,ref.wav,,30,,train",
      "s1,silent,silent.wav,ref.wav,,30,,train",
      "s1,empty,empty.wav,ref.wav,,30,,train",
      "s1,corrupt,corrupt.wav,ref.wav,,30,,train",
      "s1,missing,missing.wav,ref.wav,,30,,train",
  ]
  (d / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
  return d


def _read_file(path):
  reader = array_record_module.ArrayRecordReader(str(path))
  try:
    return [records.deserialize_record(b)
            for b in reader.read(list(range(reader.num_records())))]
  finally:
    reader.close()


def _shards(out, split):
  """name -> index of the complete shards of a split."""
  return {k: records.read_index(str(out), split, k)
          for k in records.complete_keys(str(out), split)}


def _by_performance(out, split):
  """performance_id -> (records, metas) over the split's shards; checks that the
  index's records match the file and that no performance is in two shards."""
  out_map = {}
  for name, index in _shards(out, split).items():
    recs = _read_file(out / split / f"{name}.array_record")
    assert len(recs) == len(index["records"])
    assert [r["performance_id"] for r in recs] == [
        m["performance_id"] for m in index["records"]]
    built = [e["performance_id"] for e in index["performances"]
             if e["status"] == "built"]
    assert set(built) == {m["performance_id"] for m in index["records"]}
    for pid in built:
      assert pid not in out_map, f"{pid} in two shards"
      out_map[pid] = ([r for r in recs if r["performance_id"] == pid],
                      [m for m in index["records"] if m["performance_id"] == pid])
  return out_map


def _songs_manifest(corpus, name="songs.csv"):
  """The corpus manifest with one song per row (so that each can be a shard)."""
  lines = (corpus / "manifest.csv").read_text().splitlines()
  out = [lines[0]] + [f"s{i}," + line.split(",", 1)[1]
                      for i, line in enumerate(lines[1:])]
  (corpus / name).write_text("\n".join(out) + "\n", encoding="utf-8")
  return corpus / name


def test_build_writes_records_stats_report(corpus, tmp_path, monkeypatch):
  fake = Counter()
  monkeypatch.setattr(shard, "extract_features", fake)
  config = base.get_config()
  out = tmp_path / "records"
  report = build.build_records(str(corpus / "manifest.csv"), str(out), config)

  assert sorted(report.built) == ["good", "mid", "poor", "val"]
  skipped = {s["performance_id"]: s["reason"] for s in report.skipped}
  assert set(skipped) == {"short", "silent", "empty", "corrupt"}
  assert "short" in skipped["short"].lower()
  assert "silent" in skipped["silent"].lower()
  assert "corrupt.wav" in skipped["corrupt"]
  assert any("missing.wav" in p for p in report.problems)
  assert not report.worker_failures

  # One song, two splits: one shard per split, named shard-<split>-00000-<hex>.
  train, val = _shards(out, "train"), _shards(out, "validation")
  assert len(train) == len(val) == 1
  (name, index), = train.items()
  assert re.fullmatch(r"shard-train-00000-[0-9a-f]{8}", name)
  assert index["shard"] == name and index["split"] == "train"
  entries = {e["performance_id"]: e for e in index["performances"]}
  assert list(entries) == ["good", "poor", "mid", "short", "silent", "empty",
                           "corrupt"]  # Manifest order.
  assert entries["good"]["status"] == "built"
  assert entries["silent"]["status"] == "skipped"
  assert entries["silent"]["reason"] == skipped["silent"]
  assert records.complete_performances(str(out)) == {
      "good": "train", "poor": "train", "mid": "train", "val": "validation"}

  by_perf = {**_by_performance(out, "train"), **_by_performance(out, "validation")}
  good, meta = by_perf["good"]
  assert len(good) == len(meta) > 0
  audio = audio_lib.load_audio(str(corpus / "good.wav"))
  ref = audio_lib.load_audio(str(corpus / "ref.wav"))
  for rec, m in zip(good, meta):
    assert rec["song_id"] == "s1" and rec["performance_id"] == "good"
    assert rec["split"] == "train" and rec["score"] == 90.0
    assert rec["segment_start"] == m["segment_start"]
    assert rec["reference_start"] == rec["segment_start"]  # alignment 'none'
    assert rec["performance"].dtype == np.float16
    assert rec["performance"].shape == constants.FEATURE_SHAPE
    start = int(round(rec["segment_start"] * SR))
    want = fake_features(audio[None, start:start + 48000])[0]
    np.testing.assert_allclose(rec["performance"], want, atol=2e-3)
    want_ref = fake_features(ref[None, start:start + 48000])[0]
    np.testing.assert_allclose(rec["reference"], want_ref, atol=2e-3)
    assert rec["transposition"] == 0
  poor, _ = by_perf["poor"]
  assert {r["transposition"] for r in poor} == {3}
  assert all(np.isfinite(r["score"]) for r in poor)

  # Reference clips at shared grid positions are extracted once per song (and
  # shard: the validation performance is in the other split's shard).
  n_perf = sum(report.num_records.values())
  all_metas = [m for _, metas in by_perf.values() for m in metas]
  n_ref = (len({m["reference_start"] for m in all_metas if m["split"] == "train"})
           + len({m["reference_start"] for m in by_perf["val"][1]}))
  assert fake.clips == n_perf + n_ref
  assert n_perf == len(all_metas)
  assert report.num_performances == {"train": 3, "validation": 1, "test": 0}

  stats = json.loads((out / "stats.json").read_text())
  assert stats["channels"] == list(constants.CHANNELS)
  clips = []
  for key in ("good", "poor", "mid"):
    for rec in by_perf[key][0]:
      clips += [rec["performance"], rec["reference"]]
  clips = np.stack(clips).astype(np.float64)
  np.testing.assert_allclose(stats["mean"], clips.mean(axis=(0, 2, 3)),
                             rtol=1e-6)
  np.testing.assert_allclose(stats["std"], clips.std(axis=(0, 2, 3)),
                             rtol=1e-5)
  saved = json.loads((out / "build_report.json").read_text())
  assert {s["performance_id"] for s in saved["skipped"]} == set(skipped)
  fingerprint = json.loads((out / "build_config.json").read_text())
  assert fingerprint["crepe_capacity"] == "full"
  assert fingerprint["format_version"] == 2

  # A rerun recomputes nothing (skipped performances stay in their shard).
  fake2 = Counter()
  monkeypatch.setattr(shard, "extract_features", fake2)
  report2 = build.build_records(str(corpus / "manifest.csv"), str(out),
                                  config)
  assert fake2.calls == 0 and sorted(report2.existing) == sorted(report.built)
  assert not report2.built and not report2.removed_stale
  assert {s["performance_id"] for s in report2.skipped} == set(skipped)


def test_interrupted_build_resumes_without_redoing(corpus, tmp_path,
                                                   monkeypatch):
  manifest = _songs_manifest(corpus)
  config = base.get_config()
  config.data.extract_batch_size = 1000  # One extraction call per performance.
  config.data.shard_performances = 1  # One song, one performance per shard.
  out = tmp_path / "records"
  crash = Counter(fail_after_calls=1)
  monkeypatch.setattr(shard, "extract_features", crash)
  report = build.build_records(str(manifest), str(out), config)
  # One shard got its extraction call; the others' tasks raised (after their
  # retries): reported, not fatal; the shards with only skipped performances
  # are complete.
  first, = report.built
  failed = {f["performance_ids"][0]: f for f in report.worker_failures}
  assert set(failed) == {"good", "poor", "mid", "val"} - {first}
  assert all("simulated crash" in f["reason"] for f in failed.values())
  assert {s["performance_id"] for s in report.skipped} >= set(failed)
  assert records.complete_performances(str(out)) == {
      first: "validation" if first == "val" else "train"}
  # A leftover temporary file of a crashed writer is not a record, nor is a
  # record file without its index.
  a, b = sorted(failed)[:2]
  a_split, b_split = failed[a]["split"], failed[b]["split"]
  leftover = out / a_split / f".{failed[a]['shard']}.array_record.tmp-999"
  leftover.write_bytes(b"partial")
  (out / b_split / f"{failed[b]['shard']}.array_record").write_bytes(
      b"no index: incomplete")
  assert failed[b]["shard"] not in records.complete_keys(str(out), b_split)
  assert len(records.complete_performances(str(out))) == 1

  resume = Counter()
  monkeypatch.setattr(shard, "extract_features", resume)
  report2 = build.build_records(str(manifest), str(out), config)
  assert report2.existing == [first]
  assert sorted(report2.built) == sorted(failed)
  assert resume.calls == 3 and not report2.worker_failures
  assert not leftover.exists()
  assert sorted(records.complete_performances(str(out))) == [
      "good", "mid", "poor", "val"]
  assert len(_by_performance(out, b_split)[b][0]) > 0


def test_config_mismatch_and_raise_mode(corpus, tmp_path, monkeypatch):
  monkeypatch.setattr(shard, "extract_features", Counter())
  config = base.get_config()
  out = tmp_path / "records"
  manifest = corpus / "manifest.csv"
  text = manifest.read_text().splitlines()
  good_only = corpus / "good_only.csv"
  good_only.write_text("\n".join(text[:2]) + "\n")
  build.build_records(str(good_only), str(out), config)
  other = base.get_config()
  other.data.segment_hop_seconds = 1.0
  with pytest.raises(records.RecordsConfigError, match="segment_hop_seconds"):
    build.build_records(str(good_only), str(out), other)

  strict = base.get_config()
  strict.data.on_error = "raise"
  bad = corpus / "bad.csv"
  bad.write_text("\n".join([text[0], text[6]]) + "\n")  # silent.wav
  with pytest.raises(audio_lib.AudioError, match="silent"):
    build.build_records(str(bad), str(tmp_path / "r2"), strict)


def test_stats_from_and_stale_removal(corpus, tmp_path, monkeypatch):
  monkeypatch.setattr(shard, "extract_features", Counter())
  config = base.get_config()
  text = (corpus / "manifest.csv").read_text().splitlines()
  two = corpus / "two.csv"
  two.write_text("\n".join(text[:3]) + "\n")
  train_dir = tmp_path / "train_records"
  build.build_records(str(two), str(train_dir), config)
  stats = json.loads((train_dir / "stats.json").read_text())
  old_shard, = records.complete_keys(str(train_dir), "train")

  test_only = corpus / "test_only.csv"
  test_only.write_text(text[0] + "\n" + text[4].replace("validation", "test")
                       + "\n")
  eval_dir = tmp_path / "eval_records"
  report = build.build_records(str(test_only), str(eval_dir), config,
                                 stats_from=str(train_dir))
  assert report.stats_source == str(train_dir)
  assert json.loads((eval_dir / "stats.json").read_text()) == stats

  # The shard held a performance the manifest dropped: deleted, rebuilt.
  one = corpus / "one.csv"
  one.write_text("\n".join(text[:2]) + "\n")
  report = build.build_records(str(one), str(train_dir), config)
  assert report.removed_stale == [f"train/{old_shard}"]
  assert report.built == ["good"]
  assert records.complete_performances(str(train_dir)) == {"good": "train"}
  new_shard, = records.complete_keys(str(train_dir), "train")
  assert new_shard != old_shard

  # A changed score changes the shard's name: the old one is stale.
  changed = corpus / "changed.csv"
  changed.write_text(text[0] + "\n" + text[1].replace(",90,", ",80,") + "\n")
  report = build.build_records(str(changed), str(train_dir), config)
  assert report.removed_stale == [f"train/{new_shard}"]
  assert report.built == ["good"]
  meta = records.read_index(str(train_dir), "train",
                            records.complete_keys(str(train_dir), "train")[0])["records"]
  assert {m["score"] for m in meta} == {80.0}


def test_shard_plan_and_matching_shards_kept(corpus, tmp_path, monkeypatch):
  manifest = _songs_manifest(corpus)
  monkeypatch.setattr(shard, "extract_features", Counter())
  config = base.get_config()
  config.data.shard_performances = 3
  out = tmp_path / "records"
  rows, _ = records.manifest_lib.read_manifest(str(manifest), on_error="skip")
  plan = build.plan_shards(build.group_performances(rows), str(out), config)
  # Songs of one performance each, greedily 3 per shard, per split.
  assert [(s.split, [p.performance_id for p in s.performances]) for s in plan] == [
      ("train", ["good", "poor", "mid"]), ("train", ["short", "silent", "empty"]),
      ("train", ["corrupt"]), ("validation", ["val"])]
  assert [s.name.rsplit("-", 1)[0] for s in plan] == [
      "shard-train-00000", "shard-train-00001", "shard-train-00002",
      "shard-validation-00000"]
  again = build.plan_shards(build.group_performances(rows), str(out), config)
  assert [s.name for s in again] == [s.name for s in plan]  # Deterministic.
  other = base.get_config()
  other.data.reference = "accompaniment"
  other.data.shard_performances = 3
  assert build.plan_shards(build.group_performances(rows), str(out),
                           other)[0].name != plan[0].name

  first = build.build_records(str(manifest), str(out), config)
  assert sorted(records.complete_keys(str(out), "train")) == sorted(
      s.name for s in plan if s.split == "train")
  # Another shard size plans other names, but the complete shards still match
  # the manifest performance by performance: kept, nothing rebuilt or removed.
  config.data.shard_performances = 2
  fake = Counter()
  monkeypatch.setattr(shard, "extract_features", fake)
  report = build.build_records(str(manifest), str(out), config)
  assert fake.calls == 0 and not report.built and not report.removed_stale
  assert sorted(report.existing) == sorted(first.built)


def test_accompaniment_as_reference(corpus, tmp_path, monkeypatch):
  """data.reference='accompaniment' (Racc, paper 3.3): each record's reference clip
  is the accompaniment at the reference position, not the original vocal; a row
  without accompaniment is skipped with the reason."""
  d = corpus
  sf.write(d / "acc.wav", 0.5 * melody(18, shift=-12), SR)  # Not ref.wav.
  (d / "acc.csv").write_text(
      "song_id,performance_id,performance_audio,reference_audio,"
      "accompaniment_audio,score,judge_scores,split\n"
      "s1,good,good.wav,ref.wav,acc.wav,90,,train\n"
      "s1,poor,poor.wav,ref.wav,acc.wav,20,,train\n"
      "s1,noacc,mid.wav,ref.wav,,60,,train\n", encoding="utf-8")
  monkeypatch.setattr(shard, "extract_features", Counter())
  config = base.get_config()
  config.data.reference = "accompaniment"
  out = tmp_path / "records_acc"
  report = build.build_records(str(d / "acc.csv"), str(out), config)
  assert sorted(report.built) == ["good", "poor"]
  skipped = {s["performance_id"]: s["reason"] for s in report.skipped}
  assert list(skipped) == ["noacc"]
  assert "no accompaniment_audio, needed for data.reference 'accompaniment'" in (
      skipped["noacc"])
  acc = audio_lib.load_audio(str(d / "acc.wav"))
  ref = audio_lib.load_audio(str(d / "ref.wav"))
  by_perf = _by_performance(out, "train")
  checked = 0
  for pid in ("good", "poor"):
    recs, metas = by_perf[pid]
    assert recs
    for rec, m in zip(recs, metas):
      assert os.path.basename(m["reference_file"]) == "acc.wav"
      start = int(round(rec["reference_start"] * SR))
      want = fake_features(acc[None, start:start + 48000])[0]
      np.testing.assert_allclose(rec["reference"], want, atol=2e-3)
      vocal = fake_features(ref[None, start:start + 48000])[0]
      assert np.abs(rec["reference"].astype(np.float32) - vocal).max() > 0.05
      checked += 1
  assert checked >= 4


# --- Worker processes that die (the build must neither hang nor lose shards). ---

BOMB_PEAK = 0.12  # The performance whose clips kill their worker.
PEAKS = {"a1": 0.25, "a2": 0.35, "bomb": BOMB_PEAK, "b2": 0.45, "c1": 0.55,
         "c2": 0.65, "d1": 0.75, "e1": 0.85}
REF_PEAK = 0.95
SONGS = {"a1": "s1", "a2": "s1", "bomb": "s2", "b2": "s2", "c1": "s3",
         "c2": "s3", "d1": "s4", "e1": "s5"}


def _owner(peak):
  """The performance (or 'ref') whose file was scaled to the band holding `peak`."""
  for name, p in list(PEAKS.items()) + [("ref", REF_PEAK)]:
    if 0.9 * p < peak <= p * 1.001:
      return name
  return None


def _extract_logged(clips):
  owners = {_owner(float(p)) for p in np.abs(np.asarray(clips)).max(axis=1)}
  with open(os.environ["ASA_TEST_EXTRACT_LOG"], "a", encoding="utf-8") as f:
    f.write(json.dumps({"pid": os.getpid(), "owners": sorted(map(str, owners))})
            + "\n")
  return owners


def killing_features(clips, *, crepe_capacity):
  """Fake extractor run in the build's worker processes: logs whose clips it got
  (pid + owners) and SIGKILLs its own process on the bomb's clips, the first time
  only (the marker file $ASA_TEST_KILL_MARKER)."""
  del crepe_capacity
  owners = _extract_logged(clips)
  marker = os.environ["ASA_TEST_KILL_MARKER"]
  if "bomb" in owners and not os.path.exists(marker):
    with open(marker, "w", encoding="utf-8") as f:
      f.write(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
  return fake_features(clips)


def always_killing_features(clips, *, crepe_capacity):
  """As `killing_features`, but kills its worker on the bomb's clips every time."""
  del crepe_capacity
  if "bomb" in _extract_logged(clips):
    os.kill(os.getpid(), signal.SIGKILL)
  return fake_features(clips)


def _kill_corpus(tmp_path, monkeypatch):
  d = tmp_path / "corpus"
  d.mkdir()
  base_melody = melody(12)
  scaled = lambda peak: base_melody / np.abs(base_melody).max() * peak
  sf.write(d / "ref.wav", scaled(REF_PEAK), SR)
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  for perf, peak in PEAKS.items():
    sf.write(d / f"{perf}.wav", scaled(peak), SR)
    lines.append(f"{SONGS[perf]},{perf},{perf}.wav,ref.wav,,50,,train")
  (d / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
  monkeypatch.setenv("ASA_TEST_EXTRACT_LOG", str(tmp_path / "extract_log.jsonl"))
  monkeypatch.setenv("ASA_TEST_KILL_MARKER", str(tmp_path / "killed_once"))
  config = base.get_config()
  config.data.build_workers = 2
  config.data.shard_performances = 2  # Shards: s1, s2, s3, s4+s5.
  config.data.extract_batch_size = 4  # Several calls per performance.
  return d / "manifest.csv", config


def _check_every_shard_once(out):
  """Each performance in exactly one complete shard, its records exactly once."""
  by_perf = _by_performance(out, "train")
  assert sorted(by_perf) == sorted(PEAKS)
  for pid, (recs, metas) in by_perf.items():
    assert len(recs) == len(metas) > 0
    assert [m["index"] for m in metas] == list(range(len(metas)))
  assert len(records.complete_keys(str(out), "train")) == 4
  assert not [p for p in os.listdir(out / "train") if p.startswith(".")]


@pytest.mark.timeout(600)  # A hang on a dead worker fails the test.
def test_killed_worker_shard_is_retried_on_dask(tmp_path, monkeypatch):
  manifest, config = _kill_corpus(tmp_path, monkeypatch)
  monkeypatch.setattr(shard, "extract_features", killing_features)
  out = tmp_path / "records"

  report = build.build_records(str(manifest), str(out), config)

  assert (tmp_path / "killed_once").exists()  # The bomb's worker did die once.
  assert sorted(report.built) == sorted(PEAKS)  # Every performance once.
  assert not report.skipped and not report.worker_failures
  _check_every_shard_once(out)
  calls = [json.loads(l) for l in (tmp_path / "extract_log.jsonl").read_text(
      ).splitlines()]
  bomb_pids = {c["pid"] for c in calls if "bomb" in c["owners"]}
  assert len(bomb_pids) == 2  # Killed in one worker process, built in another.

  # Nothing is lost or redone: a rerun builds nothing.
  rerun = Counter()
  monkeypatch.setattr(shard, "extract_features", rerun)
  again = build.build_records(str(manifest), str(out), config)
  assert rerun.calls == 0 and not again.built
  assert sorted(again.existing) == sorted(PEAKS)


@pytest.mark.timeout(600)
def test_shard_killing_every_worker_is_reported(tmp_path, monkeypatch):
  manifest, config = _kill_corpus(tmp_path, monkeypatch)
  monkeypatch.setattr(shard, "extract_features", always_killing_features)
  out = tmp_path / "records"

  report = build.build_records(str(manifest), str(out), config)

  bomb_song = {"bomb", "b2"}  # Song s2: one shard.
  assert sorted(report.built) == sorted(set(PEAKS) - bomb_song)
  assert sorted(s["performance_id"] for s in report.skipped) == sorted(bomb_song)
  failure, = report.worker_failures
  assert sorted(failure["performance_ids"]) == sorted(bomb_song)
  assert failure["shard"].startswith("shard-train-00001-")
  assert "KilledWorker" in failure["reason"]
  assert failure["shard"] in report.skipped[0]["reason"]
  saved = json.loads((out / "build_report.json").read_text())
  assert saved["worker_failures"] == report.worker_failures
  assert sorted(records.complete_performances(str(out))) == sorted(
      set(PEAKS) - bomb_song)
  calls = [json.loads(l) for l in (tmp_path / "extract_log.jsonl").read_text(
      ).splitlines()]
  # Given up after allowed-failures + 1 = 3 dead workers (not retried forever).
  assert len({c["pid"] for c in calls if "bomb" in c["owners"]}) == 3

  # The failed shard is retried by the next build (a harmless extractor).
  rerun = Counter()
  monkeypatch.setattr(shard, "extract_features", rerun)
  config.data.build_workers = 1
  again = build.build_records(str(manifest), str(out), config)
  assert sorted(again.built) == sorted(bomb_song)
  assert sorted(again.existing) == sorted(set(PEAKS) - bomb_song)
  _check_every_shard_once(out)
