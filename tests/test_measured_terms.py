"""Measured terms (issue 18, section 5) on synthetic contours with known answers.

Contours are built on the 10 ms grid from note lists; no audio except one short
synthetic tone for the Praat voice-quality terms.
"""

import numpy as np
import pytest

from asa_jax.baselines import measured_terms as mt
from asa_jax.baselines import names
from asa_jax.baselines import score as score_lib
from asa_jax.baselines import voice_quality
from asa_jax.features import aligned_contour as ac_lib

HOP = 0.01
NOTES = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 62]
DURS = [0.5, 0.4, 0.6, 0.4, 0.8, 0.4, 0.5, 0.4, 0.9, 0.4, 0.5, 0.8, 0.4, 0.6,
        0.4, 0.8]


def f0(*, detune=None, durs=None, drift_cents=0.0, jitter=1.0, vibrato=None,
       shift=0.0, seed=0, gap_s=0.04):
  """Hz on the 10 ms grid; detune: cents per note; vibrato: (Hz, cents)."""
  rng = np.random.default_rng(seed)
  durs = DURS if durs is None else durs
  total = sum(durs) + gap_s * len(durs)
  out, t0 = [], 0.0
  for i, (m, d) in enumerate(zip(NOTES, durs)):
    n = int(round(d / HOP))
    t = t0 + np.arange(n) * HOP
    c = 100.0 * (m + shift - 69) + (0.0 if detune is None else detune[i])
    c = c + drift_cents * t / total + jitter * rng.standard_normal(n)
    if vibrato:
      c = c + vibrato[1] * np.sin(2 * np.pi * vibrato[0] * np.arange(n) * HOP)
    out += [440.0 * 2 ** (c / 1200.0), np.zeros(int(round(gap_s / HOP)))]
    t0 += d + gap_s
  return np.concatenate(out)


def terms(perf, ref=None, **kw):
  a = ac_lib.aligned_contour(perf, f0(seed=99) if ref is None else ref)
  return mt.measured_terms(a, **kw)


def test_a_clean_copy_in_another_key_scores_near_zero_error():
  t = terms(f0(shift=-4.0, seed=1))
  assert t["intonation_cents"] < 5 and t["interval_cents"] < 5
  assert t["wrong_notes"] == 0 and t["key_drift_cents"] < 10
  assert t["onset_deviation_ms"] < 15 and t["missing_fraction"] < 0.05
  assert t["tempo_ratio"] == pytest.approx(1.0, abs=0.03)
  assert np.isnan(t["dynamic_range_db"])  # no energy given.


def test_intonation_interval_and_wrong_notes_known_answers():
  detune = np.array([40.0, -40.0] * 8)  # every note 40 cents off, alternating.
  t = terms(f0(detune=detune, seed=1))
  assert t["intonation_cents"] == pytest.approx(40.0, abs=6.0)
  assert t["interval_cents"] == pytest.approx(80.0, abs=10.0)  # each step 80 off.
  assert t["wrong_notes"] == 0.0  # 40 < WRONG_NOTE_CENTS.
  wrong = np.zeros(16)
  wrong[[2, 6, 10, 14]] = 150.0  # four notes 1.5 semitones sharp.
  t = terms(f0(detune=wrong, seed=1))
  assert t["wrong_notes"] == pytest.approx(4 / 16, abs=1 / 16)


def test_a_note_error_counts_at_most_the_cap():
  """A note 5 semitones off weighs as a note NOTE_CAP_CENTS off: the jury hears a
  wrong note, not how far wrong (the cap was chosen on MAST's grades)."""
  far, near = np.zeros(16), np.zeros(16)
  far[[2, 10]] = 500.0
  near[[2, 10]] = mt.NOTE_CAP_CENTS
  t_far, t_near = terms(f0(detune=far, seed=1)), terms(f0(detune=near, seed=1))
  assert t_far["intonation_cents"] == pytest.approx(2 * mt.NOTE_CAP_CENTS / 16, abs=4.0)
  assert t_far["intonation_cents"] == pytest.approx(t_near["intonation_cents"], abs=2.0)
  assert t_far["interval_cents"] == pytest.approx(t_near["interval_cents"], abs=4.0)


def test_key_drift_is_the_cents_moved_over_the_performance():
  t = terms(f0(drift_cents=200.0, seed=1))
  assert t["key_drift_cents"] == pytest.approx(200.0, rel=0.2)
  assert terms(f0(seed=1))["key_drift_cents"] < 20.0


def test_pitch_stability_measures_jitter_within_notes():
  calm = terms(f0(jitter=1.0, seed=1))["pitch_stability_cents"]
  shaky = terms(f0(jitter=12.0, seed=1))["pitch_stability_cents"]
  assert calm < 2.0
  assert shaky == pytest.approx(12.0 * np.sqrt(1 - 59 / 231), rel=0.2)  # savgol 9/2.


