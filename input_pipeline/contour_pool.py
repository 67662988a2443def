"""A fixed pool of clean pitch contours for the on-device degradations (issue 18).

Sources (../shared/data; each contour resampled to 10 ms frames, cents = MIDI x 100,
0 = unvoiced):
  mir1k      MIR-1K `PitchLabel/<singer>_<song>_<clip>.pv` (MIDI per 20 ms frame,
             0 = unvoiced): 1,000 clips of 19 amateur singers, split BY SINGER;
  mast_ref   MASTmelody piano reference f0 curves (`_ref` files only; no
             performance), split BY MELODY: the selection melodies' references are
             kept out of training;
  ssvd_v2    contours rendered from SSVD v2's own recordings' note labels
             (`labels/train_valid/<id>.txt`: onset s, offset s, MIDI): flat notes.
             The SSVD v1 recordings (`labels/test`, the evaluation set) are not used.
Not in ../shared/data, so not in the pool: vocadito, jingju (BUILD_NOTES.md).

Every contour is cut into fixed windows of `window_frames` frames (hop half a window;
a shorter contour is one window padded with unvoiced frames); windows with less than
20% voiced frames are dropped. Notes are segmented per window on the host with
`input_pipeline.corpora.degrade.segment_notes` (at 10 ms its 12-frame minimum note is
120 ms). `build_pool` writes one .npz (atomically); `load_pool` reads it.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import zlib

import numpy as np

from asa_jax import atomic
from input_pipeline.corpora import degrade

FRAME_SECONDS = 0.01
WINDOW_FRAMES = 640  # 6.4 s: 95% of MASTmelody curves fit in one window.
MAX_NOTES = 64
MIN_VOICED_FRACTION = 0.2
SPLITS = ("train", "validation", "test")
# MIR-1K singers held out (sorted singer names, every 5th from the 3rd): test;
# the next one of each block of 5: validation. 19 singers -> 4 test, 4 validation.
_TEST_EVERY, _TEST_OFFSET, _VAL_OFFSET = 5, 2, 3


class PoolError(ValueError):
  """A source file that cannot be read (names the file and the reason)."""


@dataclasses.dataclass(frozen=True)
class Pool:
  """Windows of clean contours (N windows of T frames, at most M notes each).

  Attributes:
    cents: float32 (N, T) cents (MIDI x 100), 0 where unvoiced.
    voiced: float32 (N, T) 1 / 0.
    note: int32 (N, T) note index in [0, M) per frame, M where unvoiced.
    onset: int32 (N, M) onset frame per note, ascending; T for absent notes.
    source: str (N,) 'mir1k' | 'mast_ref' | 'ssvd_v2'.
    group: str (N,) recording name (MIR-1K clip, MAST curve, SSVD id).
    split: str (N,) 'train' | 'validation' | 'test'.
    selection: real graded validation rows for model selection
      (`selection_windows`), or None.
  """
  cents: np.ndarray
  voiced: np.ndarray
  note: np.ndarray
  onset: np.ndarray
  source: np.ndarray
  group: np.ndarray
  split: np.ndarray
  selection: dict | None = None

  def indices(self, split: str) -> np.ndarray:
    """int64 indices of the windows of `split`."""
    return np.flatnonzero(self.split == split)


def hz_to_cents(f0_hz: np.ndarray) -> np.ndarray:
  """f0 in Hz (0 = unvoiced) -> float64 cents re MIDI 0 (MIDI x 100), 0 unvoiced."""
  f0 = np.asarray(f0_hz, np.float64)
  out = np.zeros_like(f0)
  v = f0 > 0
  out[v] = 100.0 * (69.0 + 12.0 * np.log2(f0[v] / 440.0))
  return out


def resample_cents(cents: np.ndarray, hop_seconds: float) -> np.ndarray:
  """A cents track (0 = unvoiced) on a `hop_seconds` grid -> 10 ms frames: linear
  inside voiced stretches, voicing from the nearest source frame. float64 (T',)."""
  cents = np.asarray(cents, np.float64)
  n_out = int(np.floor((len(cents) - 1) * hop_seconds / FRAME_SECONDS)) + 1
  if len(cents) == 0 or n_out <= 0:
    return np.zeros(0)
  voiced = cents > 0
  if not voiced.any():
    return np.zeros(n_out)
  src_t = np.arange(len(cents)) * hop_seconds
  t = np.arange(n_out) * FRAME_SECONDS
  val = np.interp(t, src_t[voiced], cents[voiced])
  nearest = np.clip(np.round(t / hop_seconds).astype(int), 0, len(cents) - 1)
  return np.where(voiced[nearest], val, 0.0)


def render_notes(notes: np.ndarray) -> np.ndarray:
  """(n, 3) rows (onset s, offset s, MIDI) -> flat-note cents track at 10 ms."""
  notes = np.asarray(notes, np.float64).reshape(-1, 3)
  if notes.size == 0:
    return np.zeros(0)
  n_out = int(np.ceil(notes[:, 1].max() / FRAME_SECONDS)) + 1
  out = np.zeros(n_out)
  for on, off, midi in notes:
    a, b = int(round(on / FRAME_SECONDS)), int(round(off / FRAME_SECONDS))
    if b > a and midi > 0:
      out[a:b] = 100.0 * midi
  return out


def window_contour(cents: np.ndarray, window_frames: int = WINDOW_FRAMES,
                   max_notes: int = MAX_NOTES) -> list[tuple[np.ndarray, ...]]:
  """Cuts a 10 ms cents track into windows: [(cents (T,), voiced (T,), note (T,),
  onset (M,))], hop T/2; the last window ends at the track's end."""
  cents = np.asarray(cents, np.float64)
  t = window_frames
  if len(cents) <= t:
    starts = [0]
  else:
    starts = list(range(0, len(cents) - t + 1, t // 2))
    if starts[-1] != len(cents) - t:
      starts.append(len(cents) - t)
  out = []
  for s in starts:
    c = np.zeros(t)
    seg = cents[s:s + t]
    c[:len(seg)] = seg
    voiced = c > 0
    if voiced.mean() < MIN_VOICED_FRACTION:
      continue
    f0 = np.where(voiced, 440.0 * 2.0 ** ((c / 100.0 - 69.0) / 12.0), 0.0)
    notes = degrade.segment_notes(f0, FRAME_SECONDS)[:max_notes]
    note = np.full(t, max_notes, np.int32)
    onset = np.full(max_notes, t, np.int32)
    for i, (a, b) in enumerate(notes):
      note[a:b] = i
      onset[i] = a
    voiced = note < max_notes  # Frames past the last kept note become unvoiced.
    out.append((np.where(voiced, c, 0.0).astype(np.float32),
                voiced.astype(np.float32), note, onset))
  return out


def mir1k_split(singer: str, singers: list[str]) -> str:
  """'test' / 'validation' / 'train' of a MIR-1K singer (deterministic by name)."""
  i = sorted(singers).index(singer)
  if i % _TEST_EVERY == _TEST_OFFSET:
    return "test"
  if i % _TEST_EVERY == _VAL_OFFSET:
    return "validation"
  return "train"


def _read_pv(path: str) -> np.ndarray:
  try:
    values = np.loadtxt(path, ndmin=1)
  except ValueError as e:
    raise PoolError(f"{path}: not one number per line ({e})") from None
  if values.ndim != 1 or not np.all(np.isfinite(values)):
    raise PoolError(f"{path}: expected one finite MIDI value per line")
  return values


def _sources(data_dir: str, selection_melodies: frozenset[str]):
  """Yields (source, group, split, cents at 10 ms) for every pool recording."""
  pv = sorted(glob.glob(os.path.join(data_dir, "mir1k", "PitchLabel", "*.pv")))
  if not pv:
    raise PoolError(f"{data_dir}/mir1k/PitchLabel: no .pv files")
  singers = sorted({os.path.basename(p).split("_")[0] for p in pv})
  for path in pv:
    name = os.path.basename(path)[:-3]
    midi = _read_pv(path)
    yield ("mir1k", name, mir1k_split(name.split("_")[0], singers),
           resample_cents(np.where(midi > 0, 100.0 * midi, 0.0), 0.02))
  from input_pipeline.corpora import mast_data  # pylint: disable=g-import-not-at-top
  for c in mast_data.load_curves(os.path.join(data_dir, "mast")):
    if c.kind != "ref":
      continue
    hop = float(np.median(np.diff(c.times_s))) if len(c.times_s) > 1 else 0.01
    split = "validation" if c.melody in selection_melodies else "train"
    yield "mast_ref", c.name, split, resample_cents(hz_to_cents(c.f0_hz), hop)
  for path in sorted(glob.glob(os.path.join(data_dir, "ssvd_v2", "labels",
                                            "train_valid", "*.txt"))):
    try:
      notes = np.loadtxt(path, ndmin=2)
    except ValueError as e:
      raise PoolError(f"{path}: not a numeric table ({e})") from None
    if notes.shape[1] != 3:
      raise PoolError(f"{path}: expected 3 columns (onset, offset, MIDI)")
    yield "ssvd_v2", os.path.basename(path)[:-4], "train", render_notes(notes)


def build_pool(data_dir: str, out_path: str, *, selection_melodies=(),
               window_frames: int = WINDOW_FRAMES, max_notes: int = MAX_NOTES) -> Pool:
  """Builds the pool from ../shared/data and writes it to `out_path` (.npz, atomic).

  Args:
    data_dir: the shared data folder (mir1k/, mast/, ssvd_v2/).
    out_path: .npz to write.
    selection_melodies: MAST melodies used for model selection: their reference
      windows go to 'validation', not 'train', and their graded performances are
      the pool's `selection` rows.
    window_frames, max_notes: T and M.

  Raises:
    PoolError / FileNotFoundError: a missing or malformed source (names the file).
  """
  rows = {k: [] for k in ("cents", "voiced", "note", "onset", "source", "group",
                          "split")}
  for source, group, split, cents in _sources(data_dir, frozenset(selection_melodies)):
    for c, v, n, o in window_contour(cents, window_frames, max_notes):
      for k, x in zip(rows, (c, v, n, o, source, group, split)):
        rows[k].append(x)
  selection = None
  if selection_melodies:
    selection = selection_windows(
        mast_pairs(os.path.join(data_dir, "mast"), selection_melodies), window_frames)
  pool = Pool(**{k: np.asarray(v) for k, v in rows.items()}, selection=selection)
  buf = io.BytesIO()
  fields = {k: v for k, v in dataclasses.asdict(pool).items() if k != "selection"}
  np.savez_compressed(buf, **fields, **(selection or {}))
  atomic.write_bytes(out_path, buf.getvalue())
  return pool


def load_pool(path: str) -> Pool:
  """Reads a `build_pool` .npz.

  Raises:
    FileNotFoundError: missing file. PoolError: not a pool file (names the field).
  """
  try:
    with np.load(path, allow_pickle=False) as z:
      sel = {k: z[k] for k in z.files if k.startswith("sel_")} or None
      return Pool(**{f.name: z[f.name] for f in dataclasses.fields(Pool)
                     if f.name != "selection"}, selection=sel)
  except (KeyError, zlib.error, ValueError) as e:
    raise PoolError(f"{path}: not a contour pool ({e})") from None


def pair_windows(performance: np.ndarray, reference: np.ndarray,
                 window_frames: int = WINDOW_FRAMES) -> tuple[np.ndarray, np.ndarray]:
  """A real (performance, reference) pair of 10 ms cents tracks -> K window pairs.

  Both are trimmed to their first..last voiced frame and cut into the same number
  K = ceil(max(lengths) / T) of equal parts (a time-proportional alignment: the
  singer's own tempo is assumed uniform); each part is padded with unvoiced frames
  to T.

  Returns:
    (performance windows, reference windows): float32 (K, T) cents, 0 = unvoiced.

  Raises:
    ValueError: a track without voiced frames.
  """
  parts = []
  for name, x in (("performance", performance), ("reference", reference)):
    x = np.asarray(x, np.float64)
    v = np.flatnonzero(x > 0)
    if v.size == 0:
      raise ValueError(f"{name} contour has no voiced frame")
    parts.append(x[v[0]:v[-1] + 1])
  k = max(1, int(np.ceil(max(len(p) for p in parts) / window_frames)))
  out = []
  for x in parts:
    edges = np.linspace(0, len(x), k + 1).round().astype(int)
    w = np.zeros((k, window_frames), np.float32)
    for i in range(k):
      seg = x[edges[i]:edges[i + 1]][:window_frames]
      w[i, :len(seg)] = seg
    out.append(w)
  return out[0], out[1]


def mast_selection_melodies(melodies, every: int = 4) -> tuple[str, ...]:
  """The MAST melodies used for model selection: every `every`-th of the sorted
  melody names, from the 2nd (deterministic; 39 melodies -> 10)."""
  return tuple(sorted(set(melodies))[1::every])


@dataclasses.dataclass(frozen=True)
class MastPair:
  """One MAST performance with its references (asa_jax.baselines.mast pairing).

  Attributes:
    name: performance curve name ('<melody>_per<id>_<pass|fail>').
    melody: melody id.
    passed: the jury's pass / fail.
    grade: mean of the raters' grades (1..4), nan when ungraded.
    performance: float64 (T,) cents at 10 ms.
    references: list of float64 cents tracks at 10 ms (1 for 'same_id' pairing, up
      to 5 for 'melody' pairing).
  """
  name: str
  melody: str
  passed: bool
  grade: float
  performance: np.ndarray
  references: list


def _curve_cents(curve) -> np.ndarray:
  hop = float(np.median(np.diff(curve.times_s))) if len(curve.times_s) > 1 else 0.01
  return resample_cents(hz_to_cents(curve.f0_hz), hop)


def mast_pairs(mast_dir: str, melodies=None) -> list[MastPair]:
  """Every MAST performance (of `melodies`, or all) that has a reference.

  Reads the curves with `input_pipeline.corpora.mast_data`.

  Raises:
    FileNotFoundError: the MAST archive is missing.
  """
  from input_pipeline.corpora import mast_data  # pylint: disable=g-import-not-at-top
  curves = mast_data.load_curves(mast_dir)
  grades = mast_data.load_grades(mast_dir)
  pairs = mast_data.pair_references(curves)
  keep = None if melodies is None else set(melodies)
  out = []
  for c in curves:
    if c.kind != "per" or (keep is not None and c.melody not in keep):
      continue
    pairing, refs = pairs[c.name]
    if not refs:
      continue
    g = grades.get(mast_data.grade_key(c), ())
    out.append(MastPair(c.name, c.melody, bool(c.passed),
                        float(np.mean(g)) if g else float("nan"), _curve_cents(c),
                        [_curve_cents(r) for r in refs]))
  return out


def selection_windows(pairs: list[MastPair], window_frames: int = WINDOW_FRAMES
                      ) -> dict[str, np.ndarray]:
  """Model-selection rows from graded MAST pairs (first reference of each):
  {"sel_performance", "sel_reference": float32 (S, T) cents; "sel_group": int32 (S,)
  index of the pair; "sel_grade": float32 (P,) mean grade per pair}."""
  perf, ref, group, grade = [], [], [], []
  for i, p in enumerate(x for x in pairs if np.isfinite(x.grade)):
    try:
      w_p, w_r = pair_windows(p.performance, p.references[0], window_frames)
    except ValueError:
      continue
    perf.append(w_p)
    ref.append(w_r)
    group += [len(grade)] * len(w_p)
    grade.append(p.grade)
  return {"sel_performance": np.concatenate(perf), "sel_reference": np.concatenate(ref),
          "sel_group": np.asarray(group, np.int32),
          "sel_grade": np.asarray(grade, np.float32)}
