"""Praat pitch for the scoring path (asa_jax.features.praat_pitch; issue 20, part 1)."""

import numpy as np
import pytest

from asa_jax.assess import refcache
from asa_jax.baselines import contours as contours_lib
from asa_jax.features import praat_pitch
from tests import signals


def cents(a, b):
  return 1200.0 * np.log2(np.asarray(a, np.float64) / np.asarray(b, np.float64))


def test_fold_octave_outliers_moves_whole_octaves_only():
  f0 = np.full(41, 200.0)
  f0[10], f0[20], f0[30] = 400.0, 100.0, 300.0  # up, down an octave; a fifth.
  f0[35] = 0.0
  got = praat_pitch.fold_octave_outliers(f0)
  np.testing.assert_allclose(got[[10, 20]], 200.0)
  assert got[30] == 300.0  # 702 cents: not within 300 of an octave.
  assert got[35] == 0.0  # unvoiced stays unvoiced.
  np.testing.assert_array_equal(np.delete(got, [10, 20]), np.delete(f0, [10, 20]))


def test_fold_octave_outliers_keeps_a_held_octave_leap():
  # A sung octave leap held longer than the window is music, not an error.
  f0 = np.concatenate([np.full(30, 200.0), np.full(30, 400.0)])
  np.testing.assert_array_equal(praat_pitch.fold_octave_outliers(f0, window=10), f0)


def test_fill_unvoiced_interpolates_in_log_frequency_and_holds_the_ends():
  f0 = np.array([0.0, 200.0, 0.0, 400.0, 0.0, 0.0])
  got = praat_pitch.fill_unvoiced(f0)
  np.testing.assert_allclose(got, [200.0, 200.0, 200.0 * 2 ** 0.5, 400.0, 400.0, 400.0])
  np.testing.assert_array_equal(praat_pitch.fill_unvoiced(np.zeros(4)), np.zeros(4))


def test_praat_f0_tracks_tones_and_calls_silence_unvoiced():
  sr, hop = signals.SR, 160
  audio = np.concatenate([signals.harmonic_tone(57, 0.6),       # A3, 220 Hz
                          np.zeros(int(0.6 * sr), np.float32),
                          signals.harmonic_tone(64, 0.6)])      # E4, 329.6 Hz
  f0, voiced = praat_pitch.praat_f0(audio, sample_rate=sr, hop_length=hop)
  assert f0.shape == voiced.shape == (1 + len(audio) // hop,)
  assert f0.dtype == np.float32 and voiced.dtype == bool
  t = np.arange(len(f0)) * hop / sr
  first, gap, second = (t > 0.1) & (t < 0.5), (t > 0.75) & (t < 1.05), (t > 1.3) & (t < 1.7)
  assert voiced[first].all() and voiced[second].all() and not voiced[gap].any()
  assert np.abs(cents(f0[first], 220.0)).max() < 10
  assert np.abs(cents(f0[second], 440.0 * 2 ** (-5 / 12))).max() < 10
  # Unvoiced frames still carry a guess between the neighbouring notes.
  assert (f0[gap] >= 219.0).all() and (f0[gap] <= 330.0).all()


def test_praat_f0_on_silence_and_on_audio_too_short_for_praat():
  for audio in (np.zeros(16000, np.float32), signals.harmonic_tone(60, 0.02)):
    f0, voiced = praat_pitch.praat_f0(audio)
    assert len(f0) == 1 + len(audio) // 160
    assert not voiced.any() and not f0.any()


def test_praat_f0_rejects_bad_input():
  with pytest.raises(ValueError, match="audio must be"):
    praat_pitch.praat_f0(np.zeros((2, 1600), np.float32))
  with pytest.raises(ValueError, match="hop_length"):
    praat_pitch.praat_f0(np.zeros(1600, np.float32), hop_length=0)


def test_extract_contours_with_the_praat_tracker():
  audio = np.concatenate([signals.harmonic_tone(57, 0.6),
                          np.zeros(int(0.6 * signals.SR), np.float32),
                          signals.harmonic_tone(64, 0.6)]).astype(np.float32)
  c = contours_lib.extract_contours(audio, tracker="praat")
  assert c.n_frames == 1 + len(audio) // contours_lib.HOP_LENGTH
  assert len(c.energy_db) == c.n_frames and c.onsets_s is not None
  # The confidence is Praat's voicing; the contour is 0 Hz where unvoiced.
  assert set(np.unique(c.confidence)) <= {0.0, 1.0}
  np.testing.assert_array_equal(c.voiced, (c.confidence == 1.0) & (
      c.energy_db >= c.energy_db.max() - contours_lib.VOICING_RANGE_DB))
  t = np.arange(c.n_frames) * c.hop_s
  assert not c.voiced[(t > 0.75) & (t < 1.05)].any()
  assert np.abs(cents(c.f0_hz[(t > 0.1) & (t < 0.5)], 220.0)).max() < 10


def test_extract_contours_rejects_an_unknown_tracker_and_a_praat_network_hop():
  audio = signals.harmonic_tone(60, 0.2)
  with pytest.raises(ValueError, match="tracker"):
    contours_lib.extract_contours(audio, tracker="yin")
  with pytest.raises(ValueError, match="praat"):
    contours_lib.extract_contours(audio, tracker="praat", network_hop=320)


def test_tracker_is_in_the_reference_cache_key_only_when_not_crepe():
  base = refcache.contour_settings("extract_contours", "tiny", 160)
  assert refcache.contour_settings("extract_contours", "tiny", 160, None, "crepe") == base
  praat = refcache.contour_settings("extract_contours", "tiny", 160, None, "praat")
  assert praat["tracker"] == "praat"
  assert refcache.settings_fingerprint(praat) != refcache.settings_fingerprint(base)


def test_the_contour_cache_keys_the_tracker_only_when_not_crepe(tmp_path):
  from asa_jax.baselines import cache as cache_lib  # pylint: disable=g-import-not-at-top
  wav = tmp_path / "a.wav"
  wav.write_bytes(b"0")
  base = cache_lib.cache_path(str(wav), str(tmp_path), "tiny")
  assert cache_lib.cache_path(str(wav), str(tmp_path), "tiny", "crepe") == base
  assert cache_lib.cache_path(str(wav), str(tmp_path), "tiny", "praat") != base
