"""Tests of input_pipeline.records.build_records with fake (cheap) features."""

import json
import os
import signal

import numpy as np
import pytest
import soundfile as sf
from array_record.python import array_record_module

from asa_jax.features import audio as audio_lib
from asa_jax.features import constants
from configs import base
from input_pipeline import records
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


class Counter:
  """Fake extract_features that counts clips and can fail after N calls."""

  def __init__(self, fail_after_calls=None):
    self.calls = 0
    self.clips = 0
    self.fail_after_calls = fail_after_calls

  def __call__(self, clips, *, crepe_capacity):
    assert crepe_capacity in ("full", "tiny")
    if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
      raise RuntimeError("simulated crash")
    self.calls += 1
    self.clips += len(clips)
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


def test_build_writes_records_stats_report(corpus, tmp_path, monkeypatch):
  fake = Counter()
  monkeypatch.setattr(records, "extract_features", fake)
  config = base.get_config()
  out = tmp_path / "records"
  report = records.build_records(str(corpus / "manifest.csv"), str(out), config)

  assert sorted(report.built) == ["good", "mid", "poor", "val"]
  skipped = {s["performance_id"]: s["reason"] for s in report.skipped}
  assert set(skipped) == {"short", "silent", "empty", "corrupt"}
  assert "short" in skipped["short"].lower()
  assert "silent" in skipped["silent"].lower()
  assert "corrupt.wav" in skipped["corrupt"]
  assert any("missing.wav" in p for p in report.problems)

  good = _read_file(out / "train" / "good.array_record")
  meta = json.loads((out / "train" / "good.json").read_text())
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
  poor = _read_file(out / "train" / "poor.array_record")
  assert {r["transposition"] for r in poor} == {3}
  assert all(np.isfinite(r["score"]) for r in poor)

  # Reference clips at shared grid positions are extracted once per song.
  n_perf = sum(report.num_records.values())
  all_metas = []
  for split, key in [("train", "good"), ("train", "poor"), ("train", "mid"),
                     ("validation", "val")]:
    all_metas += json.loads((out / split / f"{key}.json").read_text())
  n_ref = len({m["reference_start"] for m in all_metas})
  assert fake.clips == n_perf + n_ref
  assert n_perf == len(all_metas)

  stats = json.loads((out / "stats.json").read_text())
  assert stats["channels"] == list(constants.CHANNELS)
  clips = []
  for key in ("good", "poor", "mid"):
    for rec in _read_file(out / "train" / f"{key}.array_record"):
      clips += [rec["performance"], rec["reference"]]
  clips = np.stack(clips).astype(np.float64)
  np.testing.assert_allclose(stats["mean"], clips.mean(axis=(0, 2, 3)),
                             rtol=1e-6)
  np.testing.assert_allclose(stats["std"], clips.std(axis=(0, 2, 3)),
                             rtol=1e-5)
  saved = json.loads((out / "build_report.json").read_text())
  assert {s["performance_id"] for s in saved["skipped"]} == set(skipped)
  assert json.loads((out / "build_config.json").read_text())[
      "crepe_capacity"] == "full"

  # A rerun recomputes nothing.
  fake2 = Counter()
  monkeypatch.setattr(records, "extract_features", fake2)
  report2 = records.build_records(str(corpus / "manifest.csv"), str(out),
                                  config)
  assert fake2.calls == 0 and sorted(report2.existing) == sorted(report.built)


def test_interrupted_build_resumes_without_redoing(corpus, tmp_path,
                                                   monkeypatch):
  config = base.get_config()
  config.data.extract_batch_size = 1000  # One extraction call per performance.
  out = tmp_path / "records"
  crash = Counter(fail_after_calls=1)
  monkeypatch.setattr(records, "extract_features", crash)
  with pytest.raises(RuntimeError, match="simulated crash"):
    records.build_records(str(corpus / "manifest.csv"), str(out), config)
  assert records.complete_keys(str(out), "train") == ["good"]
  # A leftover temporary file of a crashed writer is not a record.
  leftover = out / "train" / ".poor.array_record.tmp-999"
  leftover.write_bytes(b"partial")
  (out / "train" / "mid.array_record").write_bytes(b"no sidecar: incomplete")
  assert records.complete_keys(str(out), "train") == ["good"]

  resume = Counter()
  monkeypatch.setattr(records, "extract_features", resume)
  report = records.build_records(str(corpus / "manifest.csv"), str(out), config)
  assert report.existing == ["good"]
  assert sorted(report.built) == ["mid", "poor", "val"]
  assert resume.calls == 3
  assert not leftover.exists()
  assert records.complete_keys(str(out), "train") == ["good", "mid", "poor"]
  assert len(_read_file(out / "train" / "mid.array_record")) > 0


def test_config_mismatch_and_raise_mode(corpus, tmp_path, monkeypatch):
  monkeypatch.setattr(records, "extract_features", Counter())
  config = base.get_config()
  out = tmp_path / "records"
  manifest = corpus / "manifest.csv"
  text = manifest.read_text().splitlines()
  good_only = corpus / "good_only.csv"
  good_only.write_text("\n".join(text[:2]) + "\n")
  records.build_records(str(good_only), str(out), config)
  other = base.get_config()
  other.data.segment_hop_seconds = 1.0
  with pytest.raises(records.RecordsConfigError, match="segment_hop_seconds"):
    records.build_records(str(good_only), str(out), other)

  strict = base.get_config()
  strict.data.on_error = "raise"
  bad = corpus / "bad.csv"
  bad.write_text("\n".join([text[0], text[6]]) + "\n")  # silent.wav
  with pytest.raises(audio_lib.AudioError, match="silent"):
    records.build_records(str(bad), str(tmp_path / "r2"), strict)


