"""Chroma ('chroma') and circle-of-fifths chroma ('tchroma') channels (paper 3.1 ii, iii).

Paper 3.1 (ii): "Chromagram gives us the pitch class profiles for the clips ...
in order to achieve the same dimension (96) with other channels, we give 6 bins
(96 bins / (12 pitch classes)) for each pitch class." 96 / 12 = 8, so each pitch
class is repeated over 8 consecutive rows: row r -> pitch class r // 8
(C, C#, D, ..., B from the bottom row up).

Paper 3.1 (iii): TChroma rearranges the rows by the circle of fifths
(C G D A E B F# C# G# D# A# F = pitch classes `FIFTHS_ORDER`), so block i of 8
rows holds pitch class FIFTHS_ORDER[i].

Choices (recorded in BUILD_NOTES.md):
  * librosa.feature.chroma_cqt (constant-Q, 36 bins per octave, 7 octaves from
    C1 = 32.7 Hz, hop 512): pitch-class energy of the voice is resolved by a
    log-frequency transform much better than by folding a 64-128 ms STFT whose
    bins are 8-16 Hz wide (wider than a semitone below ~250 Hz). It costs ~20 ms
    per clip, which is affordable.
  * tuning=0.0 (A4 = 440 Hz): librosa would otherwise estimate a tuning offset
    per call, which hides a singer's global detuning and, with batched input,
    would make one clip's chroma depend on the other clips of the batch.
  * librosa's per-frame max normalisation (norm=inf): each frame's strongest
    pitch class is 1. Frames with no energy stay all-zero (no NaN).
"""

import numpy as np
import librosa

from asa_jax.features import constants

N_PITCH_CLASSES = 12
ROWS_PER_CLASS = constants.N_BINS // N_PITCH_CLASSES  # 8
PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A",
                     "A#", "B")
# Circle of fifths starting at C: C G D A E B F# C# G# D# A# F.
FIFTHS_ORDER = tuple((7 * i) % 12 for i in range(12))  # (0,7,2,9,4,11,6,1,8,3,10,5)
# Row permutation chroma -> tchroma: tchroma[..., r, :] = chroma[..., TCHROMA_ROWS[r], :].
TCHROMA_ROWS = np.array(
    [FIFTHS_ORDER[r // ROWS_PER_CLASS] * ROWS_PER_CLASS + r % ROWS_PER_CLASS
     for r in range(constants.N_BINS)], dtype=np.int64)


def chroma12(clips: np.ndarray) -> np.ndarray:
  """12-class constant-Q chromagram.

  Args:
    clips: float array (..., n) of 16 kHz audio.

  Returns:
    float32 (..., 12, 1 + n // 512), rows C..B, each frame max-normalised to 1
    (all-zero for frames without energy; never NaN).
  """
  clips = np.asarray(clips, dtype=np.float32)
  c = librosa.feature.chroma_cqt(
      y=clips, sr=constants.SAMPLE_RATE, hop_length=constants.HOP_LENGTH,
      tuning=0.0, norm=np.inf, n_chroma=N_PITCH_CLASSES, bins_per_octave=36)
  return np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def expand_chroma(c12: np.ndarray) -> np.ndarray:
  """(..., 12, T) -> (..., 96, T): each pitch class repeated over 8 rows."""
  return np.repeat(c12, ROWS_PER_CLASS, axis=-2)


def chroma_to_tchroma(chroma96: np.ndarray) -> np.ndarray:
  """Reorders 96-row chroma by the circle of fifths (paper 3.1 iii).

  Args:
    chroma96: (..., 96, T) with row r -> pitch class r // 8.

  Returns:
    (..., 96, T) with block i (rows 8i..8i+7) = pitch class FIFTHS_ORDER[i],
    i.e. C G D A E B F# C# G# D# A# F from the bottom.
  """
  return np.take(chroma96, TCHROMA_ROWS, axis=-2)


def chroma(clips: np.ndarray) -> np.ndarray:
  """Chroma channel: float32 (..., 96, 94) for clips (..., 48000); see module doc."""
  return expand_chroma(chroma12(clips))


def tchroma(clips: np.ndarray) -> np.ndarray:
  """Circle-of-fifths chroma channel: float32 (..., 96, 94); see module doc."""
  return chroma_to_tchroma(chroma(clips))
