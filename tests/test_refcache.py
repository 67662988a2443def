"""The reference cache (issue 20, part 2): a reference's contours are computed once,
kept on disk by content hash and feature settings, and read back by a later
Assessor (a later process) and by `asa-score --manifest`; other settings miss; a
corrupt entry is recomputed and rewritten, with a warning, never a crash."""

import csv
import io
import logging
import os

import numpy as np
import pytest
import soundfile as sf

from asa_jax.assess import Assessor, cli, fused, refcache
from asa_jax.assess import assessor as assessor_lib
from asa_jax.baselines import contours as contours_lib
from tests import assess_audio

SR = assess_audio.SAMPLE_RATE


@pytest.fixture(scope="module")
def reference():
  return assess_audio.note_melody(seed=1)


@pytest.fixture(scope="module")
def performance():
  return assess_audio.note_melody(detune={4: 60.0}, seed=2)


def _count_reference_contours(monkeypatch, reference):
  """Wraps FusedScorer.contours (every default Assessor's contour computation);
  returns the list of calls on `reference`'s samples (one True per call)."""
  calls = []
  real = fused.FusedScorer.contours

  def counting(self, audio):
    if len(audio) == len(reference) and np.array_equal(audio, reference):
      calls.append(True)
    return real(self, audio)
  monkeypatch.setattr(fused.FusedScorer, "contours", counting)
  return calls


@pytest.mark.timeout(900)
def test_second_scoring_reads_the_cache_and_gives_the_same_score(
    tmp_path, monkeypatch, reference, performance):
  calls = _count_reference_contours(monkeypatch, reference)
  first = Assessor.default(reference_cache=tmp_path)
  a = first.assess((performance, SR), (reference, SR))
  assert len(calls) == 1
  files = os.listdir(tmp_path)
  assert len(files) == 1 and files[0].endswith(".npz")
  # A new Assessor (as a new process: nothing in memory) reads the entry.
  second = Assessor.default(reference_cache=str(tmp_path))
  b = second.assess((performance, SR), (reference, SR))
  assert len(calls) == 1
  assert b.to_dict() == a.to_dict() and b.score == a.score
  np.testing.assert_array_equal(b.pitch.reference_midi, a.pitch.reference_midi)
  # Without a cache folder, the same Assessor keeps the last reference in memory.
  plain = Assessor.default()
  plain.assess((performance, SR), (reference, SR))
  plain.assess((performance, SR), (reference, SR))
  assert len(calls) == 2


@pytest.mark.timeout(900)
def test_other_feature_settings_miss(tmp_path, monkeypatch, reference, performance):
  calls = _count_reference_contours(monkeypatch, reference)
  Assessor.default(reference_cache=tmp_path).assess((performance, SR),
                                                     (reference, SR))
  assert len(calls) == 1
  other = Assessor.default(reference_cache=tmp_path)
  fingerprint = other.reference_fingerprint
  # Another CREPE capacity is another key; its contours are not read back.
  other._scorer.capacity = "full"  # pylint: disable=protected-access
  assert other.reference_fingerprint != fingerprint
  digest = refcache.samples_sha256(reference)
  cache = refcache.ReferenceCache(tmp_path)
  assert cache.load_contours(digest, fingerprint) is not None
  assert cache.load_contours(digest, other.reference_fingerprint) is None
  # So is another hop; and another system is scored for real (same CREPE and hop).
  assert refcache.settings_fingerprint(
      {**other.reference_settings, "hop_length": 512}) != other.reference_fingerprint
  other._scorer.capacity = "tiny"  # pylint: disable=protected-access
  other._scorer.name = "another fusion"  # pylint: disable=protected-access
  other.assess((performance, SR), (reference, SR))
  assert len(calls) == 2 and len(os.listdir(tmp_path)) == 2


