"""Per-performance tables of measured terms on the real-label corpora (issue 18, 4-5).

One row per graded performance: its id, melody (the fold unit), the human target,
pass/fail, `dtw_melody` (Molina et al. 2013), the pitch-histogram measures (paper
4.2.1), every term of `measured_terms.TERMS` and, for audio corpora, of
`voice_quality.TERMS` (nan for MAST, which has f0 curves only).

  MAST (Bozkurt et al. 2017; `mast_data`): target = mean of the raters' 1-4 grades,
    also the majority grade and the jury's unanimous pass/fail. A performance with
    several references (no same-id one) takes the median of each term over them.
  SSVD v1 (`input_pipeline.corpora.ssvd`): target = the note-label-derived score (0-100),
    pass = score >= SSVD_PASS_SCORE (paper 3.3's "good" threshold); the reference is
    the melody's best-scored recording; f0 from CREPE through the contour cache
    (asa_jax.baselines.cache), energy for dynamic_range_db, Praat voice quality.

Tables are cached as CSV (atomic) keyed by TABLE_VERSION: a rerun reads them.
"""

from __future__ import annotations

import collections
import csv
import math
import os
from typing import Callable

import numpy as np

from asa_jax import atomic
from asa_jax.baselines import cache as cache_lib
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from input_pipeline.corpora import mast_data
from asa_jax.baselines import measured_terms
from asa_jax.baselines import voice_quality
from asa_jax.features import aligned_contour as ac_lib

TABLE_VERSION = 2  # 2: the note-error cap of intonation and interval terms, 100 cents.
SSVD_PASS_SCORE = 80.0
ID_COLUMNS = ("performance_id", "melody", "target", "passed", "majority")
FEATURES = (("dtw_melody",) + tuple(baseline_names.HISTOGRAM)
            + tuple(measured_terms.TERMS) + tuple(voice_quality.TERMS))


def _row_terms(perf_hz, ref_list, *, perf_energy_db=None) -> dict:
  """dtw_melody and the measured terms against each reference; medians over refs."""
  per_ref = []
  for ref_hz in ref_list:
    a = ac_lib.aligned_contour(perf_hz, ref_hz)
    terms = measured_terms.measured_terms(a, perf_energy_db=perf_energy_db)
    terms["dtw_melody"] = -a.cost_cents
    per_ref.append(terms)
  out = {}
  for name in per_ref[0]:
    values = np.array([t[name] for t in per_ref], np.float64)
    values = values[np.isfinite(values)]
    out[name] = float(np.median(values)) if values.size else math.nan
  return out


def _majority(grades) -> float:
  counts = collections.Counter(grades)
  top = max(counts.values())
  return float(min(g for g, c in counts.items() if c == top))


def table_name(corpus: str, tracker: str) -> str:
  """A corpus's term-table file name: MAST's f0 curves need no tracker; SSVD's
  terms come from audio, so its name carries `cache.derived_suffix` (the tracker
  and the contours' version): a table of other contours is never read."""
  if corpus == "mast":
    return "mast_terms.csv"
  return f"{corpus}{cache_lib.derived_suffix(tracker)}_terms.csv"


def mast_table(mast_dir: str, *, log: Callable[[str], None] = print
               ) -> list[dict]:
  """Rows of every graded MAST performance with a reference (module doc)."""
  curves = mast_data.load_curves(mast_dir)
  grades = mast_data.load_grades(mast_dir)
  pairs = mast_data.pair_references(curves)
  grid = {}

  def hz(c):
    if c.name not in grid:
      grid[c.name] = ac_lib.to_frame_grid(c.times_s, c.f0_hz)
    return grid[c.name]

  rows = []
  perfs = [c for c in curves if c.kind == "per"]
  for i, c in enumerate(perfs):
    g = grades.get(mast_data.grade_key(c), ())
    _, refs = pairs[c.name]
    if not g or not refs:
      continue
    row = {"performance_id": c.name, "melody": c.melody,
           "target": float(np.mean(g)), "passed": int(bool(c.passed)),
           "majority": _majority(g)}
    try:
      row.update(histogram_lib.histogram_measures(c.f0_hz))
    except ValueError as e:
      log(f"terms: no histogram measures for {c.name}: {e}")
    try:
      row.update(_row_terms(hz(c), [hz(r) for r in refs]))
    except ValueError as e:
      log(f"terms: no aligned terms for {c.name}: {e}")
    rows.append(row)
    if (i + 1) % 100 == 0:
      log(f"terms: MAST {i + 1}/{len(perfs)}")
  return rows


