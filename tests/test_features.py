"""Tests for the 5-channel clip representation (paper 3.1) and the key shift."""

import numpy as np
import pytest

from asa_jax.features import chroma as chroma_lib
from asa_jax.features import constants
from asa_jax.features import extract
from asa_jax.features import keyshift
from asa_jax.features import logmel
from asa_jax.features import tempogram

SR = constants.SAMPLE_RATE
N = constants.CLIP_SAMPLES
NON_F0 = ("spec", "chroma", "tchroma", "tempo")


def _tone(freq, amp=0.3, n=N):
  t = np.arange(n) / SR
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _midi_hz(m):
  return 440.0 * 2.0 ** ((m - 69) / 12)


def _chord(midis, amp=0.2):
  return sum(_tone(_midi_hz(m), amp) for m in midis).astype(np.float32)


def _clicks(bpm, n=N, offset=0.1, seed=0):
  """Decaying noise bursts every 60 / bpm seconds."""
  rng = np.random.default_rng(seed)
  x = np.zeros(n, np.float32)
  t = offset
  while t < n / SR:
    i = int(t * SR)
    length = min(400, n - i)
    x[i:i + length] += (0.5 * rng.standard_normal(length)
                        * np.exp(-np.arange(length) / 80.0))
    t += 60.0 / bpm
  return x


def _pc_of_row(r):
  return r // 8


# --- Shapes, dtypes, extract_features --------------------------------------


def test_all_channels_shapes_dtypes_and_f0_with_real_crepe():
  clips = np.stack([_tone(440.0), np.zeros(N, np.float32),
                    0.1 * np.random.default_rng(0).standard_normal(N)
                    ]).astype(np.float32)
  feats = extract.extract_features(clips, crepe_capacity="tiny")
  assert feats.shape == (3,) + constants.FEATURE_SHAPE == (3, 5, 96, 94)
  assert feats.dtype == np.float32
  assert np.all(np.isfinite(feats))
  f0 = feats[:, constants.CHANNELS.index("f0")]
  # A4 = MIDI 69 sits on row 2 * (69 - 36) = 66 of the C2-based f0 rows.
  assert np.argmax(f0[0].mean(axis=-1)) == 66
  assert f0[0].max() > 0.5
  for name in ("chroma", "tchroma", "f0", "tempo"):
    ch = feats[:, constants.CHANNELS.index(name)]
    assert ch.min() >= 0.0 and ch.max() <= 1.0 + 1e-5, name


