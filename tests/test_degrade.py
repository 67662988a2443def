"""input_pipeline.corpora.degrade on a real MIR-1K vocal: each degradation does what it says."""

import dataclasses
import os

import numpy as np
import pytest

from input_pipeline.corpora import degrade as dg
from tests.conftest import require_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = os.path.join(ROOT, "..", "shared", "data", "mir1k", "voice", "Ani_1_01.opus")
SR = 16000


@pytest.fixture(scope="module")
def voice():
  """(audio, WorldParams, undegraded resynthesis) of a 9 s real karaoke vocal."""
  require_data(CLIP, "real singing data")
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  audio, sr = sf.read(CLIP, dtype="float32")
  assert sr == SR
  params = dg.analyse(audio, sr, f0_method="dio")
  clean, applied = dg.degrade(params, dg.Degradation(), np.random.default_rng(0))
  assert applied.scores()["score"] == 100.0
  return audio, params, dg.synthesise(clean)


def _crepe(audio):
  from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top
  return crepe.crepe_f0(audio, capacity="tiny", hop_length=80)  # 5 ms = WORLD frames.


def _onset(audio):
  """First time (s) the 10 ms RMS reaches 10% of its maximum."""
  rms = np.sqrt(np.convolve(audio ** 2, np.ones(160) / 160, mode="same"))
  return float(np.argmax(rms > 0.1 * rms.max()) / SR)


@pytest.mark.parametrize("cents", [30.0, 80.0])
def test_detune_shows_in_crepe_f0(voice, cents):
  _, params, clean = voice
  out, applied = dg.degrade(params, dg.Degradation(detune_cents=cents),
                            np.random.default_rng(1))
  f_ref, c_ref = _crepe(clean)
  f_out, c_out = _crepe(dg.synthesise(out))
  measured = []
  for (a, b), offset in zip(applied.notes, applied.note_offsets_cents):
    if b - a < 20:  # Notes of at least 100 ms, edges left out.
      continue
    m = slice(a + 4, b - 4)
    ok = (c_ref[m] > 0.5) & (c_out[m] > 0.5)
    if ok.sum() >= 5:
      shift = np.median(1200 * np.log2(f_out[m][ok] / f_ref[m][ok]))
      measured.append((shift, offset))
  assert len(measured) >= 15
  shift, offset = np.array(measured).T
  assert np.all(np.abs(np.abs(offset) / cents - 1.0) <= 0.5 + 1e-9)
  np.testing.assert_allclose(shift, offset, atol=10.0)
  assert applied.scores()["pitch_score"] < 100.0 - cents / 4


def test_time_map_moves_the_onset(voice):
  _, params, clean = voice
  for late in (0.3, 0.12):
    out, applied = dg.degrade(params, dg.Degradation(entry_offset_seconds=late),
                              np.random.default_rng(0))
    moved = dg.synthesise(out)
    assert _onset(moved) - _onset(clean) == pytest.approx(late, abs=0.01)
    np.testing.assert_allclose(applied.onset_errors_seconds, late, atol=1e-9)
  # Onset displacements: the output's note onsets are where Applied says.
  out, applied = dg.degrade(params, dg.Degradation(onset_jitter_seconds=0.08),
                            np.random.default_rng(3))
  assert np.abs(applied.onset_errors_seconds).max() > 0.03
  assert np.all(np.diff(applied.new_onsets_seconds) > 0)  # Still in order.
  voiced_out = out.f0 > 0
  for t_new in applied.new_onsets_seconds[1:]:
    k = int(round(t_new / out.frame_seconds))
    assert voiced_out[min(k + 1, len(voiced_out) - 1)]
  # A uniform tempo change is not an error.
  out, applied = dg.degrade(params, dg.Degradation(tempo_ratio=1.07),
                            np.random.default_rng(0))
  assert out.num_frames == pytest.approx(params.num_frames * 1.07, abs=2)
  assert applied.scores()["score"] == 100.0


def test_voice_warp_leaves_f0_unchanged(voice):
  _, params, clean = voice
  out, applied = dg.degrade(params, dg.Degradation(formant_warp=1.15),
                            np.random.default_rng(0))
  f_ref, c_ref = _crepe(clean)
  f_out, c_out = _crepe(dg.synthesise(out))
  ok = (c_ref > 0.5) & (c_out > 0.5)
  assert np.median(np.abs(1200 * np.log2(f_out[ok] / f_ref[ok]))) < 10.0
  bins = np.arange(params.sp.shape[1])
  centroid = lambda sp: float(np.sum(sp * bins) / np.sum(sp))
  assert centroid(out.sp) > 1.05 * centroid(params.sp)  # The envelope did move.
  assert applied.scores()["score"] == 100.0