@pytest.mark.timeout(900)
@pytest.mark.parametrize("damage", ["garbage", "truncated", "foreign"])
def test_a_corrupt_entry_is_recomputed_and_rewritten(
    tmp_path, monkeypatch, caplog, reference, performance, damage):
  calls = _count_reference_contours(monkeypatch, reference)
  good = Assessor.default(reference_cache=tmp_path).assess((performance, SR),
                                                            (reference, SR))
  (name,) = os.listdir(tmp_path)
  path = tmp_path / name
  data = path.read_bytes()
  if damage == "garbage":
    path.write_bytes(b"not an npz file" * 10)
  elif damage == "truncated":
    path.write_bytes(data[:len(data) // 2])
  else:  # A valid npz that is not an entry of this reference (no stored key).
    with open(path, "wb") as f:
      np.savez(f, f0_hz=np.zeros(3), hop_s=np.float64(0.01))
  with caplog.at_level(logging.WARNING, logger="asa_jax.assess.refcache"):
    again = Assessor.default(reference_cache=tmp_path).assess((performance, SR),
                                                               (reference, SR))
  assert len(calls) == 2  # recomputed, not read.
  assert again.to_dict() == good.to_dict()
  assert any("corrupt reference cache entry" in r.getMessage() and name in
             r.getMessage() for r in caplog.records)
  stored = refcache.ReferenceCache(tmp_path).load_contours(
      refcache.samples_sha256(reference), Assessor.default().reference_fingerprint)
  assert stored is not None  # rewritten whole.
  np.testing.assert_array_equal(stored.f0_hz, np.load(io.BytesIO(data))["f0_hz"])
  assert [n for n in os.listdir(tmp_path) if n != name] == []  # no temporaries.


@pytest.mark.timeout(900)
def test_manifest_of_three_singers_computes_the_reference_once(
    tmp_path, monkeypatch, capsys, reference):
  decoded = []
  real_load = assessor_lib.load_input

  def counting_load(value, *, role):
    decoded.append(role)
    return real_load(value, role=role)
  monkeypatch.setattr(assessor_lib, "load_input", counting_load)
  ref = tmp_path / "ref.wav"
  sf.write(ref, reference, SR)
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  for i, detune in enumerate(({}, {3: 60.0}, {7: -70.0})):
    perf = tmp_path / f"perf{i}.wav"
    sf.write(perf, assess_audio.note_melody(detune=detune, seed=10 + i), SR)
    lines.append(f"s,p{i},{perf},{ref},,50,,test")
  manifest = tmp_path / "m.csv"
  manifest.write_text("\n".join(lines) + "\n")
  cache = tmp_path / "cache"
  args = [f"--manifest={manifest}", f"--reference-cache={cache}"]
  # A WAV round trip is exact for these samples only up to 16-bit rounding: count
  # calls on what the file decodes to.
  reference_from_file = real_load(str(ref), role="reference")[0]
  calls = _count_reference_contours(monkeypatch, reference_from_file)
  assert cli.main(args + [f"--output={tmp_path / 'a.csv'}"]) == cli.EXIT_OK
  assert len(calls) == 1 and decoded.count("reference") == 1
  assert decoded.count("performance") == 3 and len(os.listdir(cache)) == 1
  # A second run (a new Assessor) reads the reference from the cache.
  assert cli.main(args + [f"--output={tmp_path / 'b.csv'}"]) == cli.EXIT_OK
  assert len(calls) == 1
  rows_a = list(csv.DictReader(open(tmp_path / "a.csv")))
  rows_b = list(csv.DictReader(open(tmp_path / "b.csv")))
  assert len(rows_a) == 3 and rows_a == rows_b
  assert all(r["error"] == "" for r in rows_a)
  # --no-reference-cache computes it again and leaves the folder alone.
  assert cli.main([f"--manifest={manifest}", "--no-reference-cache",
                   f"--output={tmp_path / 'c.csv'}"]) == cli.EXIT_OK
  assert len(calls) == 2 and len(os.listdir(cache)) == 1
  capsys.readouterr()


def test_default_folder_follows_xdg_cache_home(monkeypatch, tmp_path, capsys):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert refcache.default_directory() == str(tmp_path / "xdg" / "asa-jax" /
                                             "references")
  monkeypatch.setenv("XDG_CACHE_HOME", "")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert refcache.default_directory() == str(tmp_path / "home" / ".cache" /
                                             "asa-jax" / "references")
  args = cli._parser().parse_args(["--manifest=m", "--output=o"])  # pylint: disable=protected-access
  assert cli.reference_cache_dir(args) == refcache.default_directory()
  args = cli._parser().parse_args(["--manifest=m", "--no-reference-cache"])  # pylint: disable=protected-access
  assert cli.reference_cache_dir(args) is None
  with pytest.raises(SystemExit) as e:
    cli.main(["--manifest=m", "--output=o", "--reference-cache=d",
              "--no-reference-cache"])
  assert e.value.code == cli.EXIT_USAGE
  assert "at most one of --reference-cache" in capsys.readouterr().err


def test_an_unwritable_cache_costs_speed_not_the_score(tmp_path, caplog):
  """store() fails (the folder is a file): the contours are still returned."""
  blocker = tmp_path / "not_a_folder"
  blocker.write_text("")
  contours = contours_lib.Contours(f0_hz=np.zeros(5, np.float32))

  class _Scorer:
    name = "fake"
    reference_kind = "original"

    def reference_settings(self):
      return {"system": "fake"}

    def contours(self, audio):
      del audio
      return contours
  assessor = Assessor(_Scorer(), calibration=None, reference_cache=blocker / "sub")
  with caplog.at_level(logging.WARNING, logger="asa_jax.assess"):
    assert assessor.reference_contours(np.zeros(16000, np.float32)) is contours
  assert any("not written" in r.getMessage() for r in caplog.records)


@pytest.mark.timeout(900)
def test_learned_system_reads_reference_contours_and_clip_features(
    tmp_path, monkeypatch):
  """A learned system's reference clip features (and 32 ms contours) come from the
  cache for a new Assessor: only the performance's clips are extracted."""
  from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
  from asa_jax.evaluation import calibration  # pylint: disable=g-import-not-at-top
  from input_pipeline import shard  # pylint: disable=g-import-not-at-top
  from tests import test_reproduce  # pylint: disable=g-import-not-at-top
  workdir = tmp_path / "rori"
  workdir.mkdir()
  config = test_reproduce._tiny_rori(workdir)  # pylint: disable=protected-access
  config_specs.save_workdir_config(config, str(workdir))
  calibration.save(calibration.fit([0.0, 0.5, 1.0], [20.0, 50.0, 80.0]),
                   workdir / calibration.FILENAME)
  reference = assess_audio.melody(seed=1)
  performance = assess_audio.melody(detune_phrase=2, detune_cents=100)
  clips, contour_calls = [], []
  real_extract = shard.extract_features

  def counting_extract(batch, **kwargs):
    clips.append(len(batch))
    return real_extract(batch, **kwargs)
  monkeypatch.setattr(shard, "extract_features", counting_extract)
  real_contours = assessor_lib._Learned.contours  # pylint: disable=protected-access

  def counting_contours(self, audio):
    if len(audio) == len(reference) and np.array_equal(audio, reference):
      contour_calls.append(True)
    return real_contours(self, audio)
  monkeypatch.setattr(assessor_lib._Learned, "contours", counting_contours)  # pylint: disable=protected-access
  cache = tmp_path / "cache"
  first = Assessor.from_workdir(workdir, reference_cache=cache).assess(
      (performance, SR), (reference, SR))
  cold_clips = sum(clips)
  assert len(contour_calls) == 1 and len(os.listdir(cache)) == 2  # contours, clips.
  clips.clear()
  second = Assessor.from_workdir(workdir, reference_cache=cache).assess(
      (performance, SR), (reference, SR))
  assert len(contour_calls) == 1  # the reference's contours were read.
  assert 0 < sum(clips) < cold_clips  # its clips too: only the performance's.
  assert second.raw == first.raw and second.to_dict() == first.to_dict()
