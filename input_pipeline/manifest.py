"""Corpus manifest: one CSV row per performance audio file (paper 3.3).

The manifest is a UTF-8 CSV with a header row and these columns:

  song_id, performance_id, performance_audio, reference_audio,
  accompaniment_audio, score, judge_scores, split

`score` is the quality label in [0, 100] (empty when unknown), `judge_scores` a
';'-separated list of floats (empty allowed), `split` one of train, validation,
test. Audio paths are absolute or relative to the manifest's folder. Several rows
may share a `performance_id` (a performance recorded as phrase files); such rows
must agree on song_id, score and split, and are pooled under one performance.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os

from asa_jax import atomic

REQUIRED_COLUMNS = (
    "song_id",
    "performance_id",
    "performance_audio",
    "reference_audio",
    "accompaniment_audio",
    "score",
    "judge_scores",
    "split",
)
SPLITS = ("train", "validation", "test")
PATH_COLUMNS = ("performance_audio", "reference_audio", "accompaniment_audio")


class ManifestError(ValueError):
  """A manifest problem; the message names the file, the line and the reason."""


@dataclasses.dataclass(frozen=True)
class ManifestRow:
  """One validated manifest row.

  Attributes:
    song_id: song identifier (performances of one song share a reference).
    performance_id: performance identifier (phrase rows may share it).
    performance_audio: absolute path of the solo singing audio.
    reference_audio: absolute path of the original-singing reference audio.
    accompaniment_audio: absolute path of the accompaniment, or None.
    score: quality score in [0, 100], or None when unlabelled.
    judge_scores: individual judges' scores (may be empty).
    split: 'train' | 'validation' | 'test'.
    line: 1-based line number of the row in the CSV file (header is line 1).
  """
  song_id: str
  performance_id: str
  performance_audio: str
  reference_audio: str
  accompaniment_audio: str | None
  score: float | None
  judge_scores: tuple[float, ...]
  split: str
  line: int


def _resolve(base_dir: str, value: str) -> str:
  path = os.path.expanduser(value)
  if not os.path.isabs(path):
    path = os.path.join(base_dir, path)
  return os.path.abspath(path)


def _parse_float(value: str, what: str) -> float:
  try:
    x = float(value)
  except ValueError:
    raise ValueError(f"{what} {value!r} is not a number") from None
  if not math.isfinite(x):
    raise ValueError(f"{what} {value!r} is not a finite number")
  return x


def _parse_row(raw: dict, base_dir: str, line: int) -> ManifestRow:
  """Validates one csv.DictReader row; raises ValueError with the reason."""
  if None in raw:  # More fields than header columns.
    raise ValueError(
        f"row has {len(raw) - 1 + len(raw[None])} fields, header has "
        f"{len(raw) - 1}")
  values = {}
  for column in REQUIRED_COLUMNS:
    value = raw.get(column)
    if value is None:
      raise ValueError(
          f"row has fewer fields than the header (column {column!r} missing)")
    values[column] = value.strip()
  for column in ("song_id", "performance_id", "performance_audio",
                 "reference_audio"):
    if not values[column]:
      raise ValueError(f"empty {column}")
  split = values["split"]
  if split not in SPLITS:
    raise ValueError(f"split {split!r} is not one of {', '.join(SPLITS)}")
  score = None
  if values["score"]:
    score = _parse_float(values["score"], "score")
    if not 0.0 <= score <= 100.0:
      raise ValueError(f"score {score} is outside [0, 100]")
  judge_scores = ()
  if values["judge_scores"]:
    judge_scores = tuple(
        _parse_float(v.strip(), "judge score")
        for v in values["judge_scores"].split(";") if v.strip())
  paths = {}
  for column in ("performance_audio", "reference_audio",
                 "accompaniment_audio"):
    if not values[column]:
      paths[column] = None
      continue
    path = _resolve(base_dir, values[column])
    if not os.path.isfile(path):
      raise ValueError(f"{column} file not found: {path}")
    paths[column] = path
  return ManifestRow(
      song_id=values["song_id"],
      performance_id=values["performance_id"],
      performance_audio=paths["performance_audio"],
      reference_audio=paths["reference_audio"],
      accompaniment_audio=paths["accompaniment_audio"],
      score=score,
      judge_scores=judge_scores,
      split=split,
      line=line,
  )


def read_manifest(
    path: str | os.PathLike, *, on_error: str = "raise"
) -> tuple[list[ManifestRow], list[str]]:
  """Reads and validates a manifest CSV (paper 3.3 corpus description).

  Args:
    path: the manifest CSV file (UTF-8, header row required).
    on_error: 'raise' -> the first bad row raises ManifestError; 'skip' -> bad
      rows are left out and described in `problems`.

  Returns:
    (rows, problems): the valid rows in file order, and one message per skipped
    row, each "<file>:<line>: <reason>".

  Raises:
    ManifestError: the file is missing/unreadable/not UTF-8, the header lacks a
      required column (always, whatever on_error), or a row is invalid and
      on_error == 'raise'. Row problems: missing/extra fields, empty song_id /
      performance_id / performance_audio / reference_audio, unknown split,
      non-numeric or out-of-range score, non-numeric judge score, missing audio
      file, phrase rows of one performance_id disagreeing on song_id / score /
      split.
    ValueError: on_error is not 'raise' or 'skip'.
  """
  if on_error not in ("raise", "skip"):
    raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
  path = os.path.abspath(os.fspath(path))
  base_dir = os.path.dirname(path)
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      header = reader.fieldnames
      raw_rows = []
      for raw in reader:
        raw_rows.append((reader.line_num, raw))
  except FileNotFoundError:
    raise ManifestError(f"{path}: manifest file not found") from None
  except UnicodeDecodeError as e:
    raise ManifestError(f"{path}: not valid UTF-8 ({e})") from None
  except csv.Error as e:
    raise ManifestError(f"{path}: malformed CSV ({e})") from None
  if not header:
    raise ManifestError(f"{path}:1: empty file, header row required")
  header = [h.strip() for h in header]
  missing = [c for c in REQUIRED_COLUMNS if c not in header]
  if missing:
    raise ManifestError(
        f"{path}:1: header lacks column(s) {', '.join(missing)}; required: "
        f"{', '.join(REQUIRED_COLUMNS)}")

  rows: list[ManifestRow] = []
  problems: list[str] = []
  first_of: dict[str, ManifestRow] = {}

  def problem(line: int, reason: str):
    message = f"{path}:{line}: {reason}"
    if on_error == "raise":
      raise ManifestError(message)
    problems.append(message)

  for line, raw in raw_rows:
    raw = {(k.strip() if isinstance(k, str) else k): v for k, v in raw.items()}
    if all(not (v or "").strip() for k, v in raw.items() if k is not None):
      continue  # Blank line.
    try:
      row = _parse_row(raw, base_dir, line)
    except ValueError as e:
      problem(line, str(e))
      continue
    first = first_of.get(row.performance_id)
    if first is not None:
      for field in ("song_id", "score", "split"):
        if getattr(first, field) != getattr(row, field):
          problem(
              line,
              f"performance_id {row.performance_id!r} has {field} "
              f"{getattr(row, field)!r} but line {first.line} has "
              f"{getattr(first, field)!r}")
          break
      else:
        rows.append(row)
      continue
    first_of[row.performance_id] = row
    rows.append(row)
  return rows, problems


def read_table(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
  """The manifest as text, unvalidated: (header, one dict per row, file order).

  For the extra columns other tools add (singer, source_id, corpus: see `column`) and
  for copying rows; `read_manifest` is the validating reader.

  Raises:
    ManifestError: the file is missing, not UTF-8 or malformed CSV (names it).
  """
  path = os.fspath(path)
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.DictReader(f)
      rows = list(reader)
      return list(reader.fieldnames or []), rows
  except FileNotFoundError:
    raise ManifestError(f"{path}: manifest file not found") from None
  except UnicodeDecodeError as e:
    raise ManifestError(f"{path}: not valid UTF-8 ({e})") from None
  except csv.Error as e:
    raise ManifestError(f"{path}: malformed CSV ({e})") from None


def column(path: str | os.PathLike, name: str) -> dict[str, str] | None:
  """performance_id -> the `name` cell of its row (phrase rows: the last one), or
  None when the manifest has no such column.

  Raises:
    ManifestError: as `read_table`.
  """
  fields, rows = read_table(path)
  if name not in fields:
    return None
  return {row["performance_id"]: row[name] or "" for row in rows}


def write_split_manifest(manifest_path: str | os.PathLike, split: str,
                         out_path: str | os.PathLike) -> int:
  """Copies the manifest rows of one split to `out_path`, audio paths made absolute.

  Other columns are copied verbatim, so the pipeline reads them exactly as before.

  Returns:
    Number of rows written.

  Raises:
    ValueError: the manifest has no 'split' column.
  """
  manifest_path = os.fspath(manifest_path)
  base = os.path.dirname(os.path.abspath(manifest_path))
  fields, rows = read_table(manifest_path)
  if "split" not in fields:
    raise ValueError(f"{manifest_path}: no 'split' column (header: {fields})")
  rows = [row for row in rows if (row.get("split") or "").strip() == split]
  for row in rows:
    for column in PATH_COLUMNS:
      value = (row.get(column) or "").strip()
      if value:  # As read_manifest resolves them.
        row[column] = os.path.abspath(os.path.join(base, os.path.expanduser(value)))
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  atomic.write_text(os.fspath(out_path), buf.getvalue())
  return len(rows)
