"""Frame contours of one recording for the rule-based baselines (paper 4.2).

The baselines of Zhang et al. (ISMIR 2021, section 4.2) work on contours, not on
the clip features: the pitch-histogram measures (4.2.1, Gupta et al. 2018) on the
voiced f0, the DTWDist ratings (4.2.2, Tsai & Lee 2012) on the f0, energy and
onset sequences. `Contours` holds them on one uniform frame grid.

From audio (`extract_contours`): f0 and confidence from our CREPE port
(`asa_jax.features.crepe.crepe_f0`, 10 ms hop, CREPE's usual step), energy as
librosa RMS (1024-sample frames, same hop, centred like CREPE) in dB, onsets from
`librosa.onset.onset_detect`. A frame is voiced when CREPE's confidence
(periodicity = max activation) is >= VOICING_THRESHOLD (0.5, the CREPE authors'
suggestion) and its RMS is within VOICING_RANGE_DB (40 dB) of the loudest frame
(CREPE reports high confidence on some near-silent frames).

From an f0 curve (`contours_from_f0`, e.g. MAST's f0 files): times in seconds and
f0 in Hz with 0 = unvoiced, resampled (nearest frame) to the same 10 ms grid;
energy and onsets are absent.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np

from asa_jax.features import constants

HOP_LENGTH = 160  # samples at 16 kHz = 10 ms, CREPE's default step.
FRAME_SECONDS = HOP_LENGTH / constants.SAMPLE_RATE  # 0.01 s.
VOICING_THRESHOLD = 0.5  # CREPE confidence (max activation) for voiced frames.
VOICING_RANGE_DB = 40.0  # voiced frames are within this many dB of the loudest.
RMS_FRAME = 1024  # samples per RMS frame (CREPE's window).
MIN_DB = -120.0  # floor of the energy contour, dB re full scale.
# f0 trackers of `extract_contours`: our CREPE port, Praat's autocorrelation pitch
# (asa_jax.features.praat_pitch), or the MLP distilled from CREPE tiny
# (asa_jax.features.pitch_student); BUILD_NOTES, "Pitch tracking".
TRACKERS = ("crepe", "praat", "student")


def tracker_tag(tracker: str) -> str:
  """The tracker's identity in cache keys and cached files' names: its name, and
  for the student also 8 hex digits of its settings (weights' SHA-256, voicing
  threshold), so retrained weights never read what the old ones cached.

  Raises:
    OSError: the student's weights cannot be read.
  """
  if tracker != "student":
    return tracker
  from asa_jax.features import pitch_student  # pylint: disable=g-import-not-at-top
  settings = json.dumps(pitch_student.settings(), sort_keys=True).encode()
  return f"student-{hashlib.sha256(settings).hexdigest()[:8]}"


@dataclasses.dataclass(frozen=True)
class Contours:
  """Contours of one recording on a uniform frame grid (frame k at k * hop_s).

  Attributes:
    f0_hz: float32 (T,) fundamental frequency in Hz; 0 where unvoiced.
    hop_s: frame period in seconds (FRAME_SECONDS for everything built here).
    energy_db: float32 (T,) RMS energy in dB re full scale (floor MIN_DB), or
      None when the contour came from an f0 curve.
    onsets_s: float64 (K,) onset times in seconds (ascending), or None when
      the contour came from an f0 curve.
    confidence: float32 (T,) CREPE confidence in [0, 1], or None.
  """
  f0_hz: np.ndarray
  hop_s: float = FRAME_SECONDS
  energy_db: np.ndarray | None = None
  onsets_s: np.ndarray | None = None
  confidence: np.ndarray | None = None

  @property
  def voiced(self) -> np.ndarray:
    """bool (T,): frames with a positive, finite f0."""
    return np.isfinite(self.f0_hz) & (self.f0_hz > 0)

  @property
  def n_frames(self) -> int:
    """Number of frames T (at the contours' hop)."""
    return int(self.f0_hz.shape[0])

  def voiced_cents(self) -> np.ndarray:
    """float64 (V,) voiced f0 in cents re A4 (440 Hz), in frame order."""
    f0 = np.asarray(self.f0_hz, np.float64)[self.voiced]
    return 1200.0 * np.log2(f0 / 440.0)


def contours_from_f0(times_s, f0_hz, *, hop_s: float = FRAME_SECONDS
                     ) -> Contours:
  """Contours from an f0 curve (e.g. MAST's f0 files), resampled to `hop_s`.

  Args:
    times_s: (N,) ascending frame times in seconds (any uniform or non-uniform
      rate).
    f0_hz: (N,) f0 in Hz, 0 (or negative / non-finite) = unvoiced.
    hop_s: output frame period in seconds.

  Returns:
    Contours with f0 only: frame k (time k * hop_s, from 0 to the last time)
    takes the f0 of the input frame nearest in time.

  Raises:
    ValueError: shapes differ, fewer than 1 frame, times not ascending, or
      hop_s <= 0.
  """
  times = np.asarray(times_s, np.float64).reshape(-1)
  f0 = np.asarray(f0_hz, np.float64).reshape(-1)
  if times.shape != f0.shape:
    raise ValueError(f"times {times.shape} and f0 {f0.shape} differ in shape")
  if times.size == 0:
    raise ValueError("empty f0 curve")
  if np.any(np.diff(times) < 0):
    raise ValueError("times must be ascending")
  if hop_s <= 0:
    raise ValueError(f"hop_s must be > 0, got {hop_s}")
  f0 = np.where(np.isfinite(f0) & (f0 > 0), f0, 0.0)
  grid = np.arange(int(np.floor(max(times[-1], 0.0) / hop_s)) + 1) * hop_s
  idx = np.clip(np.searchsorted(times, grid), 1, len(times) - 1) if len(
      times) > 1 else np.zeros(len(grid), int)
  if len(times) > 1:
    left = idx - 1
    idx = np.where(np.abs(times[left] - grid) <= np.abs(times[idx] - grid),
                   left, idx)
  return Contours(f0_hz=f0[idx].astype(np.float32), hop_s=float(hop_s))


def energy_db(audio: np.ndarray) -> np.ndarray:
  """RMS energy contour in dB re full scale: float32 (1 + n // HOP_LENGTH,).

  librosa.feature.rms with 1024-sample centred frames at HOP_LENGTH, then
  20 log10(rms), floored at MIN_DB.
  """
  import librosa  # pylint: disable=g-import-not-at-top  (slow import)
  rms = librosa.feature.rms(y=np.asarray(audio, np.float32),
                            frame_length=RMS_FRAME, hop_length=HOP_LENGTH,
                            center=True)[0]
  db = 20.0 * np.log10(np.maximum(rms, 10.0 ** (MIN_DB / 20.0)))
  return db.astype(np.float32)


def onset_times(audio: np.ndarray) -> np.ndarray:
  """Onset times in seconds, float64 (K,): librosa.onset.onset_detect (defaults:
  spectral-flux onset strength, peak picking) at HOP_LENGTH on 16 kHz audio."""
  import librosa  # pylint: disable=g-import-not-at-top
  return np.asarray(
      librosa.onset.onset_detect(y=np.asarray(audio, np.float32),
                                 sr=constants.SAMPLE_RATE,
                                 hop_length=HOP_LENGTH, units="time"),
      np.float64)


def voiced_frames(conf: np.ndarray, db: np.ndarray,
                  threshold: float = VOICING_THRESHOLD) -> np.ndarray:
  """bool (T,): the voicing rule of the module doc: the tracker's confidence (T,)
  >= threshold (CREPE's VOICING_THRESHOLD) and the RMS energy db (T,) (dB) within
  VOICING_RANGE_DB of the loudest frame."""
  return (conf >= threshold) & (db >= db.max() - VOICING_RANGE_DB)


def _voiced_contours(f0, conf, db, hop_s: float, onsets,
                     threshold: float = VOICING_THRESHOLD) -> Contours:
  """Contours with the voicing rule of `voiced_frames`."""
  voiced = voiced_frames(conf, db, threshold)
  return Contours(f0_hz=np.where(voiced, f0, 0.0).astype(np.float32), hop_s=hop_s,
                  energy_db=db, onsets_s=onsets, confidence=conf)


def _upsample_track(f0, conf, n: int, factor: int):
  """CREPE f0 and confidence at `factor` x HOP_LENGTH -> the HOP_LENGTH grid.

  Network frame j sits on output frame factor * j (both grids are centred at
  sample 0). An output frame between network frames j and j + 1 takes the
  confidence interpolated linearly, and the f0 interpolated linearly in cents
  when both neighbours are confident (>= VOICING_THRESHOLD), else the f0 of the
  more confident neighbour (never a glide into a silent frame's 0 Hz).

  Args:
    f0, conf: float32 (J,) network frames (f0 Hz, 0 where gated; confidence).
    n: output frames.
    factor: output frames per network frame (>= 1).

  Returns:
    (f0 Hz float32 (n,), confidence float32 (n,)).
  """
  f0 = np.asarray(f0, np.float64)
  conf = np.asarray(conf, np.float64)
  k = np.arange(n)
  j = np.minimum(k // factor, len(f0) - 1)
  j1 = np.minimum(j + 1, len(f0) - 1)
  w = (k - j * factor) / factor  # 0 on a network frame.
  c = (1.0 - w) * conf[j] + w * conf[j1]
  both = (conf[j] >= VOICING_THRESHOLD) & (conf[j1] >= VOICING_THRESHOLD) & (
      f0[j] > 0) & (f0[j1] > 0)
  with np.errstate(divide="ignore"):
    cents = np.log2(np.maximum(f0, 1e-9))
  glide = 2.0 ** ((1.0 - w) * cents[j] + w * cents[j1])
  nearest = np.where(w == 0, f0[j], np.where(conf[j] >= conf[j1], f0[j], f0[j1]))
  out = np.where(both, glide, nearest)
  return out.astype(np.float32), c.astype(np.float32)


def extract_contours(audio: np.ndarray, *, capacity: str = "tiny",
                     network_hop: int = HOP_LENGTH,
                     tracker: str = "crepe") -> Contours:
  """f0, voicing, energy and onsets of 16 kHz mono audio (paper 4.2).

  Frames more than VOICING_RANGE_DB below the loudest are unvoiced whatever
  CREPE says, so they skip the network (confidence 0; f0 and voicing exactly as
  without the gate; 8-11 % of the frames of SSVD and MIR-1K's voice clips).
  With tracker 'praat' the f0 is `praat_pitch.praat_f0`'s and the confidence is
  1 on Praat's voiced frames, 0 elsewhere; with 'student', `pitch_student.
  student_f0`'s f0 and confidence, voiced from its own VOICING_THRESHOLD (the same
  energy rule applies to both; neither is gated: both are cheap).

  Args:
    audio: float32 (n,) mono audio at 16 kHz (asa_jax.features.audio.load_audio).
    capacity: CREPE capacity, 'tiny' or 'full'.
    network_hop: samples between CREPE frames, a multiple of HOP_LENGTH
      (160 = 10 ms; 320 = 20 ms runs the network on every second frame and
      fills the others by `_upsample_track`); HOP_LENGTH for the others.
    tracker: 'crepe', 'praat' or 'student' (TRACKERS); capacity is CREPE's only.

  Returns:
    Contours on the 10 ms grid (T = 1 + n // HOP_LENGTH frames): f0 in Hz with
    unvoiced frames set to 0 (confidence < VOICING_THRESHOLD or RMS more than
    VOICING_RANGE_DB below the loudest frame), the CREPE confidence (0 on gated
    frames), the RMS energy in dB and the onset times.

  Raises:
    ValueError: audio not 1D, a bad capacity or tracker, or network_hop not a
      positive multiple of HOP_LENGTH (not HOP_LENGTH for 'praat' or 'student').
    asa_jax.features.pitch_student.PitchStudentError: its weights are unreadable.
  """
  from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 1:
    raise ValueError(f"audio must be (n,), got {audio.shape}")
  if tracker not in TRACKERS:
    raise ValueError(f"tracker must be one of {TRACKERS}, got {tracker!r}")
  if tracker != "crepe" and network_hop != HOP_LENGTH:
    raise ValueError(f"the {tracker} tracker runs at {HOP_LENGTH} samples, "
                     f"got network_hop {network_hop}")
  if tracker == "student":
    from asa_jax.features import pitch_student  # pylint: disable=g-import-not-at-top
    db = energy_db(audio)
    f0, conf = pitch_student.student_f0(audio, hop_length=HOP_LENGTH, n_frames=len(db))
    return _voiced_contours(f0, conf, db, FRAME_SECONDS, onset_times(audio),
                            threshold=pitch_student.VOICING_THRESHOLD)
  if tracker == "praat":
    from asa_jax.features import praat_pitch  # pylint: disable=g-import-not-at-top
    db = energy_db(audio)
    f0, voiced = praat_pitch.praat_f0(audio, sample_rate=constants.SAMPLE_RATE,
                                      hop_length=HOP_LENGTH, n_frames=len(db))
    return _voiced_contours(f0, voiced.astype(np.float32), db, FRAME_SECONDS,
                            onset_times(audio))
  if network_hop < HOP_LENGTH or network_hop % HOP_LENGTH:
    raise ValueError(f"network_hop must be a positive multiple of {HOP_LENGTH} "
                     f"samples, got {network_hop}")
  factor = network_hop // HOP_LENGTH
  db = energy_db(audio)
  loud = db >= db.max() - VOICING_RANGE_DB
  n_net = 1 + len(audio) // network_hop
  # A network frame is needed if any output frame it feeds is loud.
  feeds = np.zeros(n_net, bool)
  for r in range(-(factor - 1), factor):
    idx = np.arange(n_net) * factor + r
    ok = (idx >= 0) & (idx < len(loud))
    feeds[ok] |= loud[idx[ok]]
  f0, conf = crepe.crepe_f0(audio, hop_length=network_hop, capacity=capacity,
                            active=feeds)
  if factor > 1:
    f0, conf = _upsample_track(f0, conf, len(db), factor)
  n = min(len(f0), len(db))
  f0, conf, db = f0[:n], conf[:n], db[:n]
  return _voiced_contours(f0, conf, db, FRAME_SECONDS, onset_times(audio))


STREAM_CHUNK_SECONDS = 30.0


def _chunk(audio: np.ndarray, k0: int, k1: int, hop: int) -> np.ndarray:
  """The samples of frames k0..k1-1 (centred at k * hop) with RMS_FRAME // 2 of
  context each side, zero-padded past the ends: (k1 - k0 - 1) * hop + RMS_FRAME."""
  half = RMS_FRAME // 2
  lo, hi = k0 * hop - half, (k1 - 1) * hop + half
  seg = audio[max(lo, 0):max(min(hi, len(audio)), 0)]
  return np.pad(seg, (max(-lo, 0), max(hi - len(audio), 0)))


def stream_contours(audio: np.ndarray, *, capacity: str = "tiny",
                    chunk_seconds: float = STREAM_CHUNK_SECONDS,
                    hop_length: int = HOP_LENGTH) -> Contours:
  """`extract_contours` without onsets, in fixed-size chunks (bounded memory).

  The frames are those of `extract_contours` (CREPE f0 and confidence, RMS energy in
  dB, the same voicing rule and energy gate), computed chunk by chunk with each chunk's 512 samples
  of context on either side, so memory does not grow with the length beyond the
  (T,) contours themselves (a 10-minute file would otherwise frame 245 MB at once).

  Args:
    audio: float32 (n,) mono audio at 16 kHz.
    capacity: CREPE capacity, 'tiny' or 'full'.
    chunk_seconds: audio per chunk, seconds (> 0).
    hop_length: samples between frames (HOP_LENGTH = 10 ms as `extract_contours`;
      512 = 32 ms, the clip features' frame rate, costs 3.2x less CREPE).

  Returns:
    Contours on the hop_length grid (T = 1 + n // hop_length), onsets_s None.

  Raises:
    ValueError: audio not 1D, bad capacity or chunk_seconds <= 0.
  """
  from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top
  audio = np.asarray(audio, np.float32)
  if audio.ndim != 1:
    raise ValueError(f"audio must be (n,), got {audio.shape}")
  if chunk_seconds <= 0:
    raise ValueError(f"chunk_seconds must be > 0, got {chunk_seconds}")
  hop = int(hop_length)
  n_frames = 1 + len(audio) // hop
  per_chunk = max(1, int(chunk_seconds * constants.SAMPLE_RATE / hop))
  chunks = [(k0, min(k0 + per_chunk, n_frames)) for k0 in range(0, n_frames, per_chunk)]
  # First the energy of every frame (cheap), so the gate of `extract_contours`
  # (frames more than VOICING_RANGE_DB below the loudest skip CREPE) applies.
  db = np.empty(n_frames, np.float32)
  for k0, k1 in chunks:
    frames = np.lib.stride_tricks.sliding_window_view(
        _chunk(audio, k0, k1, hop), RMS_FRAME)[::hop]
    rms = np.sqrt(np.mean(np.square(frames[:k1 - k0], dtype=np.float32), axis=1))
    db[k0:k1] = 20.0 * np.log10(np.maximum(rms, 10.0 ** (MIN_DB / 20.0)))
  loud = db >= db.max() - VOICING_RANGE_DB
  f0 = np.empty(n_frames, np.float32)
  conf = np.empty(n_frames, np.float32)
  for k0, k1 in chunks:
    f, c = crepe.crepe_f0(_chunk(audio, k0, k1, hop), hop_length=hop,
                          capacity=capacity, center=False, active=loud[k0:k1])
    f0[k0:k1], conf[k0:k1] = f[:k1 - k0], c[:k1 - k0]
  return _voiced_contours(f0, conf, db, hop / constants.SAMPLE_RATE, None)