def ssvd_table(ssvd_dir: str, cache_dir: str, *, capacity: str = "tiny",
               tracker: str = "crepe", log: Callable[[str], None] = print
               ) -> list[dict]:
  """Rows of every SSVD v1 performance of input_pipeline.corpora.ssvd's manifest,
  the f0 from `tracker` (baselines.contours.TRACKERS) on the audio."""
  from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  result = ssvd.build_manifest(ssvd_dir)
  melody_of = {m["song_id"]: m["melody"] for m in result["melodies"]}
  rows = []
  for i, r in enumerate(result["rows"]):
    perf, _ = cache_lib.cached_contours(r["performance_audio"], cache_dir,
                                        capacity=capacity, tracker=tracker)
    ref, _ = cache_lib.cached_contours(r["reference_audio"], cache_dir,
                                       capacity=capacity, tracker=tracker)
    score = float(r["score"])
    row = {"performance_id": r["performance_id"], "melody": melody_of[r["song_id"]],
           "target": score, "passed": int(score >= SSVD_PASS_SCORE),
           "majority": score}
    try:
      row.update(histogram_lib.histogram_measures(perf.f0_hz))
    except ValueError as e:
      log(f"terms: no histogram measures for {r['performance_id']}: {e}")
    try:
      row.update(_row_terms(perf.f0_hz, [ref.f0_hz], perf_energy_db=perf.energy_db))
    except ValueError as e:
      log(f"terms: no aligned terms for {r['performance_id']}: {e}")
    try:
      row.update(voice_quality.voice_quality(
          audio_lib.load_audio(r["performance_audio"])))
    except (ValueError, audio_lib.AudioError) as e:
      log(f"terms: no voice quality for {r['performance_id']}: {e}")
    rows.append(row)
    log(f"terms: SSVD {i + 1}/{len(result['rows'])}")
  return rows


def write_table(rows: list[dict], path: str) -> None:
  """Writes rows as CSV (ID_COLUMNS then FEATURES; nan as empty), atomically."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with atomic.atomic_path(path) as tmp, open(tmp, "w", newline="",
                                             encoding="utf-8") as f:
    f.write(f"# term_table version {TABLE_VERSION}\n")
    w = csv.DictWriter(f, fieldnames=ID_COLUMNS + FEATURES, extrasaction="ignore")
    w.writeheader()
    for row in rows:
      w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v)
                  for k, v in row.items()})


def read_table(path: str) -> list[dict] | None:
  """Rows of a table written by `write_table`; None when missing or stale.

  Numbers come back as float (empty = nan); performance_id and melody as str.
  """
  if not os.path.isfile(path):
    return None
  with open(path, newline="", encoding="utf-8") as f:
    if f.readline().strip() != f"# term_table version {TABLE_VERSION}":
      return None
    rows = []
    for raw in csv.DictReader(f):
      row = {"performance_id": raw["performance_id"], "melody": raw["melody"]}
      for k, v in raw.items():
        if k not in row:
          row[k] = float(v) if v not in ("", None) else math.nan
      rows.append(row)
  return rows


def cached_table(corpus: str, path: str, *, mast_dir: str = "", ssvd_dir: str = "",
                 cache_dir: str = "", tracker: str = "crepe",
                 log: Callable[[str], None] = print) -> list[dict]:
  """The corpus's table, from `path` when current, else computed and written there
  (SSVD's f0 from `tracker`; the path must name the tracker's own table).

  Raises:
    ValueError: unknown corpus ('mast' or 'ssvd').
  """
  rows = read_table(path)
  if rows is not None:
    return rows
  if corpus == "mast":
    rows = mast_table(mast_dir, log=log)
  elif corpus == "ssvd":
    rows = ssvd_table(ssvd_dir, cache_dir, tracker=tracker, log=log)
  else:
    raise ValueError(f"unknown corpus {corpus!r}: 'mast' or 'ssvd'")
  write_table(rows, path)
  return read_table(path)
