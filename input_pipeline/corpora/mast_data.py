"""MASTmelody f0 curves, grades and performance/reference pairing.

MASTmelody (Bozkurt, Baysal & Yuret, CMMR 2017; ../shared/data/mast) holds f0
curves of conservatory entrance-exam candidates singing back short melodies
played on the piano. `f0data.tar.xz` has one text file per recording,
"<melody>_per<id>_{pass,fail}.f0s.txt" (a performance, with the jury's
unanimous pass/fail) or "<melody>_ref<id>.f0s.txt" (a piano reference), with
<melody> = "<n>_mel<k>" and two columns: time (s) and f0 (Hz, 0 = unvoiced).
`annotations.csv` gives 4-level grades (1 completely off .. 4 perfect) by 5
raters (columns 1Asli, 5Ozan, 2Asli, 3Cihan, 4Cihan) per "<melody>_per<id>.wav".

Pairing: a performance is paired with the reference of the same melody with the
same id (the piano rendition played to that candidate: 869 of the 996
performances have one). Otherwise it is compared with up to MAX_FALLBACK_REFS
references of its melody (the lowest ids) and its rating is their median.

The archive is read in place with tarfile (never extracted).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import re
import tarfile

import numpy as np

F0_ARCHIVE = "f0data.tar.xz"
ANNOTATIONS = "annotations.csv"
RATER_COLUMNS = ("1Asli", "5Ozan", "2Asli", "3Cihan", "4Cihan")
MAX_FALLBACK_REFS = 5
_NAME = re.compile(
    r"^(?P<melody>\d+_mel\d+)_(?P<kind>per|ref)(?P<id>\d+)"
    r"(?:_(?P<grade>pass|fail))?\.f0s\.txt$")


@dataclasses.dataclass(frozen=True)
class MastCurve:
  """One f0 curve of MASTmelody.

  Attributes:
    name: file stem without '.f0s.txt', e.g. '51_mel1_per106160_pass'.
    melody: melody id, e.g. '51_mel1'.
    kind: 'per' (sung performance) or 'ref' (piano reference).
    rec_id: the recording id (digits), e.g. '106160'.
    passed: jury's pass (True) / fail (False) for 'per'; None for 'ref'.
    times_s: float64 (N,) frame times in seconds.
    f0_hz: float64 (N,) f0 in Hz, 0 = unvoiced.
  """
  name: str
  melody: str
  kind: str
  rec_id: str
  passed: bool | None
  times_s: np.ndarray
  f0_hz: np.ndarray


def parse_name(filename: str) -> dict | None:
  """Parses an f0 file's base name; None when it does not follow the scheme."""
  m = _NAME.match(os.path.basename(filename))
  return m.groupdict() if m else None


def _parse_curve(text: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
  values = np.array(text.split(), dtype=np.float64)
  if values.size == 0 or values.size % 2:
    raise ValueError(f"{name}: expected two columns (time, f0), got "
                     f"{values.size} numbers")
  values = values.reshape(-1, 2)
  return values[:, 0], values[:, 1]


def load_curves(mast_dir: str) -> list[MastCurve]:
  """Reads every f0 curve from <mast_dir>/f0data.tar.xz (not extracted).

  Returns:
    MastCurves in archive order (files not named by the scheme are skipped).

  Raises:
    FileNotFoundError: the archive is missing.
    ValueError: a curve file is not two numeric columns.
  """
  path = os.path.join(mast_dir, F0_ARCHIVE)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: MAST f0 archive not found")
  curves = []
  with tarfile.open(path, "r:xz") as tar:
    for member in tar:
      if not member.isfile():
        continue
      info = parse_name(member.name)
      if info is None:
        continue
      f = tar.extractfile(member)
      times, f0 = _parse_curve(f.read(), member.name)
      stem = os.path.basename(member.name)[:-len(".f0s.txt")]
      passed = None if info["grade"] is None else info["grade"] == "pass"
      curves.append(MastCurve(stem, info["melody"], info["kind"], info["id"],
                              passed, times, f0))
  return curves


def load_grades(mast_dir: str) -> dict[str, tuple[float, ...]]:
  """Raters' grades per recording from annotations.csv.

  Returns:
    {'<melody>_<per|ref><id>': (grades of the raters who graded it, 1..4)};
    empty grades are left out.

  Raises:
    FileNotFoundError: annotations.csv is missing.
  """
  path = os.path.join(mast_dir, ANNOTATIONS)
  grades = {}
  with open(path, newline="", encoding="utf-8") as f:
    for row in csv.DictReader(f):
      stem = os.path.splitext(row["file"].strip())[0]
      values = []
      for column in RATER_COLUMNS:
        text = (row.get(column) or "").strip()
        if text:
          value = float(text)
          if math.isfinite(value):
            values.append(value)
      grades[stem] = tuple(values)
  return grades


def grade_key(curve: MastCurve) -> str:
  """The annotations.csv stem of a curve: '<melody>_<kind><id>'."""
  return f"{curve.melody}_{curve.kind}{curve.rec_id}"


def pair_references(curves: list[MastCurve]
                    ) -> dict[str, tuple[str, list[MastCurve]]]:
  """References of every performance (see the module docstring).

  Returns:
    {performance name: (pairing, refs)}, pairing 'same_id' (one ref: the
    same melody and id) or 'melody' (up to MAX_FALLBACK_REFS refs of the
    melody, lowest ids first), or 'none' (the melody has no reference).
  """
  refs: dict[str, list[MastCurve]] = {}
  for c in curves:
    if c.kind == "ref":
      refs.setdefault(c.melody, []).append(c)
  for melody_refs in refs.values():
    melody_refs.sort(key=lambda c: int(c.rec_id))
  out = {}
  for c in curves:
    if c.kind != "per":
      continue
    melody_refs = refs.get(c.melody, [])
    same = [r for r in melody_refs if r.rec_id == c.rec_id]
    if same:
      out[c.name] = ("same_id", same[:1])
    elif melody_refs:
      out[c.name] = ("melody", melody_refs[:MAX_FALLBACK_REFS])
    else:
      out[c.name] = ("none", [])
  return out
