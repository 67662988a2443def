"""The pitch network distilled from CREPE tiny (asa_jax.features.pitch_student;
issue 20, part 1): it ships in the package, tracks tones as CREPE does, and its
voicing rule reaches the contours."""

import os

import numpy as np
import pytest

from asa_jax.baselines import contours as contours_lib
from asa_jax.features import crepe
from asa_jax.features import pitch_student
from tests import signals

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def two_tones():
  """0.6 s A3 (220 Hz), 0.6 s silence, 0.6 s E4 (329.6 Hz), 16 kHz float32."""
  return np.concatenate([signals.harmonic_tone(57, 0.6),
                         np.zeros(int(0.6 * signals.SR), np.float32),
                         signals.harmonic_tone(64, 0.6)]).astype(np.float32)


def cents(a, b):
  return 1200.0 * np.log2(np.asarray(a, np.float64) / b)


def test_the_weights_ship_in_the_package():
  assert os.path.getsize(pitch_student.WEIGHTS) < 3 * 2**20
  with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
    assert '"asa_jax.features" = ["pitch_student.npz"]' in f.read()
  params = pitch_student.load_params()
  assert params[0][0].shape[0] == pitch_student.N_BINS
  assert params[-1][0].shape[1] == crepe.PITCH_BINS
  assert len(pitch_student.fingerprint()) == 16


