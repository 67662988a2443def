"""Tests of asa_jax.baselines: histogram measures, DTW ratings, cache, scoring."""

import os

import numpy as np
import pytest
import soundfile as sf

from asa_jax import baselines
from asa_jax.baselines import cache as cache_lib
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw as dtw_lib
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from tests import signals

HOP = contours_lib.FRAME_SECONDS
# A melody that reuses its pitch classes (as songs do), irregular durations.
NOTES = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 62, 64,
         62, 60, 67, 65, 64, 62, 60]
DURS = [0.4, 0.2, 0.6, 0.3, 0.5, 0.2, 0.4, 0.3, 0.7, 0.25, 0.35, 0.6, 0.2,
        0.45, 0.3, 0.5, 0.2, 0.4, 0.6, 0.3, 0.25, 0.5, 0.35, 0.8]
LEVELS = [-12, -18, -10, -20, -8, -16, -14, -22, -9, -17, -11, -6, -19, -13,
          -21, -10, -18, -12, -7, -15, -20, -9, -16, -11]


def note_frames(durs=DURS):
  return [int(round(d / HOP)) for d in durs]


def melody_f0(detune_cents=None, jitter=0.0, seed=0):
  """f0 (Hz) of NOTES, 10 ms frames; detune_cents: per-note offsets."""
  rng = np.random.default_rng(seed)
  out = []
  for i, (m, n) in enumerate(zip(NOTES, note_frames())):
    off = 0.0 if detune_cents is None else detune_cents[i]
    cents = 100.0 * (m - 69) + off + jitter * rng.standard_normal(n)
    out.append(440.0 * 2 ** (cents / 1200.0))
  return np.concatenate(out)


def random_detune(seed):
  rng = np.random.default_rng(seed)
  return rng.uniform(25, 50, len(NOTES)) * rng.choice([-1, 1], len(NOTES))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_each_histogram_measure_prefers_steady_in_tune(seed):
  good = histogram_lib.histogram_measures(melody_f0(jitter=3.0, seed=seed))
  bad = histogram_lib.histogram_measures(
      melody_f0(random_detune(seed), jitter=3.0, seed=seed))
  assert set(good) == set(baseline_names.HISTOGRAM)
  for name in baseline_names.HISTOGRAM:
    assert good[name] > bad[name], (name, good[name], bad[name])


def test_perfectly_steady_melody_is_best_possible_where_bounded():
  m = histogram_lib.histogram_measures(melody_f0())
  assert m["binning"] == pytest.approx(0.0, abs=1e-6)
  assert m["kMeans"] == pytest.approx(0.0, abs=1e-6)
  assert m["peakConc50"] == 1.0 and m["peakConc110"] == 1.0
  # The smoothing Gaussian (sigma 5 cents): FWHM 2.355 sigma, kurtosis 0,
  # half-normal skewness 0.995.
  assert m["peakBW"] == pytest.approx(-2.355 * 5, abs=0.5)
  assert m["kurtosis"] == pytest.approx(0.0, abs=0.1)
  assert m["skewness"] == pytest.approx(0.995, abs=0.05)


def test_histogram_ignores_global_tuning_octave_and_unvoiced_frames():
  f0 = melody_f0(jitter=3.0)
  base = histogram_lib.histogram_measures(f0)
  shifted = f0 * 2 ** ((1200 + 37) / 1200)  # an octave and 37 cents up.
  with_gaps = np.concatenate([np.zeros(50), shifted, np.zeros(30)])
  other = histogram_lib.histogram_measures(with_gaps)
  for name in base:
    assert other[name] == pytest.approx(base[name], abs=1e-6), name
  _, _, tuning = histogram_lib.folded_pitch(shifted)
  assert tuning == pytest.approx(37.0, abs=0.5)


def test_histogram_needs_voiced_frames():
  with pytest.raises(ValueError, match="voiced"):
    histogram_lib.histogram_measures(np.zeros(100))


def test_contours_from_f0_resamples_to_10ms():
  times = np.arange(0, 1.0, 0.0029)
  f0 = np.where(times < 0.5, 220.0, 0.0)
  c = contours_lib.contours_from_f0(times, f0)
  assert c.hop_s == HOP and c.n_frames == int(times[-1] / HOP) + 1
  assert np.all(c.f0_hz[:49] == 220.0) and np.all(c.f0_hz[51:] == 0.0)
  assert c.energy_db is None and c.onsets_s is None


# ---- DTW ratings on hand-made contours ------------------------------------


