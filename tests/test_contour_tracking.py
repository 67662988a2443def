"""The scoring path's pitch tracking: energy gating and the 20 ms network hop
(asa_jax.baselines.contours.extract_contours, crepe.crepe_f0(active=); issue 20)."""

import numpy as np
import pytest

from asa_jax.assess import refcache
from asa_jax.baselines import contours as contours_lib
from asa_jax.features import crepe
from tests import signals


def tone_silence_tone():
  """0.6 s A3, 0.6 s digital silence, 0.6 s E4 (16 kHz float32)."""
  return np.concatenate([signals.harmonic_tone(57, 0.6),
                         np.zeros(int(0.6 * signals.SR), np.float32),
                         signals.harmonic_tone(64, 0.6)]).astype(np.float32)


def glide(seconds=1.0, start_midi=57.0, end_midi=60.0):
  """A harmonic tone whose pitch moves linearly in cents (16 kHz float32)."""
  t = np.arange(int(seconds * signals.SR)) / signals.SR
  midi = start_midi + (end_midi - start_midi) * t / seconds
  phase = 2 * np.pi * np.cumsum(440.0 * 2.0 ** ((midi - 69.0) / 12.0)) / signals.SR
  x = sum(np.sin(k * phase) / k for k in range(1, 6))
  return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


class CountFrames:
  """Wraps crepe.crepe_frames_activation and counts the frames it is given."""

  def __init__(self, monkeypatch):
    self.frames = 0
    inner = crepe.crepe_frames_activation

    def counted(frames, **kw):
      self.frames += len(frames)
      return inner(frames, **kw)
    monkeypatch.setattr(crepe, "crepe_frames_activation", counted)


def ungated(audio, hop=contours_lib.HOP_LENGTH):
  """extract_contours as it was before the gate (every frame through CREPE)."""
  f0, conf = crepe.crepe_f0(audio, hop_length=hop, capacity="tiny")
  db = contours_lib.energy_db(audio)
  n = min(len(f0), len(db))
  return contours_lib._voiced_contours(  # pylint: disable=protected-access
      f0[:n], conf[:n], db[:n], contours_lib.FRAME_SECONDS, None)


def test_energy_gate_skips_silence_and_keeps_the_contour(monkeypatch):
  audio = tone_silence_tone()
  want = ungated(audio)
  count = CountFrames(monkeypatch)
  got = contours_lib.extract_contours(audio, capacity="tiny")
  quiet = got.energy_db < got.energy_db.max() - contours_lib.VOICING_RANGE_DB
  assert quiet.sum() > 40  # most of the 60 silent frames.
  assert count.frames == got.n_frames - quiet.sum()  # no quiet frame was tracked.
  np.testing.assert_array_equal(got.f0_hz, want.f0_hz)  # exactly the same contour.
  np.testing.assert_array_equal(got.energy_db, want.energy_db)
  assert np.all(got.confidence[quiet] == 0.0)
  np.testing.assert_allclose(got.confidence[~quiet], want.confidence[~quiet],
                             atol=1e-6)
  assert got.voiced[:50].mean() > 0.9 and not got.voiced[quiet].any()


def test_crepe_f0_active_frames_are_those_of_the_full_call():
  audio = signals.harmonic_tone(60, 0.5).astype(np.float32)
  f0_all, conf_all = crepe.crepe_f0(audio, hop_length=160, capacity="tiny")
  active = np.random.default_rng(0).random(len(f0_all)) < 0.5
  f0, conf = crepe.crepe_f0(audio, hop_length=160, capacity="tiny", active=active)
  np.testing.assert_allclose(f0[active], f0_all[active], rtol=1e-6)
  np.testing.assert_allclose(conf[active], conf_all[active], atol=1e-6)
  assert np.all(f0[~active] == 0) and np.all(conf[~active] == 0)
  none_f0, none_conf = crepe.crepe_f0(audio, hop_length=160, capacity="tiny",
                                      active=np.zeros(len(f0_all), bool))
  assert not none_f0.any() and not none_conf.any()
  with pytest.raises(ValueError, match="active must be"):
    crepe.crepe_f0(audio, hop_length=160, capacity="tiny", active=active[:-1])


def test_20ms_network_hop_tracks_every_second_frame_and_interpolates(monkeypatch):
  audio = glide()
  f0_20, conf_20 = crepe.crepe_f0(audio, hop_length=320, capacity="tiny")
  count = CountFrames(monkeypatch)
  got = contours_lib.extract_contours(audio, capacity="tiny", network_hop=320)
  assert got.n_frames == 1 + len(audio) // contours_lib.HOP_LENGTH
  assert count.frames == len(f0_20)  # half the frames (nothing is quiet here).
  even = got.f0_hz[0::2]  # network frames: CREPE's own values.
  voiced = got.voiced[0::2]
  np.testing.assert_allclose(even[voiced], f0_20[:len(even)][voiced], rtol=1e-6)
  # Odd frames between two confident network frames: the mean in cents.
  j = np.arange(1, got.n_frames - 1, 2)
  inside = got.voiced[j] & (conf_20[j // 2] >= 0.5) & (conf_20[j // 2 + 1] >= 0.5)
  assert inside.mean() > 0.9
  mean_cents = np.sqrt(f0_20[j // 2] * f0_20[j // 2 + 1])
  np.testing.assert_allclose(got.f0_hz[j][inside], mean_cents[inside], rtol=1e-5)
  # And the glide is followed: within 20 cents of the 10 ms track everywhere voiced.
  full = ungated(audio)
  both = full.voiced & got.voiced
  assert both.mean() > 0.9
  cents = 1200 * np.abs(np.log2(got.f0_hz[both] / full.f0_hz[both]))
  assert np.median(cents) < 5 and cents.max() < 20


def test_upsampling_never_glides_into_a_gated_frame():
  f0 = np.array([220.0, 0.0, 440.0, 880.0], np.float32)
  conf = np.array([0.9, 0.0, 0.8, 0.6], np.float32)
  out, c = contours_lib._upsample_track(f0, conf, 7, 2)  # pylint: disable=protected-access
  np.testing.assert_allclose(c, [0.9, 0.45, 0.0, 0.4, 0.8, 0.7, 0.6], rtol=1e-6)
  # 1: between a confident frame and a gated one -> the confident one's f0;
  # 3: the same on the other side; 5: both confident -> the mean in cents.
  np.testing.assert_allclose(out, [220, 220, 0, 440, 440, 440 * np.sqrt(2), 880],
                             rtol=1e-6)


@pytest.mark.parametrize("hop", [0, 80, 240, -160])
def test_network_hop_must_be_a_multiple_of_the_frame_hop(hop):
  with pytest.raises(ValueError, match="network_hop"):
    contours_lib.extract_contours(signals.harmonic_tone(60, 0.2), network_hop=hop)


def test_network_hop_is_in_the_reference_cache_key_only_when_it_differs():
  base = refcache.contour_settings("extract_contours", "tiny", 160)
  assert refcache.contour_settings("extract_contours", "tiny", 160, 160) == base
  coarse = refcache.contour_settings("extract_contours", "tiny", 160, 320)
  assert coarse != base and coarse["network_hop"] == 320
  assert (refcache.settings_fingerprint(coarse)
          != refcache.settings_fingerprint(base))
