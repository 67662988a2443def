"""The model input of stored clips, shared by the loader, scoring and the Assessor.

Per clip: float16 -> float32, key alignment (data.key_align 'shift': performance
clips move by -transposition semitones, `shift_pitch_channels`), then channel
selection (features.channels) and normalisation with stats.json.
"""

from __future__ import annotations

import numpy as np

from asa_jax.features import constants


def normalise(x: np.ndarray, stats: dict, channels) -> np.ndarray:
  """Channel selection + per-channel standardisation.

  Args:
    x: (..., 5, 96, 94) features with all constants.CHANNELS in stacking order.
    stats: {"mean": [5], "std": [5], "channels": [5 names]} (stats.json).
    channels: names to keep, in this order.

  Returns:
    float32 (..., len(channels), 96, 94): (x[c] - mean[c]) / std[c].

  Raises:
    ValueError: unknown channel name or x without 5 channels.
  """
  x = np.asarray(x)
  if x.shape[-3] != constants.N_CHANNELS:
    raise ValueError(f"expected (..., {constants.N_CHANNELS}, 96, 94) features,"
                     f" got {x.shape}")
  names = list(stats["channels"])
  try:
    idx = [names.index(c) for c in channels]
  except ValueError:
    raise ValueError(f"channels {list(channels)} not all in {names}") from None
  mean = np.asarray(stats["mean"], np.float32)[idx][:, None, None]
  std = np.asarray(stats["std"], np.float32)[idx][:, None, None]
  return (x[..., idx, :, :].astype(np.float32) - mean) / std


def prepare_clips(x: np.ndarray, stats: dict, config, *,
                  transpositions=None) -> np.ndarray:
  """The model input of stored clips: key shift (if any), channels, normalisation.

  Args:
    x: (B, 5, 96, 94) stored features (any float dtype).
    stats: stats.json dict.
    config: reads features.channels and data.key_align.
    transpositions: (B,) ints (semitones performance minus reference) for
      performance clips; None for reference clips (never shifted).

  Returns:
    float32 (B, len(features.channels), 96, 94).
  """
  x = np.asarray(x, dtype=np.float32)
  if transpositions is not None and config.data.key_align == "shift":
    from asa_jax.features import keyshift  # pylint: disable=g-import-not-at-top
    x = x.copy()
    for i, t in enumerate(np.asarray(transpositions).reshape(-1)):
      if int(t) != 0:
        x[i] = keyshift.shift_pitch_channels(
            x[i], -int(t), channels=constants.CHANNELS)
  elif config.data.key_align not in ("none", "shift"):
    raise ValueError(f"data.key_align must be 'none' or 'shift', not "
                     f"{config.data.key_align!r}")
  return normalise(x, stats, config.features.channels)