def make_contours(notes=NOTES, durs=DURS, levels=LEVELS, stretch=1.0,
                  detune=None):
  """Contours of a melody: per note f0, a decaying energy and an onset."""
  f0, db, onsets = [], [], []
  t = 0.0
  for i, (m, d, level) in enumerate(zip(notes, durs, levels)):
    n = int(round(d * stretch / HOP))
    cents = 100.0 * (m - 69) + (0.0 if detune is None else detune[i])
    f0.append(np.full(n, 440.0 * 2 ** (cents / 1200.0)))
    db.append(level - 12.0 * np.linspace(0, 1, n))  # decay over the note.
    onsets.append(t)
    t += n * HOP
  return contours_lib.Contours(
      f0_hz=np.concatenate(f0).astype(np.float32), hop_s=HOP,
      energy_db=np.concatenate(db).astype(np.float32),
      onsets_s=np.asarray(onsets))


def reordered(items, k=3):
  """The second half of the melody first (sections swapped)."""
  h = len(items) // 2
  return list(items[h:]) + list(items[:h])


REF = make_contours()
STRETCHED = make_contours(stretch=1.27)
SECTION_DETUNED = make_contours(
    detune=[0] * 8 + [150] * 8 + [0] * 8)  # middle third 1.5 semitones sharp.
REORDERED = make_contours(reordered(NOTES), reordered(DURS),
                          reordered(LEVELS))


@pytest.mark.parametrize("name", dtw_lib.DTW_MEASURES)
def test_dtw_rating_prefers_time_stretched_copy(name):
  rate = dtw_lib.DTW_RATINGS[name]
  stretched = rate(STRETCHED, REF)
  assert rate(REF, REF) == pytest.approx(0.0, abs=1e-9)
  # Close to the identical copy, far above the re-ordered one.
  assert stretched > 0.1 * rate(REORDERED, REF)
  if name == "dtw_pitch":
    assert stretched > rate(SECTION_DETUNED, REF)


def test_dtw_pitch_removes_transposition():
  transposed = contours_lib.Contours(
      f0_hz=(REF.f0_hz * 2 ** (-5 / 12)).astype(np.float32), hop_s=HOP)
  assert dtw_lib.dtw_pitch_rating(transposed, REF) == pytest.approx(0.0,
                                                                    abs=1e-3)


def test_dtw_volume_ignores_gain_and_rhythm_ignores_tempo():
  louder = contours_lib.Contours(REF.f0_hz, HOP, REF.energy_db + 14.0,
                                 REF.onsets_s)
  assert dtw_lib.dtw_volume_rating(louder, REF) == pytest.approx(0.0, abs=1e-6)
  assert dtw_lib.dtw_rhythm_rating(STRETCHED, REF) == pytest.approx(0.0,
                                                                    abs=1e-2)
  one_onset = contours_lib.Contours(REF.f0_hz, HOP, REF.energy_db,
                                    np.array([0.3]))
  assert dtw_lib.dtw_rhythm_rating(one_onset, REF) == -1.0


def test_dtw_needs_the_contours_it_compares():
  f0_only = contours_lib.contours_from_f0(np.arange(100) * HOP,
                                          np.full(100, 220.0))
  with pytest.raises(ValueError, match="energy"):
    dtw_lib.dtw_volume_rating(f0_only, REF)
  with pytest.raises(ValueError, match="onsets"):
    dtw_lib.dtw_rhythm_rating(f0_only, REF)
  assert dtw_lib.dtw_pitch_rating(f0_only, REF) < 0


# ---- audio: contours, cache, score_baselines -----------------------------


def tone_melody(notes, note_s=0.3, shift=0.0):
  return np.concatenate([signals.harmonic_tone(m + shift, note_s)
                         for m in notes])


def test_extract_contours_from_audio():
  audio = tone_melody([57, 60, 64, 60])
  c = contours_lib.extract_contours(audio, capacity="tiny")
  assert c.n_frames == 1 + len(audio) // contours_lib.HOP_LENGTH
  assert c.energy_db.shape == c.f0_hz.shape == c.confidence.shape
  assert c.voiced.mean() > 0.8
  mid = c.f0_hz[5:25]  # inside the first note (A3 = 220 Hz).
  np.testing.assert_allclose(np.median(mid), 220.0, rtol=0.01)
  assert len(c.onsets_s) >= 2


