"""Key shift of the pitch channels (key alignment for a cappella data).

Not in the paper: its karaoke performances are sung in the reference's key
(section 3.3). For corpora where singers choose their own key (a cappella
sight-singing), `config.data.key_align == 'shift'` moves a performance's pitch
channels by the estimated transposition so that they line up with the
reference; see BUILD_NOTES.md.

Row layouts (constants, paper 3.1): chroma row r -> pitch class r // 8;
tchroma block i -> pitch class FIFTHS_ORDER[i]; f0 row j -> C2 + 50 j cents
(one semitone = 2 rows).
"""

from typing import Sequence, Union

import numpy as np

from asa_jax.features import chroma as chroma_lib
from asa_jax.features import constants

_ROWS = chroma_lib.ROWS_PER_CLASS  # 8
F0_ROWS_PER_SEMITONE = 2


def _roll_rows(x: np.ndarray, rows: int) -> np.ndarray:
  return np.roll(x, rows, axis=-2)


def _shift_rows_zero_fill(x: np.ndarray, rows: int) -> np.ndarray:
  """out[..., r, :] = x[..., r - rows, :], zero where r - rows is out of range."""
  out = np.zeros_like(x)
  n = x.shape[-2]
  if rows >= 0:
    if rows < n:
      out[..., rows:, :] = x[..., :n - rows, :]
  else:
    if -rows < n:
      out[..., :n + rows, :] = x[..., -rows:, :]
  return out


def shift_pitch_channels(features: np.ndarray, semitones: Union[int, float],
                         channels: Sequence[str] = constants.CHANNELS
                         ) -> np.ndarray:
  """Moves the pitch channels of a feature stack UP by `semitones`.

  Args:
    features: array (..., C, 96, T), channel axis ordered as `channels`.
    semitones: transposition in semitones (a float is rounded to the nearest
      integer); positive moves pitch up, negative down.
    channels: channel names of axis -3 (subset/order of constants.CHANNELS).

  Returns:
    A new array, same shape and dtype:
      * 'chroma': rows roll by 8 * semitones (mod 96), cyclic in pitch class
        (pitch class p moves to p + semitones mod 12).
      * 'tchroma': rows roll by 8 * (7 * semitones mod 12): in circle-of-fifths
        order pitch class p sits at block 7p mod 12, so this is exactly the
        circle-of-fifths reordering of the shifted chroma (re-derived; it does
        not need the chroma channel to be present).
      * 'f0': rows move by 2 * semitones (50-cent rows) with zero fill at the
        vacated edge; what moves past the range is dropped.
      * other channels ('spec', 'tempo'): unchanged.

  Raises:
    ValueError: if features.shape[-3] != len(channels), rows != 96, or the
      semitone value is not finite.
  """
  x = np.asarray(features)
  channels = tuple(channels)
  if x.ndim < 3 or x.shape[-3] != len(channels) or x.shape[-2] != constants.N_BINS:
    raise ValueError(
        f"features must have shape (..., {len(channels)}, {constants.N_BINS}, T) "
        f"for channels {channels}; got {x.shape}")
  s = float(semitones)
  if not np.isfinite(s):
    raise ValueError(f"semitones must be finite; got {semitones!r}")
  k = int(np.round(s))
  out = x.copy()
  if k == 0:
    return out
  for i, name in enumerate(channels):
    if name == "chroma":
      out[..., i, :, :] = _roll_rows(x[..., i, :, :], _ROWS * (k % 12))
    elif name == "tchroma":
      out[..., i, :, :] = _roll_rows(x[..., i, :, :], _ROWS * ((7 * k) % 12))
    elif name == "f0":
      out[..., i, :, :] = _shift_rows_zero_fill(
          x[..., i, :, :], F0_ROWS_PER_SEMITONE * k)
  return out
