"""Tests for asa_jax.features.audio.load_audio and AudioError (paper 3.1: 16 kHz)."""

import pathlib

import numpy as np
import pytest
import soundfile as sf

from asa_jax.features import audio
from tests.conftest import require_data

DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _tone(seconds, sr, freq=440.0, amp=0.5):
  t = np.arange(int(round(seconds * sr))) / sr
  return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _assert_audio_error(path, reason_words, **kwargs):
  with pytest.raises(audio.AudioError) as info:
    audio.load_audio(path, **kwargs)
  message = str(info.value)
  assert str(path) in message
  assert any(w in message for w in reason_words), message
  assert isinstance(info.value, ValueError)
  assert info.value.path == str(path)


def test_missing_file(tmp_path):
  _assert_audio_error(tmp_path / "nope.wav", ["not found", "missing"])


def test_directory_is_not_a_file(tmp_path):
  _assert_audio_error(tmp_path, ["not a regular file"])


def test_corrupt_file(tmp_path):
  path = tmp_path / "corrupt.wav"
  path.write_bytes(np.random.default_rng(0).bytes(4096))
  _assert_audio_error(path, ["unreadable", "corrupt", "unknown"])


def test_empty_file_zero_bytes(tmp_path):
  path = tmp_path / "zero_bytes.wav"
  path.write_bytes(b"")
  _assert_audio_error(path, ["unreadable", "empty"])


def test_empty_wav(tmp_path):
  path = tmp_path / "empty.wav"
  sf.write(path, np.zeros((0,), np.float32), 16000)
  _assert_audio_error(path, ["empty"])


def test_silent_wav(tmp_path):
  path = tmp_path / "silent.wav"
  sf.write(path, np.zeros(16000 * 4, np.float32), 16000)
  _assert_audio_error(path, ["silent"], min_seconds=3.0)


def test_too_short_wav(tmp_path):
  path = tmp_path / "short.wav"
  sf.write(path, _tone(1.0, 16000), 16000)
  _assert_audio_error(path, ["too short"], min_seconds=3.0)
  # Without a minimum the same file loads.
  assert audio.load_audio(path).shape == (16000,)


def test_stereo_44k_to_mono_16k(tmp_path):
  path = tmp_path / "stereo.wav"
  left = _tone(2.0, 44100, 440.0, 0.5)
  sf.write(path, np.stack([left, left], axis=1), 44100)
  y = audio.load_audio(path)
  assert y.dtype == np.float32 and y.ndim == 1
  assert abs(y.shape[0] - 32000) <= 2
  spectrum = np.abs(np.fft.rfft(y[1000:17000]))
  peak_hz = np.argmax(spectrum) * 16000 / 16000
  assert abs(peak_hz - 440.0) <= 2.0
  assert 0.45 < np.max(np.abs(y)) < 0.55


def test_int16_wav_scaled_to_full_scale(tmp_path):
  path = tmp_path / "pcm16.wav"
  sf.write(path, _tone(1.0, 16000, amp=0.25), 16000, subtype="PCM_16")
  y = audio.load_audio(path)
  assert np.max(np.abs(y)) == pytest.approx(0.25, abs=1e-3)


def test_ssvd_mp3_loads_at_16k():
  ssvd = DATA_DIR / "ssvd"
  require_data(str(ssvd), "SSVD data")
  mp3s = sorted(ssvd.glob("*/*.mp3"))
  assert mp3s, f"no SSVD mp3 under {ssvd}"
  path = mp3s[0]
  info = sf.info(str(path))
  y = audio.load_audio(path, min_seconds=3.0)
  assert y.dtype == np.float32 and y.ndim == 1
  assert abs(y.shape[0] / 16000 - info.duration) < 0.1
  assert np.max(np.abs(y)) > 1e-3