def test_features_are_scaled_log_magnitudes_on_crepes_grid():
  audio = two_tones()
  x = pitch_student.features(audio)
  assert x.shape == (1 + len(audio) // 160, pitch_student.N_BINS)
  assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() == 1.0
  # Every frame's loudest bin is 1; in a tone it is the fundamental's (220 Hz).
  t = np.arange(len(x)) * 0.01
  peak_hz = np.argmax(x[(t > 0.1) & (t < 0.5)], axis=1) * 16000 / pitch_student.N_FFT
  assert np.all(np.abs(peak_hz - 220.0) < 16)


def test_student_tracks_tones_and_calls_silence_unvoiced():
  audio = two_tones()
  f0, conf = pitch_student.student_f0(audio)
  assert f0.shape == conf.shape == (1 + len(audio) // 160,)
  t = np.arange(len(f0)) * 0.01
  first, gap, second = (t > 0.1) & (t < 0.5), (t > 0.75) & (t < 1.05), (t > 1.3) & (t < 1.7)
  voiced = conf >= pitch_student.VOICING_THRESHOLD
  assert voiced[first].all() and voiced[second].all() and not voiced[gap].any()
  assert np.median(np.abs(cents(f0[first], 220.0))) < 20
  assert np.median(np.abs(cents(f0[second], 440.0 * 2 ** (-5 / 12)))) < 20
  # The student is close to its teacher on the tones (CREPE tiny, same frames).
  t_f0, _ = crepe.crepe_f0(audio, capacity="tiny", hop_length=160)
  both = first | second
  assert np.median(np.abs(cents(f0[both], t_f0[both]))) < 20


def test_activation_is_the_mlp_with_a_sigmoid():
  rng = np.random.default_rng(0)
  params = ((rng.normal(size=(4, 3)).astype(np.float32), np.ones(3, np.float32)),
            (rng.normal(size=(3, 2)).astype(np.float32), np.zeros(2, np.float32)))
  x = rng.normal(size=(5, 4)).astype(np.float32)
  h = np.maximum(x @ params[0][0] + 1.0, 0.0)
  want = 1.0 / (1.0 + np.exp(-(h @ params[1][0])))
  np.testing.assert_allclose(pitch_student.activation(x, params), want, atol=1e-6)


def test_unreadable_weights_name_the_file(tmp_path):
  bad = tmp_path / "w.npz"
  bad.write_bytes(b"not a zip")
  with pytest.raises(pitch_student.PitchStudentError, match="w.npz"):
    pitch_student.load_params(str(bad))
  wrong = tmp_path / "wrong.npz"
  np.savez(wrong, W0=np.zeros((3, 360), np.float32), b0=np.zeros(360, np.float32))
  with pytest.raises(pitch_student.PitchStudentError, match="not a 257"):
    pitch_student.load_params(str(wrong))


def test_extract_contours_with_the_student_uses_its_voicing_threshold():
  audio = two_tones()
  c = contours_lib.extract_contours(audio, tracker="student")
  assert c.n_frames == 1 + len(audio) // contours_lib.HOP_LENGTH
  loud = c.energy_db >= c.energy_db.max() - contours_lib.VOICING_RANGE_DB
  np.testing.assert_array_equal(
      c.voiced, (c.confidence >= pitch_student.VOICING_THRESHOLD) & loud)
  t = np.arange(c.n_frames) * c.hop_s
  assert np.median(np.abs(cents(c.f0_hz[(t > 0.1) & (t < 0.5)], 220.0))) < 20
  with pytest.raises(ValueError, match="student"):
    contours_lib.extract_contours(audio, tracker="student", network_hop=320)


def test_the_recipe_skips_an_unreadable_file_and_names_it(tmp_path, monkeypatch):
  from asa_jax.experiments import distil_pitch  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  good = tmp_path / "good.wav"
  sf.write(good, signals.harmonic_tone(60, 0.5), signals.SR)
  bad = tmp_path / "bad.wav"
  bad.write_bytes(b"RIFF....")
  monkeypatch.setattr(distil_pitch, "SHIFTS", (0,))
  lines = []
  mags, acts = distil_pitch.teacher_data([str(bad), str(good)], log=lines.append)
  assert any("skipped" in l and "bad.wav" in l for l in lines)
  assert mags.shape[1] == pitch_student.N_BINS and acts.shape == (len(mags), 360)
  assert len(mags) >= 40  # the loud frames of 0.5 s at 10 ms.
  with pytest.raises(ValueError, match="no readable audio"):
    distil_pitch.teacher_data([str(bad)], log=lines.append)


def test_agreement_with_crepe_on_a_tone_and_an_octave_error(monkeypatch):
  """On a plain tone the student agrees with CREPE tiny; a student an octave up (the
  first student's miss on the demo voice, BUILD_NOTES issue 20) is counted so."""
  from asa_jax.evaluation import tracker_agreement  # pylint: disable=g-import-not-at-top
  tone = signals.harmonic_tone(57, 1.0)
  got = tracker_agreement.agreement(tone)
  assert got["frames"] > 80 and got["within_50"] == 1.0 and got["octave"] == 0.0
  assert abs(cents(got["median_student_hz"], 220.0)) < 20
  student_f0 = pitch_student.student_f0
  monkeypatch.setattr(pitch_student, "student_f0",
                      lambda *a, **k: (2 * student_f0(*a, **k)[0], student_f0(*a, **k)[1]))
  up = tracker_agreement.agreement(tone)
  assert up["frames"] == got["frames"] and up["octave"] == 1.0 and up["within_50"] == 0.0
  assert abs(cents(up["median_student_hz"], 440.0)) < 20


def test_agreement_is_nan_without_voiced_frames_and_refuses_2d():
  from asa_jax.evaluation import tracker_agreement  # pylint: disable=g-import-not-at-top
  got = tracker_agreement.agreement(np.zeros(8000, np.float32))
  assert got["frames"] == 0 and np.isnan(got["within_50"])
  with pytest.raises(ValueError, match="1-D"):
    tracker_agreement.agreement(np.zeros((2, 8000), np.float32))


def test_the_recipe_generates_its_demo_voice_corpus_not_the_main_jobs(tmp_path):
  from asa_jax.experiments import distil_pitch  # pylint: disable=g-import-not-at-top
  assert distil_pitch.demo_files(str(tmp_path / "none"), songs=0, performances=3) == []
  files = distil_pitch.demo_files(str(tmp_path / "d"), songs=1, performances=2)
  assert [os.path.basename(f) for f in files] == [
      "reference.wav", "song00_p00.wav", "song00_p01.wav"]
  assert all(os.path.isfile(f) for f in files)
  main_job = tmp_path / "main"
  from input_pipeline.corpora import demo  # pylint: disable=g-import-not-at-top
  demo.generate_corpus(str(main_job), songs=1, performances=2, seed=0)
  with open(files[0], "rb") as a, open(main_job / "audio/song00/reference.wav", "rb") as b:
    assert a.read() != b.read()  # seed DEMO_SEED, not the main job's 0.


def test_the_recipes_teacher_cache_is_written_once_and_read_back(tmp_path, monkeypatch):
  from asa_jax.experiments import distil_pitch  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  wav = tmp_path / "tone.wav"
  sf.write(wav, signals.harmonic_tone(60, 0.5), signals.SR)
  monkeypatch.setattr(distil_pitch, "SHIFTS", (0,))
  calls = []
  files = lambda: calls.append(1) or [str(wav)]
  cache = str(tmp_path / "c" / "teacher.npz")
  first = distil_pitch.cached_teacher_data(cache, files)
  again = distil_pitch.cached_teacher_data(cache, files)
  assert calls == [1] and os.path.isfile(cache)
  np.testing.assert_array_equal(first[0], again[0])
  np.testing.assert_array_equal(first[1], again[1])