def test_vibrato_rate_and_extent():
  t = terms(f0(vibrato=(5.5, 50.0), seed=1))
  assert t["vibrato_rate_hz"] == pytest.approx(5.5, abs=0.4)
  assert t["vibrato_extent_cents"] == pytest.approx(50.0, rel=0.2)
  assert terms(f0(seed=1))["vibrato_extent_cents"] < 10.0


def test_rhythm_onsets_after_global_tempo_and_tempo_ratio():
  slow = terms(f0(durs=[1.3 * d for d in DURS], gap_s=0.052, seed=1))
  assert slow["tempo_ratio"] == pytest.approx(1.3, abs=0.05)
  assert slow["onset_deviation_ms"] < 20.0  # a uniform tempo change is not a rhythm error.
  durs = list(DURS)
  for i in range(0, 16, 2):  # every other onset 150 ms late, the next note shorter.
    durs[i] += 0.15
    durs[i + 1] -= 0.15
  shifted = terms(f0(durs=durs, seed=1))
  assert shifted["onset_deviation_ms"] > 40.0
  assert shifted["tempo_variance_pct"] > slow["tempo_variance_pct"]


def test_dynamic_range_from_energy():
  perf = f0(seed=1)
  db = np.where(np.arange(len(perf)) % 100 < 50, -10.0, -30.0)
  t = terms(perf, perf_energy_db=db)
  assert t["dynamic_range_db"] == pytest.approx(20.0, abs=0.5)


def test_ratings_are_higher_for_better_singing():
  good = terms(f0(seed=1))
  bad = terms(f0(detune=np.array([60.0, -60.0] * 8), seed=1))
  for name in ("intonation_cents", "interval_cents", "deviation_p90_cents"):
    assert mt.rating(name, good[name]) > mt.rating(name, bad[name])
  assert mt.rating("tempo_ratio", 1.0) > mt.rating("tempo_ratio", 0.5)
  assert mt.rating("tempo_ratio", 2.0) == mt.rating("tempo_ratio", 0.5)


def test_voice_quality_of_a_clean_and_a_noisy_tone():
  sr = 16000
  t = np.arange(sr) / sr
  phase = 2 * np.pi * 220.0 * t
  tone = 0.1 * sum(np.sin(k * phase) / k for k in range(1, 8))
  noise = np.random.default_rng(0).standard_normal(sr)
  clean = voice_quality.voice_quality(tone + 1e-4 * noise)
  noisy = voice_quality.voice_quality(tone + 0.05 * noise)
  assert clean["hnr_db"] > noisy["hnr_db"] + 10
  assert clean["cpp_db"] > noisy["cpp_db"]
  assert clean["jitter_pct"] < 0.5 and clean["shimmer_pct"] < 2.0
  with pytest.raises(ValueError, match="1-D"):
    voice_quality.voice_quality(np.zeros((2, 100)))


def test_terms_are_baselines_by_name():
  assert names.MEASURED == tuple(mt.TERMS)
  assert names.VOICE_QUALITY == tuple(voice_quality.TERMS)
  for name in names.MEASURED + names.VOICE_QUALITY:
    assert name in score_lib.NAMES and names.GROUPS[name] == "Measured"
    assert name not in names.ALL  # Table 2 is unchanged.
  rate = score_lib.rating_function("intonation_cents")
  from asa_jax.baselines import contours as contours_lib
  perf = contours_lib.Contours(f0_hz=f0(seed=1).astype(np.float32))
  ref = contours_lib.Contours(f0_hz=f0(seed=99).astype(np.float32))
  assert -5.0 < rate(perf, ref) <= 0.0


def test_score_baselines_scores_measured_and_voice_terms_from_a_manifest(tmp_path):
  from tests import test_baselines
  manifest = test_baselines.write_manifest(tmp_path)
  lines = []
  out = score_lib.score_baselines(manifest, ["wrong_notes", "intonation_cents",
                                             "hnr_db"],
                                  cache_dir=str(tmp_path / "cache"),
                                  log=lines.append)
  by = {n: {s.performance_id: s.predicted for s in out[n]} for n in out}
  # The detuned second half (2.5 semitones) loses against the slower in-tune copy.
  assert by["intonation_cents"]["good"] > by["intonation_cents"]["bad"]
  assert by["wrong_notes"]["good"] >= by["wrong_notes"]["bad"]
  assert set(by["hnr_db"]) == {"good", "bad", "phr"}
  assert all(np.isfinite(v) for v in by["hnr_db"].values())