def test_undegraded_resynthesis_stays_close_in_log_mel(voice):
  from asa_jax.features import extract, logmel  # pylint: disable=g-import-not-at-top
  audio, params, clean = voice
  detuned = dg.synthesise(dg.degrade(params, dg.Degradation(detune_cents=100.0),
                                     np.random.default_rng(0))[0])
  for start in (1.0, 4.0):
    mel = lambda x: logmel.log_mel(extract.clip_at(x, start)[None])[0]
    a, b, c = mel(audio), mel(clean), mel(detuned)
    loud = a > a.max() - 40.0
    diff_clean = np.abs(a - b)[loud].mean()
    assert diff_clean < 5.0  # dB
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9
    assert diff_clean < 0.6 * np.abs(a - c)[loud].mean()


ERRORS = {  # field -> (family sub-score that must drop, a moderate value)
    "detune_cents": ("pitch_score", 40.0), "wrong_note_prob": ("pitch_score", 0.4),
    "drift_cents": ("pitch_score", 80.0), "jitter_cents": ("pitch_score", 30.0),
    "scoop_cents": ("pitch_score", 120.0), "vibrato_scale": ("pitch_score", 2.0),
    "onset_jitter_seconds": ("timing_score", 0.08), "tempo_drift": ("timing_score", 0.15),
    "entry_offset_seconds": ("timing_score", 0.2), "breathiness": ("voice_score", 0.5),
    "roughness_cents": ("voice_score", 25.0),
    "loudness_wobble_db": ("voice_score", 3.0),
}
NOT_ERRORS = {"key_shift_semitones": 3.0, "tempo_ratio": 0.94, "formant_warp": 0.87,
              "gain_db": -9.0}


def test_each_error_lowers_its_family_and_non_errors_do_not(voice):
  _, params, _ = voice
  for field, (family, value) in ERRORS.items():
    out, applied = dg.degrade(params, dg.Degradation(**{field: value}),
                              np.random.default_rng(5))
    scores = applied.scores()
    assert scores[family] < 100.0 and scores["score"] < 100.0, field
    assert all(v == 100.0 for k, v in scores.items() if k not in (family, "score")), field
    assert np.isfinite(dg.synthesise(out)).all()
  everything = dg.Degradation(**NOT_ERRORS)
  out, applied = dg.degrade(params, everything, np.random.default_rng(5))
  assert applied.scores() == {"score": 100.0, "pitch_score": 100.0,
                              "timing_score": 100.0, "voice_score": 100.0}
  voiced = (params.f0 > 0)
  assert np.median(out.f0[out.f0 > 0]) == pytest.approx(
      np.median(params.f0[voiced]) * 2 ** 0.25, rel=0.03)


def test_same_seed_same_output(voice):
  _, params, _ = voice
  d = dg.Degradation(detune_cents=30, jitter_cents=20, onset_jitter_seconds=0.05,
                     roughness_cents=10, loudness_wobble_db=2)
  a, aa = dg.degrade(params, d, np.random.default_rng(7))
  b, bb = dg.degrade(params, d, np.random.default_rng(7))
  c, _ = dg.degrade(params, d, np.random.default_rng(8))
  np.testing.assert_array_equal(a.f0, b.f0)
  np.testing.assert_array_equal(a.sp, b.sp)
  assert aa.scores() == bb.scores()
  assert not np.array_equal(a.f0, c.f0)


