"""Synthetic test signals shared by the pipeline tests."""

import numpy as np

SR = 16000  # Hz.


def harmonic_tone(midi: float, seconds: float, amp: float = 0.3,
                  harmonics: int = 7) -> np.ndarray:
  """Harmonic tone at MIDI pitch `midi` (1/h amplitudes) with 20 ms fades.

  Returns:
    float32 (round(seconds * 16000),) samples at 16 kHz.
  """
  t = np.arange(int(seconds * SR)) / SR
  f0 = 440.0 * 2 ** ((midi - 69) / 12)
  y = sum(amp / h * np.sin(2 * np.pi * f0 * h * t) for h in range(1, harmonics + 1))
  env = np.minimum(1.0, np.minimum(t / 0.02, (seconds - t) / 0.02))
  return (y * env).astype(np.float32)