def test_extract_calls_crepe_once_for_the_whole_batch(monkeypatch):
  from asa_jax.features import crepe
  calls = []

  def fake_activation(audio, *, capacity, hop_length, center):
    calls.append((audio.shape, capacity, hop_length, center))
    act = np.zeros((audio.shape[0], 1 + audio.shape[1] // hop_length, 360),
                   np.float32)
    act[..., 100] = 1.0
    return act

  monkeypatch.setattr(crepe, "crepe_activation", fake_activation)
  clips = np.zeros((4, N), np.float32)
  feats = extract.extract_features(clips, channels=("f0",),
                                   crepe_capacity="full")
  assert calls == [((4, N), "full", 512, True)]
  assert feats.shape == (4, 1, 96, 94)
  expected = crepe.crepe_to_96(np.eye(360, dtype=np.float32)[100])
  np.testing.assert_allclose(feats[0, 0, :, 5], expected, atol=1e-6)


def test_channel_subset_order_and_batch_independence():
  rng = np.random.default_rng(1)
  clips = np.stack([_chord([60, 64, 67]), _clicks(100),
                    _tone(200.0) + 0.01 * rng.standard_normal(N)]
                   ).astype(np.float32)
  full = extract.extract_features(clips, channels=NON_F0)
  sub = extract.extract_features(clips, channels=("tempo", "spec"))
  np.testing.assert_array_equal(sub[:, 0], full[:, 3])
  np.testing.assert_array_equal(sub[:, 1], full[:, 0])
  # A clip's features do not depend on the other clips in the batch.
  alone = extract.extract_features(clips[1:2], channels=NON_F0)
  np.testing.assert_allclose(alone[0], full[1], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("bad, words", [
    (np.zeros((2, 47999), np.float32), "(B, 48000)"),
    (np.zeros((48000,), np.float32), "(B, 48000)"),
    (np.zeros((2, 48000), np.int16), "dtype int16"),
    (np.full((1, 48000), np.nan, np.float32), "NaN"),
])
def test_extract_rejects_bad_input(bad, words):
  with pytest.raises(ValueError) as info:
    extract.extract_features(bad, channels=("spec",))
  assert words in str(info.value)


def test_extract_rejects_bad_channels_and_capacity():
  clips = np.zeros((1, N), np.float32)
  with pytest.raises(ValueError, match="channels"):
    extract.extract_features(clips, channels=("spec", "mfcc"))
  with pytest.raises(ValueError, match="channels"):
    extract.extract_features(clips, channels="spec")
  with pytest.raises(ValueError, match="crepe_capacity"):
    extract.extract_features(clips, crepe_capacity="large")


def test_extract_float64_and_empty_batch():
  x64 = _tone(300.0)[None].astype(np.float64)
  out = extract.extract_features(x64, channels=("spec",))
  assert out.dtype == np.float32 and out.shape == (1, 1, 96, 94)
  empty = extract.extract_features(np.zeros((0, N), np.float32),
                                   channels=("spec", "f0"))
  assert empty.shape == (0, 2, 96, 94)


def test_clip_at():
  audio = np.arange(100_000, dtype=np.float32)
  clip = extract.clip_at(audio, 1.0)
  assert clip.shape == (N,) and clip.dtype == np.float32
  assert clip[0] == 16000 and clip[-1] == 16000 + N - 1
  tail = extract.clip_at(audio, 5.0)  # 80000 .. 100000 then zeros
  assert tail[19_999] == 99_999 and np.all(tail[20_000:] == 0)
  assert np.all(extract.clip_at(audio, 10.0) == 0)
  assert extract.clip_at(audio, 0.00003)[0] == 0  # rounds to sample 0
  with pytest.raises(ValueError, match="start_seconds must be finite and >= 0; got -0.5"):
    extract.clip_at(audio, -0.5)
  with pytest.raises(ValueError, match=r"audio must be a 1D \(n,\) array; got shape \(1, "):
    extract.clip_at(audio[None], 0.0)


# --- Log-mel (3.1 i) --------------------------------------------------------


def test_logmel_shape_loudness_and_silence():
  clips = np.stack([_tone(440.0, 0.05), _tone(440.0, 0.5),
                    np.zeros(N, np.float32)])
  s = logmel.log_mel(clips)
  assert s.shape == (3, 96, 94) and s.dtype == np.float32
  # No per-clip normalisation: 10x amplitude = +20 dB in every band with energy.
  band = np.argmax(s[1].mean(-1))
  np.testing.assert_allclose(s[1, band] - s[0, band], 20.0, atol=0.1)
  assert s[1].max() > s[0].max() + 19.0
  # Silence is the finite floor.
  assert np.all(s[2] == logmel.FLOOR_DB) and logmel.FLOOR_DB == -100.0
  # The 440 Hz band is in the lower part of the mel axis, rows increase in Hz.
  low = logmel.log_mel(_tone(200.0))
  assert np.argmax(low.mean(-1)) < band


# --- Chroma and TChroma (3.1 ii, iii) ---------------------------------------


def test_circle_of_fifths_order():
  assert chroma_lib.FIFTHS_ORDER == (0, 7, 2, 9, 4, 11, 6, 1, 8, 3, 10, 5)
  names = [chroma_lib.PITCH_CLASS_NAMES[p] for p in chroma_lib.FIFTHS_ORDER]
  assert names == ["C", "G", "D", "A", "E", "B", "F#", "C#", "G#", "D#", "A#",
                   "F"]
  # tchroma block i holds pitch class FIFTHS_ORDER[i], 8 rows each.
  marker = np.repeat(np.arange(12), 8)[:, None].astype(np.float32)
  t = chroma_lib.chroma_to_tchroma(marker)[:, 0]
  np.testing.assert_array_equal(t, np.repeat(chroma_lib.FIFTHS_ORDER, 8))


def test_chroma_of_a440_peaks_at_a_rows():
  c = chroma_lib.chroma(_tone(440.0))
  assert c.shape == (96, 94) and c.dtype == np.float32
  profile = c[:, 10:-10].mean(-1)
  top = np.flatnonzero(profile == profile.max())
  np.testing.assert_array_equal(top, np.arange(72, 80))  # A = class 9
  t = chroma_lib.tchroma(_tone(440.0))
  tprofile = t[:, 10:-10].mean(-1)
  np.testing.assert_array_equal(np.flatnonzero(tprofile == tprofile.max()),
                                np.arange(24, 32))  # A is 4th in fifths order
  np.testing.assert_array_equal(t, chroma_lib.chroma_to_tchroma(c))


def test_chroma_of_triad_and_silence():
  c = chroma_lib.chroma12(_chord([60, 64, 67]))  # C E G
  strongest = set(np.argsort(c[:, 10:-10].mean(-1))[-3:].tolist())
  assert strongest == {0, 4, 7}
  silent = chroma_lib.chroma(np.zeros((2, N), np.float32))
  assert np.all(np.isfinite(silent)) and np.all(silent == 0)


def test_chroma_batch_has_no_shared_tuning():
  # A quarter-tone sharp clip next to an in-tune one must not shift the latter.
  in_tune = _tone(440.0)
  sharp = _tone(440.0 * 2 ** (0.5 / 12))
  both = chroma_lib.chroma(np.stack([in_tune, sharp]))
  np.testing.assert_allclose(both[0], chroma_lib.chroma(in_tune), atol=1e-5)


# --- Cyclic tempogram (3.1 v) -----------------------------------------------


def _tempo_peak(bpms):
  c = tempogram.cyclic_tempogram(np.stack([_clicks(b) for b in bpms]))
  assert c.shape == (len(bpms), 96, 94) and c.dtype == np.float32
  return [int(np.argmax(x.mean(-1))) for x in c]


def _cyclic_distance(a, b):
  d = abs(a - b) % 96
  return min(d, 96 - d)


def test_cyclic_tempogram_folds_octaves():
  p60, p120, p90, p75, p150 = _tempo_peak([60, 120, 90, 75, 150])
  assert p60 == p120  # tempo octaves fold together
  # 150 BPM = 12.5 frames per beat: onsets quantised to frames jitter by 1 row.
  assert _cyclic_distance(p75, p150) <= 1
  # Row j is the class of 60 * 2^(j / 96) BPM: 60/120 -> 0, 90 -> 56, 75 -> 31.
  assert _cyclic_distance(p60, 0) <= 2
  assert _cyclic_distance(p90, 56) <= 2
  assert _cyclic_distance(p75, 31) <= 2
  assert _cyclic_distance(p60, p90) >= 30
  np.testing.assert_allclose(tempogram.tempo_classes_bpm()[[0, 48]],
                             [60.0, 60 * 2 ** 0.5])


def test_cyclic_tempogram_silence_and_steady_tone():
  c = tempogram.cyclic_tempogram(np.stack([np.zeros(N, np.float32),
                                           _tone(440.0), _clicks(120)]))
  assert np.all(np.isfinite(c))
  assert np.all(c[0] == 0)
  assert c[1].max() < 0.5  # no rhythm: not blown up to 1
  np.testing.assert_allclose(c[2].max(axis=0), 1.0, atol=1e-5)


# --- Key shift ---------------------------------------------------------------


def _triad_chroma(root):
  c12 = np.zeros((12, 94), np.float32)
  c12[[root % 12, (root + 4) % 12, (root + 7) % 12]] = 1.0
  return chroma_lib.expand_chroma(c12)


def _stack(chroma96, f0=None, spec=None):
  f0 = np.zeros((96, 94), np.float32) if f0 is None else f0
  spec = np.zeros((96, 94), np.float32) if spec is None else spec
  tempo = np.full((96, 94), 0.5, np.float32)
  return np.stack([spec, chroma96, chroma_lib.chroma_to_tchroma(chroma96), f0,
                   tempo])


def test_keyshift_c_major_to_d_major():
  c_major = _stack(_triad_chroma(0))
  d_major = _stack(_triad_chroma(2))
  np.testing.assert_array_equal(keyshift.shift_pitch_channels(c_major, 2),
                                d_major)
  # Wrap-around in pitch class: B major + 1 = C major; 12 semitones = identity.
  np.testing.assert_array_equal(
      keyshift.shift_pitch_channels(_stack(_triad_chroma(11)), 1), c_major)
  np.testing.assert_array_equal(keyshift.shift_pitch_channels(c_major, 12),
                                c_major)
  np.testing.assert_array_equal(keyshift.shift_pitch_channels(d_major, -2),
                                c_major)
  # Floats are rounded.
  np.testing.assert_array_equal(keyshift.shift_pitch_channels(c_major, 1.6),
                                d_major)


def test_keyshift_real_chroma_matches_transposed_audio():
  feats = extract.extract_features(
      np.stack([_chord([60, 64, 67]), _chord([62, 66, 69])]),
      channels=("chroma", "tchroma"))
  shifted = keyshift.shift_pitch_channels(feats[0], 2, ("chroma", "tchroma"))
  for ch in range(2):
    top_shifted = set(np.argsort(shifted[ch].mean(-1))[-24:] // 8)
    top_d = set(np.argsort(feats[1, ch].mean(-1))[-24:] // 8)
    assert top_shifted == top_d


def test_keyshift_f0_rows_and_roundtrip():
  rng = np.random.default_rng(0)
  f0 = rng.uniform(size=(96, 94)).astype(np.float32)
  spec = rng.normal(size=(96, 94)).astype(np.float32)
  x = _stack(_triad_chroma(0), f0=f0, spec=spec)[None]  # (1, 5, 96, 94)
  for k in (1, 3, -5):
    up = keyshift.shift_pitch_channels(x, k)
    assert up.shape == x.shape and up.dtype == x.dtype
    r = 2 * k
    if r > 0:
      np.testing.assert_array_equal(up[0, 3, r:], f0[:-r])
      assert np.all(up[0, 3, :r] == 0)
    else:
      np.testing.assert_array_equal(up[0, 3, :r], f0[-r:])
      assert np.all(up[0, 3, r:] == 0)
    back = keyshift.shift_pitch_channels(up, -k)
    keep = slice(2 * abs(k), 96 - 2 * abs(k))
    if k > 0:
      np.testing.assert_array_equal(back[0, 3, :96 - r], f0[:96 - r])
    else:
      np.testing.assert_array_equal(back[0, 3, -r:], f0[-r:])
    np.testing.assert_array_equal(back[0, 3, keep], f0[keep])
    np.testing.assert_array_equal(back[0, :3], x[0, :3])  # spec, chroma, tchroma
    np.testing.assert_array_equal(up[0, 0], spec)  # non-pitch untouched
    np.testing.assert_array_equal(up[0, 4], x[0, 4])


def test_keyshift_tchroma_is_rederived_and_subset_channels():
  x = _stack(_triad_chroma(5))
  for k in range(-13, 14):
    y = keyshift.shift_pitch_channels(x, k)
    np.testing.assert_array_equal(y[2], chroma_lib.chroma_to_tchroma(y[1]))
  only_t = keyshift.shift_pitch_channels(x[2:3], 3, ("tchroma",))
  np.testing.assert_array_equal(
      only_t[0], keyshift.shift_pitch_channels(x, 3)[2])
  with pytest.raises(ValueError, match="channels"):
    keyshift.shift_pitch_channels(x[:2], 1)
  assert keyshift.shift_pitch_channels(x, 0) is not x