def test_label_is_monotone_in_every_error():
  grid = np.linspace(0.0, 1.2, 49)
  for which in range(3):
    scores = []
    for x in grid:
      errors = [0.05, 0.02, 0.05]
      errors[which] += x * (250.0, 0.6, 0.8)[which]
      if which == 2:
        errors[2] = min(errors[2], 0.75)
      scores.append(dg.label(*errors))
    for key in ("score", ("pitch_score", "timing_score", "voice_score")[which]):
      values = np.array([s[key] for s in scores])
      assert np.all(np.diff(values) <= 0), (which, key)
      assert values[0] > values[len(values) // 3], (which, key)  # It does fall.
  # Each voice error raises V; V saturates at its full scale.
  v = [dg.voice_error(b, 0, 0) for b in (0, 0.5, 1, 2)]
  assert v[0] < v[1] < v[2] == v[3]
  assert dg.voice_error(0, 25, 0) < dg.voice_error(0, 50, 0) == dg.voice_error(0, 80, 0)
  assert dg.voice_error(0, 0, 3) < dg.voice_error(0, 0, 6)


def test_bad_input_and_bad_parameters():
  with pytest.raises(dg.DegradeError, match="silent"):
    dg.analyse(np.zeros(SR, np.float32), SR)
  with pytest.raises(dg.DegradeError, match="non-empty"):
    dg.analyse(np.zeros(0, np.float32), SR)
  with pytest.raises(dg.DegradeError, match="NaN"):
    dg.analyse(np.full(SR, np.nan, np.float32), SR)
  noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
  with pytest.raises(dg.DegradeError, match="voiced"):
    dg.analyse(noise, SR, f0=np.zeros(50), f0_hop_seconds=0.02)
  with pytest.raises(ValueError, match="breathiness"):
    dg.Degradation(breathiness=1.5).validate()
  with pytest.raises(ValueError, match="tempo_drift"):
    dg.Degradation(tempo_drift=0.9).validate()


def test_labels_as_f0_source(voice):
  """A dataset's pitch labels (MIR-1K: semitones every 20 ms) drive the analysis."""
  audio, params, _ = voice
  pv = os.path.join(os.path.dirname(os.path.dirname(CLIP)), "PitchLabel",
                    "Ani_1_01.pv")
  semitones = np.loadtxt(pv)
  hz = np.where(semitones > 0, 440.0 * 2 ** ((semitones - 69) / 12), 0.0)
  from_labels = dg.analyse(audio, SR, f0=hz, f0_hop_seconds=0.02)
  both = (from_labels.f0 > 0) & (params.f0 > 0)
  assert both.mean() > 0.4
  cents = 1200 * np.abs(np.log2(from_labels.f0[both] / params.f0[both]))
  assert np.median(cents) < 50.0
  assert dataclasses.asdict(dg.Degradation())["tempo_ratio"] == 1.0


# --- The label formula with worked numbers (issue 22, item 2). -------------------------


def test_label_worked_numbers():
  # P = 100 cents, T = 0.1 s, V = 0.25: 1 - 100/200 - 0.1/0.5 - 0.25 = 0.05.
  assert dg.label(100.0, 0.1, 0.25) == {"score": 5.0, "pitch_score": 50.0,
                                         "timing_score": 80.0, "voice_score": 66.7}
  assert dg.label(0.0, 0.0, 0.0) == {"score": 100.0, "pitch_score": 100.0,
                                     "timing_score": 100.0, "voice_score": 100.0}
  # 1 - 30/200 - 0.05/0.5 - 0.15 = 0.6; voice 1 - 0.15/0.75 = 0.8.
  assert dg.label(30.0, 0.05, 0.15) == {"score": 60.0, "pitch_score": 85.0,
                                        "timing_score": 90.0, "voice_score": 80.0}
  # Rounded to 0.1: 1 - 1/200 = 0.995; 1 - 0.123/0.5 = 0.754.
  assert dg.label(1.0, 0.0, 0.0)["pitch_score"] == 99.5
  assert dg.label(0.0, 0.123, 0.0)["timing_score"] == 75.4


def test_label_clips_at_0_and_100():
  # Errors beyond full scale clip at 0, never negative.
  assert dg.label(300.0, 0.0, 0.0)["pitch_score"] == 0.0
  assert dg.label(0.0, 0.8, 0.0)["timing_score"] == 0.0
  assert dg.label(0.0, 0.0, 0.75)["voice_score"] == 0.0
  assert dg.label(150.0, 0.2, 0.25)["score"] == 0.0  # 1 - 0.75 - 0.4 - 0.25 < 0.
  # Negative inputs (not produced by degrade) cannot push a score above 100.
  assert dg.label(-50.0, -0.1, 0.0)["score"] == 100.0
  assert dg.label(-50.0, 0.0, 0.0)["pitch_score"] == 100.0


def test_voice_terms_are_capped_at_one():
  # V = 0.25 (b + r / 50 + w / 6), each term capped at 1 and floored at 0.
  assert dg.voice_error(0.2, 15.0, 3.0) == pytest.approx(0.25 * (0.2 + 0.3 + 0.5))
  assert dg.voice_error(1.0, 0.0, 0.0) == pytest.approx(0.25)
  assert dg.voice_error(0.0, 50.0, 0.0) == pytest.approx(0.25)
  assert dg.voice_error(0.0, 0.0, 6.0) == pytest.approx(0.25)
  assert dg.voice_error(3.0, 200.0, 24.0) == pytest.approx(0.75)
  assert dg.voice_error(0.0, 100.0, 1.5) == pytest.approx(0.25 + 0.0625)
  assert dg.voice_error(-1.0, -10.0, -2.0) == 0.0


def _applied(note_errors, onset_errors, breathiness=0.0, roughness=0.0, wobble=0.0):
  n = len(note_errors)
  onsets = np.arange(n, dtype=np.float64)
  return dg.Applied(
      notes=tuple((10 * i, 10 * i + 10) for i in range(n)),
      note_offsets_cents=np.zeros(n),
      note_pitch_errors_cents=np.asarray(note_errors, np.float64),
      onsets_seconds=onsets, new_onsets_seconds=onsets + onset_errors,
      onset_errors_seconds=np.asarray(onset_errors, np.float64),
      breathiness=breathiness, roughness_cents=roughness, loudness_wobble_db=wobble,
      degradation=dg.Degradation())


def test_applied_scores_worked_numbers_and_the_300_cent_note_cap():
  # P = mean(50, 150) = 100 cents; T = mean(|0.05|, |-0.15|) = 0.1 s;
  # V = 0.25 (0.2 + 15/50 + 3/6) = 0.25: score 5.0.
  a = _applied([50.0, 150.0], [0.05, -0.15], breathiness=0.2, roughness=15.0,
               wobble=3.0)
  assert a.pitch_error_cents == pytest.approx(100.0)
  assert a.timing_error_seconds == pytest.approx(0.1)
  assert a.voice_error == pytest.approx(0.25)
  assert a.scores() == {"score": 5.0, "pitch_score": 50.0, "timing_score": 80.0,
                        "voice_score": 66.7}
  # Each note's error is capped at 300 cents before the mean: (300 + 50) / 2 = 175,
  # pitch score 100 (1 - 175/200) = 12.5 (uncapped: 200 cents, score 0).
  capped = _applied([350.0, -50.0], [0.0, 0.0])
  assert capped.pitch_error_cents == pytest.approx(175.0)
  assert capped.scores()["pitch_score"] == 12.5
  assert _applied([1200.0], [0.0]).pitch_error_cents == pytest.approx(300.0)
  assert _applied([], []).scores()["score"] == 100.0  # No notes: no error.


# --- validate() names every out-of-range field (issue 22, item 3). -----------------


BAD_FIELDS = [
    ("detune_cents", -1.0), ("wrong_note_prob", -0.1), ("wrong_note_prob", 1.1),
    ("jitter_cents", -1.0), ("scoop_cents", -1.0), ("scoop_seconds", 0.0),
    ("vibrato_scale", -0.5), ("onset_jitter_seconds", -0.01), ("tempo_drift", 0.51),
    ("tempo_drift", -0.51), ("breathiness", -0.1), ("breathiness", 1.01),
    ("roughness_cents", -1.0), ("loudness_wobble_db", -1.0), ("tempo_ratio", 0.49),
    ("tempo_ratio", 2.01), ("formant_warp", 0.49), ("formant_warp", 2.01),
]
GOOD_EDGES = {"wrong_note_prob": (0.0, 1.0), "tempo_drift": (-0.5, 0.5),
              "breathiness": (0.0, 1.0), "tempo_ratio": (0.5, 2.0),
              "formant_warp": (0.5, 2.0), "vibrato_scale": (0.0,),
              "drift_cents": (-100.0, 100.0), "entry_offset_seconds": (-0.3, 0.3),
              "key_shift_semitones": (-5.0, 5.0), "gain_db": (-20.0, 20.0)}


@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_validate_names_each_out_of_range_field(field, value):
  with pytest.raises(ValueError,
                     match=rf"^Degradation\.{field} out of range: {value!r}$"):
    dg.Degradation(**{field: value}).validate()
  # degrade() validates before touching anything.
  params = dg.WorldParams(f0=np.full(40, 220.0), sp=np.ones((40, 5)),
                          ap=np.zeros((40, 5)), sample_rate=SR)
  with pytest.raises(ValueError, match=rf"Degradation\.{field} out of range"):
    dg.degrade(params, dg.Degradation(**{field: value}), np.random.default_rng(0))


def test_validate_accepts_the_edges_of_each_range():
  for field, values in GOOD_EDGES.items():
    for value in values:
      dg.Degradation(**{field: value}).validate()