def test_stats_from_and_stale_removal(corpus, tmp_path, monkeypatch):
  monkeypatch.setattr(records, "extract_features", Counter())
  config = base.get_config()
  text = (corpus / "manifest.csv").read_text().splitlines()
  two = corpus / "two.csv"
  two.write_text("\n".join(text[:3]) + "\n")
  train_dir = tmp_path / "train_records"
  records.build_records(str(two), str(train_dir), config)
  stats = json.loads((train_dir / "stats.json").read_text())

  test_only = corpus / "test_only.csv"
  test_only.write_text(text[0] + "\n" + text[4].replace("validation", "test")
                       + "\n")
  eval_dir = tmp_path / "eval_records"
  report = records.build_records(str(test_only), str(eval_dir), config,
                                 stats_from=str(train_dir))
  assert report.stats_source == str(train_dir)
  assert json.loads((eval_dir / "stats.json").read_text()) == stats

  one = corpus / "one.csv"
  one.write_text("\n".join(text[:2]) + "\n")
  report = records.build_records(str(one), str(train_dir), config)
  assert report.removed_stale == ["train/poor"]
  assert records.complete_keys(str(train_dir), "train") == ["good"]


def test_performance_key_is_file_safe():
  assert records.performance_key("abc_1.x") == "abc_1.x"
  k1, k2 = records.performance_key("a/b"), records.performance_key("a_b")
  assert "/" not in k1 and k1 != k2


# --- A worker process that dies (issue: the main job hung on a dead worker). ----

BOMB_PEAK = 0.12  # The performance whose clips kill their worker.
PEAKS = {"a1": 0.25, "a2": 0.35, "bomb": BOMB_PEAK, "b2": 0.45, "c1": 0.55,
         "c2": 0.65, "d1": 0.75}
REF_PEAK = 0.9


def _owner(peak):
  """The performance (or 'ref') whose file was scaled to the band holding `peak`."""
  for name, p in list(PEAKS.items()) + [("ref", REF_PEAK)]:
    if 0.8 * p < peak <= p * 1.001:
      return name
  return None


def killing_features(clips, *, crepe_capacity):
  """Fake extractor run in the build's worker processes: logs whose clips it got
  (pid + owners) and SIGKILLs its own process on the bomb's clips."""
  del crepe_capacity
  owners = {_owner(float(p)) for p in np.abs(np.asarray(clips)).max(axis=1)}
  with open(os.environ["ASA_TEST_EXTRACT_LOG"], "a", encoding="utf-8") as f:
    f.write(json.dumps({"pid": os.getpid(), "owners": sorted(map(str, owners))})
            + "\n")
  if "bomb" in owners:
    os.kill(os.getpid(), signal.SIGKILL)
  return fake_features(clips)


@pytest.mark.timeout(600)  # A hang (the old multiprocessing.Pool) fails the test.
def test_dead_worker_is_retried_alone_then_skipped(tmp_path, monkeypatch):
  d = tmp_path / "corpus"
  d.mkdir()
  base_melody = melody(12)
  scaled = lambda peak: base_melody / np.abs(base_melody).max() * peak
  sf.write(d / "ref.wav", scaled(REF_PEAK), SR)
  songs = {"a1": "s1", "a2": "s1", "bomb": "s2", "b2": "s2", "c1": "s3",
           "c2": "s3", "d1": "s4"}
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  for perf, peak in PEAKS.items():
    sf.write(d / f"{perf}.wav", scaled(peak), SR)
    lines.append(f"{songs[perf]},{perf},{perf}.wav,ref.wav,,50,,train")
  (d / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
  log = tmp_path / "extract_log.jsonl"
  monkeypatch.setenv("ASA_TEST_EXTRACT_LOG", str(log))
  monkeypatch.setattr(records, "extract_features", killing_features)
  config = base.get_config()
  config.data.build_workers = 2
  config.data.extract_batch_size = 4  # Several calls per performance.
  out = tmp_path / "records"

  report = records.build_records(str(d / "manifest.csv"), str(out), config)

  good = sorted(set(PEAKS) - {"bomb"})
  assert sorted(report.built) == good
  assert records.complete_keys(str(out), "train") == good
  assert [s["performance_id"] for s in report.skipped] == ["bomb"]
  assert "SIGKILL" in report.skipped[0]["reason"]
  assert len(report.worker_failures) == 1
  failure = report.worker_failures[0]
  assert (failure["performance_id"], failure["signal"], failure["exit_code"],
          failure["attempts"]) == ("bomb", "SIGKILL", -signal.SIGKILL, 2)
  saved = json.loads((out / "build_report.json").read_text())
  assert saved["worker_failures"] == report.worker_failures
  assert saved["skipped"][0]["performance_id"] == "bomb"

  # Who extracted what: the bomb in exactly two processes (the pool worker, then
  # alone); a performance finished before the crash is never extracted again, and
  # one cut short by the crash (in the other worker) at most once more, alone.
  calls = [json.loads(l) for l in log.read_text().splitlines()]
  pids = {name: {c["pid"] for c in calls if name in c["owners"]} for name in PEAKS}
  assert len(pids["bomb"]) == 2
  assert all(1 <= len(pids[name]) <= 2 for name in good)
  assert sum(len(pids[name]) == 2 for name in good) <= 1  # <= workers - 1.

  # Nothing finished is lost: a rerun (harmless extractor) builds only the bomb.
  rerun = Counter()
  monkeypatch.setattr(records, "extract_features", rerun)
  config.data.build_workers = 1
  again = records.build_records(str(d / "manifest.csv"), str(out), config)
  assert sorted(again.existing) == good and again.built == ["bomb"]