def test_cache_reuses_contours(tmp_path, monkeypatch):
  path = str(tmp_path / "a.wav")
  sf.write(path, tone_melody([60, 64]), signals.SR)
  calls = []
  real = contours_lib.extract_contours

  def counting(audio, **kw):
    calls.append(1)
    return real(audio, **kw)

  monkeypatch.setattr(contours_lib, "extract_contours", counting)
  cache_dir = str(tmp_path / "cache")
  first, hit1 = cache_lib.cached_contours(path, cache_dir)
  second, hit2 = cache_lib.cached_contours(path, cache_dir)
  assert (hit1, hit2) == (False, True) and len(calls) == 1
  np.testing.assert_array_equal(first.f0_hz, second.f0_hz)
  np.testing.assert_array_equal(first.onsets_s, second.onsets_s)
  assert [f for f in os.listdir(cache_dir) if f.startswith(".tmp")] == []


def write_manifest(tmp_path):
  """One song: reference, a good singer, a detuned one, a 2-phrase one, a
  corrupt file and a silent file."""
  notes = [57, 60, 64, 62, 60, 57, 64, 67]
  audio = {
      "ref": tone_melody(notes),
      "good": tone_melody(notes, 0.36),  # slower, same notes.
      "bad": np.concatenate([tone_melody(notes[:4]),
                             tone_melody(notes[4:], shift=2.5)]),
      "phrase1": tone_melody(notes[:4]),
      "phrase2": tone_melody(notes[4:]),
      "silent": np.zeros(8000, np.float32),
  }
  for name, y in audio.items():
    sf.write(str(tmp_path / f"{name}.wav"), y, signals.SR)
  (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wav file")
  header = ("song_id,performance_id,performance_audio,reference_audio,"
            "accompaniment_audio,score,judge_scores,split\n")
  rows = [("good", "good.wav", "ref.wav", 90), ("bad", "bad.wav", "ref.wav", 20),
          ("phr", "phrase1.wav", "ref.wav", 80),
          ("phr", "phrase2.wav", "ref.wav", 80),
          ("corrupt", "corrupt.wav", "ref.wav", 50),
          ("silent", "silent.wav", "ref.wav", 50),
          ("missing", "missing.wav", "ref.wav", 50)]
  text = header + "".join(f"s1,{p},{a},{r},,{s},,test\n" for p, a, r, s in rows)
  path = tmp_path / "manifest.csv"
  path.write_text(text)
  return str(path)


def test_score_baselines_on_a_tiny_manifest(tmp_path):
  manifest = write_manifest(tmp_path)
  cache_dir = str(tmp_path / "cache")
  lines = []
  names = list(baselines.names.REFERENCE_USED)
  out = baselines.score_baselines(manifest, names, cache_dir=cache_dir,
                                  log=lines.append)
  assert set(out) == set(names)
  for name in names:
    ids = [s.performance_id for s in out[name]]
    assert ids == ["good", "bad", "phr"], (name, ids)
    assert all(s.song_id == "s1" and np.isfinite(s.predicted) for s in out[name])
  by = {n: {s.performance_id: s for s in out[n]} for n in names}
  assert by["dtw_pitch"]["good"].human == 90.0
  assert by["dtw_pitch"]["good"].predicted > by["dtw_pitch"]["bad"].predicted
  log = "\n".join(lines)
  for bad in ("corrupt", "silent", "missing.wav"):
    assert bad in log, log
  assert "3 of 5 performances scored, 2 skipped" in log
  # A rerun reads every contour from the cache.
  lines.clear()
  again = baselines.score_baselines(manifest, ["dtw_pitch", "binning"],
                                    split="test", cache_dir=cache_dir,
                                    log=lines.append)
  assert "0 computed" in lines[-1], lines[-1]
  assert [s.predicted for s in again["dtw_pitch"]] == [
      s.predicted for s in out["dtw_pitch"]]
  assert baselines.score_baselines(manifest, ["binning"], split="train",
                                   cache_dir=cache_dir, log=lines.append) == {
                                       "binning": []}


def test_score_baselines_rejects_unknown_names_and_splits(tmp_path):
  with pytest.raises(ValueError, match="unknown baseline"):
    baselines.score_baselines("x.csv", ["nope"], cache_dir=str(tmp_path))
  with pytest.raises(ValueError, match="split"):
    baselines.score_baselines("x.csv", ["binning"], split="dev",
                              cache_dir=str(tmp_path))


def test_baselines_table_labels():
  assert list(baselines.names.REFERENCE_USED) == [
      "kurtosis", "skewness", "peakBW", "peakConc50", "peakConc110", "kMeans",
      "binning", "dtw_pitch", "dtw_volume", "dtw_rhythm", "dtw_melody"]
  assert all(baselines.names.REFERENCE_USED[n] == "None"
             for n in baseline_names.HISTOGRAM)
  assert baselines.names.REFERENCE_USED["dtw_pitch"] == "Original Track f0"
