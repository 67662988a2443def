"""Tests for the synthetic demo corpus (input_pipeline/corpora/demo.py, synth_voice.py)."""

import csv
import glob
import os

import librosa
import numpy as np
import pytest
import soundfile as sf

from input_pipeline.corpora import demo as demo_corpus
from input_pipeline import manifest
from input_pipeline.corpora import synth_voice

COLUMNS = ["song_id", "performance_id", "performance_audio", "reference_audio",
           "accompaniment_audio", "score", "judge_scores", "split"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
  out = tmp_path_factory.mktemp("demo")
  rows = demo_corpus.generate_corpus(str(out), songs=2, performances=3, seed=7,
                                     min_seconds=4.0, max_seconds=5.0)
  return out, rows


def _read(out):
  with open(os.path.join(out, "manifest.csv"), newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    return reader.fieldnames, list(reader)


def test_manifest_schema_files_and_audio(corpus):
  out, _ = corpus
  header, rows = _read(out)
  assert header == COLUMNS
  assert len(rows) == 6
  assert len({r["performance_id"] for r in rows}) == 6
  for r in rows:
    for col in ("performance_audio", "reference_audio", "accompaniment_audio"):
      assert not os.path.isabs(r[col])
      path = os.path.join(out, r[col])
      assert os.path.isfile(path), path
      info = sf.info(path)
      assert info.samplerate == 16000 and info.channels == 1
      assert 4.0 < info.duration < 7.5
    score = float(r["score"])
    assert 0 <= score <= 100
    judges = [float(x) for x in r["judge_scores"].split(";")]
    assert len(judges) == 5 and all(0 <= j <= 100 for j in judges)
    assert abs(np.mean(judges) - score) < 25
  # Performance, reference and accompaniment of one song have the same length.
  r = rows[0]
  lengths = {sf.info(os.path.join(out, r[c])).frames
             for c in ("performance_audio", "reference_audio", "accompaniment_audio")}
  assert len(lengths) == 1
  assert {r["split"] for r in rows} == {"train", "test"}
  for song in {r["song_id"] for r in rows}:
    assert len({r["split"] for r in rows if r["song_id"] == song}) == 1
  assert os.path.isfile(os.path.join(out, "README.txt"))
  parsed, problems = manifest.read_manifest(os.path.join(out, "manifest.csv"))
  assert not problems and len(parsed) == 6
  assert all(r.accompaniment_audio and len(r.judge_scores) == 5 for r in parsed)


def test_each_song_has_good_and_poor(corpus):
  _, rows = corpus
  for song in {r["song_id"] for r in rows}:
    scores = [int(r["score"]) for r in rows if r["song_id"] == song]
    assert max(scores) >= 80 and min(scores) < 40, scores


def test_score_formula_hand_checked():
  # P = mean(min(|e|, 300)) = (10 + 300 + 50) / 3 = 120 cents; T = 0.05 s.
  # score = 100 * (1 - 120/200 - 0.05/0.5) = 100 * 0.3 = 30.
  assert demo_corpus.score_from_errors(np.array([10.0, 400.0, -50.0]),
                                       np.array([0.05, -0.05, 0.05])) == 30
  assert demo_corpus.score_from_errors(np.zeros(4), np.zeros(4)) == 100
  assert demo_corpus.score_from_errors(np.full(3, 500.0), np.full(3, 0.2)) == 0


def test_score_tracks_realised_errors(corpus):
  _, rows = corpus
  for r in rows:
    plan = r["plan"]
    assert int(r["score"]) == demo_corpus.score_from_errors(plan["note_errors"],
                                                            plan["onset_errors"])
    assert np.max(np.abs(plan["onset_errors"])) <= demo_corpus.MAX_ONSET_JITTER_SECONDS


def _note_pitches(audio, notes, sr=16000):
  """Median measured pitch (MIDI) in the middle half of each note, via YIN."""
  hop = 160
  f0 = librosa.yin(audio.astype(np.float32), fmin=60, fmax=1000, sr=sr,
                   frame_length=1024, hop_length=hop)
  midi = librosa.hz_to_midi(f0)
  t = np.arange(len(f0)) * hop / sr
  out = []
  for n in notes:
    m = (t > n.onset + 0.25 * n.duration) & (t < n.onset + 0.75 * n.duration)
    out.append(np.median(midi[m]))
  return np.array(out)


def test_poor_performance_has_larger_measured_pitch_error(corpus):
  """Pitch measured from the audio (YIN), per note, performance vs reference."""
  out, rows = corpus
  for song in {r["song_id"] for r in rows}:
    song_rows = sorted((r for r in rows if r["song_id"] == song), key=lambda r: int(r["score"]))
    poor, good = song_rows[0], song_rows[-1]
    ref_audio, _ = sf.read(os.path.join(out, poor["reference_audio"]))
    ref = _note_pitches(ref_audio, poor["melody"]["notes"])
    errors = {}
    for r in (poor, good):
      audio, _ = sf.read(os.path.join(out, r["performance_audio"]))
      perf = _note_pitches(audio, r["plan"]["notes"])
      errors[r["tier"]] = float(np.mean(np.minimum(np.abs(perf - ref) * 100, 300)))
    assert errors["poor"] > errors["good"] + 40, errors
    assert errors["good"] < 40, errors


def test_reference_sings_the_plan():
  rng = np.random.default_rng(3)
  melody = demo_corpus.make_melody(rng, min_seconds=3.0, max_seconds=3.5)
  voice = synth_voice.Voice(vibrato_depth=30.0)
  audio = synth_voice.render_voice(melody["notes"], voice, total_seconds=melody["total_seconds"],
                                   rng=rng)
  assert audio.dtype == np.float32
  assert audio.shape == (int(round(melody["total_seconds"] * 16000)),)
  assert 0.3 < np.max(np.abs(audio)) <= 0.5 + 1e-6
  measured = _note_pitches(audio, melody["notes"])
  target = np.array([n.midi for n in melody["notes"]])
  assert np.max(np.abs(measured - target)) < 0.3, (measured, target)


def _corpus(out):
  with open(os.path.join(out, "manifest.csv"), "rb") as f:
    manifest = f.read()
  audio = {}
  for song_dir in sorted(glob.glob(os.path.join(out, "audio", "*"))):
    for path in sorted(glob.glob(os.path.join(song_dir, "*.wav"))):
      audio[os.path.relpath(path, out)] = sf.read(path, dtype="float32")[0]
  return manifest, audio


def test_deterministic_per_seed(tmp_path):
  kwargs = dict(songs=1, performances=2, min_seconds=3.0, max_seconds=3.5)
  demo_corpus.generate_corpus(str(tmp_path / "a"), seed=5, **kwargs)
  demo_corpus.generate_corpus(str(tmp_path / "b"), seed=5, **kwargs)
  demo_corpus.generate_corpus(str(tmp_path / "c"), seed=6, **kwargs)
  manifest_a, audio_a = _corpus(tmp_path / "a")
  manifest_b, audio_b = _corpus(tmp_path / "b")
  manifest_c, audio_c = _corpus(tmp_path / "c")
  assert manifest_a == manifest_b
  assert manifest_a != manifest_c
  assert audio_a.keys() == audio_b.keys()
  for name in audio_a:
    np.testing.assert_array_equal(audio_a[name], audio_b[name], err_msg=name)
  name = "audio/song00/song00_p01.wav"
  n = min(len(audio_a[name]), len(audio_c[name]))
  assert np.max(np.abs(audio_a[name][:n] - audio_c[name][:n])) > 0.05


def test_splits_by_song():
  assert demo_corpus.song_splits(12) == ["train"] * 8 + ["validation"] * 2 + ["test"] * 2
  assert demo_corpus.song_splits(2) == ["train", "test"]
  assert demo_corpus.song_splits(1) == ["train"]


def test_bad_arguments_raise(tmp_path):
  with pytest.raises(ValueError, match="songs >= 1"):
    demo_corpus.generate_corpus(str(tmp_path), songs=0)
  with pytest.raises(ValueError, match="min_seconds"):
    demo_corpus.generate_corpus(str(tmp_path), min_seconds=5.0, max_seconds=4.0)
  with pytest.raises(ValueError, match="empty note plan"):
    synth_voice.render_voice([], synth_voice.Voice(), total_seconds=1.0,
                             rng=np.random.default_rng(0))
