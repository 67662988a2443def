"""Scores every performance of a manifest with the rule-based baselines (4.2).

`score_baselines` is the baselines' counterpart of
`asa_jax.evaluation.scoring.score_performances`: one `PerformanceScore`
(asa_jax/performance_score.py) per performance and baseline, `predicted` oriented so
that higher = better singing, `human` the manifest score (paper 4.1: the judges' mean).

Phrase rows (several manifest rows sharing a performance_id) are pooled: the
histogram measures (4.2.1) take the voiced f0 of all the performance's phrase
files together (one histogram per performance); the DTW ratings (4.2.2, and
dtw_melody) compare each phrase file with its own row's reference and average
the ratings weighted by the phrase's number of frames.

Bad input is never fatal: a manifest row that fails validation (e.g. a missing
audio file), a performance whose (or whose reference's) audio cannot be used
(asa_jax.features.audio.AudioError: unreadable, empty, silent, ...), or a
measure that cannot be computed (e.g. no voiced frames) leaves that performance
out of the affected measures and is reported through `log`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from asa_jax.baselines import cache as cache_lib
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw as dtw_lib
from asa_jax.baselines import dtw_melody as dtw_melody_lib
from asa_jax.baselines import histogram as histogram_lib
from asa_jax.baselines import names as baseline_names
from asa_jax.baselines import term_ratings
from asa_jax.performance_score import PerformanceScore
from input_pipeline import manifest as manifest_lib

# Ratings against the row's reference: name -> rating(perf, ref contours).
REFERENCE_RATINGS = {**dtw_lib.DTW_RATINGS, **dtw_melody_lib.RATINGS,
                     **term_ratings.RATINGS}
# Ratings of the performance's audio alone (Praat voice quality, issue 18).
AUDIO_RATINGS = term_ratings.AUDIO_RATINGS
NAMES = (baseline_names.HISTOGRAM + tuple(REFERENCE_RATINGS)
         + tuple(AUDIO_RATINGS))


def needs_reference(name: str) -> bool:
  """Whether baseline `name` rates against a reference (paper 4.2.2) or not (4.2.1)."""
  return name in REFERENCE_RATINGS


def rating_function(name: str) -> Callable[[contours_lib.Contours,
                                            contours_lib.Contours | None], float]:
  """(performance contours, reference contours or None) -> rating, higher = better.

  The histogram measures (paper 4.2.1) read the performance's f0 only; the DTW
  ratings (4.2.2, Molina 2013) compare with the reference.

  Raises:
    ValueError: unknown name (lists the known ones); the returned function raises
      ValueError when a contour has too few voiced frames, or a reference rating
      gets no reference.
  """
  if name in REFERENCE_RATINGS:
    rating = REFERENCE_RATINGS[name]

    def rate(perf, ref):
      if ref is None:
        raise ValueError(f"baseline {name} needs reference contours")
      return float(rating(perf, ref))
    return rate
  if name in baseline_names.HISTOGRAM:
    return lambda perf, ref: float(histogram_lib.histogram_measures(perf.f0_hz)[name])
  if name in AUDIO_RATINGS:
    raise ValueError(f"baseline {name} rates the performance's audio, not contours: "
                     f"use term_ratings.AUDIO_RATINGS[{name!r}](audio_path)")
  raise ValueError(f"unknown baseline {name!r}; known: {list(NAMES)}")


@dataclasses.dataclass
class _Performance:
  song_id: str
  performance_id: str
  human: float | None
  rows: list = dataclasses.field(default_factory=list)


def _splits(split: str) -> set[str]:
  if split == "all":
    return set(manifest_lib.SPLITS)
  wanted = {s.strip() for s in split.split(",") if s.strip()}
  unknown = wanted - set(manifest_lib.SPLITS)
  if not wanted or unknown:
    raise ValueError(f"split must be 'all' or comma-separated names from "
                     f"{manifest_lib.SPLITS}, got {split!r}")
  return wanted


def _group(rows) -> list[_Performance]:
  perfs: dict[tuple[str, str], _Performance] = {}
  for row in rows:
    key = (row.song_id, row.performance_id)
    if key not in perfs:
      perfs[key] = _Performance(row.song_id, row.performance_id, row.score)
    perfs[key].rows.append(row)
  return list(perfs.values())


def score_baselines(manifest_path: str, names: Sequence[str], *,
                    split: str = "all", cache_dir: str,
                    crepe_capacity: str = "tiny",
                    log: Callable[[str], None] = print
                    ) -> dict[str, list[PerformanceScore]]:
  """Scores a manifest's performances with rule-based baselines (paper 4.2).

  Args:
    manifest_path: manifest CSV (input_pipeline.manifest format).
    names: baseline names, each a key of asa_jax.baselines.names.REFERENCE_USED:
      'kurtosis', 'skewness', 'peakBW', 'peakConc50', 'peakConc110', 'kMeans',
      'binning' (4.2.1; performance only), 'dtw_pitch', 'dtw_volume',
      'dtw_rhythm' (4.2.2; against the row's reference_audio) and
      'dtw_melody' (Molina et al. 2013, key- and tempo-invariant; against
      the row's reference_audio); the measured terms of issue 18
      (names.MEASURED, against the reference after dtw_melody's alignment) and
      the voice quality (names.VOICE_QUALITY, the performance audio alone).
    split: 'all', or a split name ('train', 'validation', 'test'), or several
      comma-separated.
    cache_dir: folder of the per-audio-file contour cache (npz; reused by
      later calls).
    crepe_capacity: CREPE capacity for the f0, 'tiny' or 'full'.
    log: called with one line per skipped row / performance / measure and a
      final summary.

  Returns:
    {name: [PerformanceScore(song_id, performance_id, predicted, human)]} for
    every requested name, performances in manifest order; predicted is the
    baseline's score, higher = better singing; human is the manifest score or
    None. Performances that could not be scored are left out (and logged).

  Raises:
    ValueError: an unknown name or split.
    input_pipeline.manifest.ManifestError: the manifest file itself is missing
      or has no valid header (bad rows are skipped and logged instead).
  """
  names = list(names)
  unknown = [n for n in names if n not in NAMES]
  if unknown:
    raise ValueError(f"unknown baseline(s) {unknown}; known: {list(NAMES)}")
  wanted_splits = _splits(split)
  rows, problems = manifest_lib.read_manifest(manifest_path, on_error="skip")
  for problem in problems:
    log(f"baselines: skipped manifest row: {problem}")
  perfs = _group(r for r in rows if r.split in wanted_splits)
  hist_names = [n for n in names if n in baseline_names.HISTOGRAM]
  dtw_names = [n for n in names if n in REFERENCE_RATINGS]
  audio_names = [n for n in names if n in AUDIO_RATINGS]
  out: dict[str, list[PerformanceScore]] = {n: [] for n in names}
  memo: dict[str, contours_lib.Contours | Exception] = {}
  n_cached = n_computed = n_skipped = 0

  def contours(path: str) -> contours_lib.Contours:
    nonlocal n_cached, n_computed
    if path not in memo:
      try:
        c, from_cache = cache_lib.cached_contours(path, cache_dir,
                                                  capacity=crepe_capacity)
        n_cached += from_cache
        n_computed += not from_cache
        memo[path] = c
      except Exception as e:  # pylint: disable=broad-except  (bad audio)
        memo[path] = e
    value = memo[path]
    if isinstance(value, Exception):
      raise value
    return value

  for i, perf in enumerate(perfs):
    label = f"{perf.song_id}/{perf.performance_id}"
    try:
      perf_c = [contours(r.performance_audio) for r in perf.rows]
      ref_c = [contours(r.reference_audio) for r in perf.rows] if dtw_names \
          else []
    except Exception as e:  # pylint: disable=broad-except
      n_skipped += 1
      log(f"baselines: skipped performance {label}: {e}")
      continue
    scores: dict[str, float] = {}
    if hist_names:
      try:
        pooled = np.concatenate([c.f0_hz for c in perf_c])
        measures = histogram_lib.histogram_measures(pooled)
        scores.update({n: measures[n] for n in hist_names})
      except ValueError as e:
        log(f"baselines: no histogram measures for {label}: {e}")
    weights = np.array([c.n_frames for c in perf_c], np.float64)
    for name in dtw_names:
      try:
        ratings = [REFERENCE_RATINGS[name](p, r)
                   for p, r in zip(perf_c, ref_c)]
        scores[name] = float(np.average(ratings, weights=weights))
      except ValueError as e:
        log(f"baselines: no {name} for {label}: {e}")
    for name in audio_names:
      try:
        ratings = [AUDIO_RATINGS[name](r.performance_audio) for r in perf.rows]
        scores[name] = float(np.average(ratings, weights=weights))
      except Exception as e:  # pylint: disable=broad-except  (bad audio)
        log(f"baselines: no {name} for {label}: {e}")
    for name in names:
      if name in scores and np.isfinite(scores[name]):
        out[name].append(PerformanceScore(perf.song_id, perf.performance_id,
                                          float(scores[name]), perf.human))
    if (i + 1) % 25 == 0:
      log(f"baselines: {i + 1}/{len(perfs)} performances")
  log(f"baselines: {len(perfs) - n_skipped} of {len(perfs)} performances "
      f"scored, {n_skipped} skipped; contours: {n_computed} computed, "
      f"{n_cached} from cache ({cache_dir})")
  return out
