"""Builds one shard of feature records (a Dask task of input_pipeline/build.py).

`build_shard` turns whole songs' performances of one split into one ArrayRecord and
its index (format: input_pipeline/records.py). It is pure and idempotent: a complete
shard returns its existing index, and an interrupted one leaves only a temporary
file. Phrase files (several manifest rows with one performance_id) are processed row
by row (own VAD and reference positions) and filed under the one performance; a bad
row is reported and the others are kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Iterator

import numpy as np

from asa_jax.features import constants
from input_pipeline import records as records_lib
from input_pipeline import segments as segments_lib


# --- Indirections to the features package (tests replace these). -------------


def extract_features(clips: np.ndarray, *, crepe_capacity: str) -> np.ndarray:
  """(B, 48000) float32 -> (B, 5, 96, 94) float32 via asa_jax.features.extract."""
  from asa_jax.features import extract  # pylint: disable=g-import-not-at-top
  return extract.extract_features(
      clips, channels=constants.CHANNELS, crepe_capacity=crepe_capacity)


def clip_at(audio: np.ndarray, start_seconds: float) -> np.ndarray:
  """(48000,) float32 clip from `start_seconds` (zero-padded past the end)."""
  from asa_jax.features import extract  # pylint: disable=g-import-not-at-top
  return extract.clip_at(audio, start_seconds)


def load_audio(path: str, *, min_seconds: float) -> np.ndarray:
  """16 kHz mono float32 (n,); raises asa_jax.features.audio.AudioError."""
  from asa_jax.features import audio  # pylint: disable=g-import-not-at-top
  return audio.load_audio(path, sample_rate=constants.SAMPLE_RATE,
                          min_seconds=min_seconds)


def _audio_error_type():
  from asa_jax.features import audio  # pylint: disable=g-import-not-at-top
  return audio.AudioError


@dataclasses.dataclass
class Performance:
  """One performance of the manifest: its rows (phrase files: several rows).

  Attributes:
    performance_id, song_id, split: as in the manifest.
    score: the performance's score (None when unknown).
    rows: its `manifest.ManifestRow`s, manifest order.
  """
  performance_id: str
  song_id: str
  split: str
  score: float | None
  rows: list


@dataclasses.dataclass
class Shard:
  """One unit of work of the feature build: whole songs' performances of a split.

  Attributes:
    records_dir: the records root (absolute) the shard is written under.
    split: 'train' | 'validation' | 'test'.
    name: `shard-<split>-<NNNNN>-<8 hex>` (input_pipeline.build.plan_shards).
    performances: the performances, songs in manifest order; a song's
      performances are all in one shard.
  """
  records_dir: str
  split: str
  name: str
  performances: list[Performance]


def performance_spec(perf: Performance, reference: str) -> str:
  """SHA-1 hex of what a performance's records are built from: performance id,
  song id, score, the audio paths of its rows, and data.reference (not its
  split: refiled records keep their spec)."""
  spec = dict(performance_id=perf.performance_id, song_id=perf.song_id,
              score=perf.score, reference=reference,
              rows=[[r.performance_audio, r.reference_audio,
                     r.accompaniment_audio] for r in perf.rows])
  return hashlib.sha1(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()


Extractor = Callable[..., np.ndarray]


def extract_batched(clips: list[np.ndarray], config,
                    extractor: Extractor | None = None) -> np.ndarray:
  """Features of (N, 48000) clips in batches of data.extract_batch_size: float16
  (N, 5, 96, 94), as stored in the records. `extractor` defaults to this module's
  `extract_features` (read at call time)."""
  extractor = extractor or extract_features
  batch = int(config.data.extract_batch_size)
  out = []
  for i in range(0, len(clips), batch):
    feats = extractor(np.stack(clips[i:i + batch]).astype(np.float32),
                      crepe_capacity=config.features.crepe_capacity)
    feats = np.asarray(feats)
    if feats.shape[1:] != constants.FEATURE_SHAPE:
      raise ValueError(f"extract_features returned {feats.shape}, expected "
                       f"(B,) + {constants.FEATURE_SHAPE}")
    out.append(feats.astype(np.float16))
  return np.concatenate(out, axis=0)


def _build_song(performances: list[Performance], config,
                extractor: Extractor) -> Iterator[dict]:
  """Builds the performances of one song; yields one result dict each.

  A built performance gives dict(status='built', performance_id, problems,
  metas, performance (N, 5, 96, 94) float16, reference (N, 5, 96, 94) float16);
  one without usable rows gives dict(status='skipped', performance_id, song_id,
  split, reason).

  Reference audio, its pitch-class profile and its clip features are cached per song
  keyed by (reference file, reference_start), so performances sharing grid
  positions reuse the reference features.

  Raises:
    AudioError / ValueError: unusable audio when data.on_error == 'raise'.
  """
  audio_error = _audio_error_type()
  raise_errors = config.data.on_error == "raise"
  min_seconds = float(config.data.min_seconds)
  ref_audio: dict[str, Any] = {}
  ref_profile: dict[str, np.ndarray] = {}
  ref_feats: dict[tuple[str, float], np.ndarray] = {}

  def get_reference(path: str) -> np.ndarray:
    if path not in ref_audio:
      try:
        ref_audio[path] = load_audio(path, min_seconds=min_seconds)
      except audio_error as e:
        ref_audio[path] = e
    value = ref_audio[path]
    if isinstance(value, Exception):
      raise value
    return value

  for perf in performances:
    metas, perf_clips, ref_keys = [], [], []
    pending_ref: dict[tuple[str, float], np.ndarray] = {}
    problems = []
    for row in perf.rows:
      ref_path = (row.reference_audio if config.data.reference == "original"
                  else row.accompaniment_audio)
      where = f"{row.performance_audio} (manifest line {row.line})"
      try:
        if ref_path is None:
          raise ValueError(
              "no accompaniment_audio, needed for data.reference "
              "'accompaniment'")
        audio = load_audio(row.performance_audio, min_seconds=min_seconds)
        ref = get_reference(ref_path)
      except (audio_error, ValueError) as e:
        if raise_errors:
          raise
        problems.append(f"{where}: {e}")
        continue
      if ref_path not in ref_profile:
        ref_profile[ref_path] = segments_lib.pitch_class_profile(ref)
      transposition = segments_lib.transposition_from_profiles(
          segments_lib.pitch_class_profile(audio), ref_profile[ref_path])
      segs = segments_lib.plan_segments(audio, ref, config,
                                        transposition=transposition)
      if not segs:
        problems.append(f"{where}: no voiced 3 s segment found")
        continue
      for seg in segs:
        ref_key = (ref_path, seg.reference_start)
        if ref_key not in ref_feats and ref_key not in pending_ref:
          pending_ref[ref_key] = clip_at(ref, seg.reference_start)
        ref_keys.append(ref_key)
        perf_clips.append(clip_at(audio, seg.start))
        metas.append(dict(
            index=len(metas), song_id=perf.song_id,
            performance_id=perf.performance_id, split=perf.split,
            segment_start=seg.start, reference_start=seg.reference_start,
            reference_span=seg.reference_span,
            voiced_fraction=seg.voiced_fraction, score=perf.score,
            transposition=int(transposition),
            performance_audio=row.performance_audio, reference_file=ref_path))
    if not metas:
      reason = "; ".join(problems) or "no usable rows"
      yield dict(status="skipped", performance_id=perf.performance_id,
                 song_id=perf.song_id, split=perf.split, reason=reason)
      continue
    pending_keys = list(pending_ref)
    feats = extract_batched(perf_clips + [pending_ref[k] for k in pending_keys],
                            config, extractor)
    for k, f in zip(pending_keys, feats[len(perf_clips):]):
      ref_feats[k] = f
    yield dict(status="built", performance_id=perf.performance_id,
               problems=[f"{perf.performance_id}: {p}" for p in problems],
               metas=metas, performance=feats[:len(perf_clips)],
               reference=np.stack([ref_feats[k] for k in ref_keys]))


def is_shard_complete(shard: Shard) -> bool:
  """True iff the shard's index JSON (written last) exists."""
  return os.path.exists(os.path.join(shard.records_dir, shard.split,
                                     f"{shard.name}.json"))


def build_shard(shard: Shard, config, extractor: Extractor | None = None) -> dict:
  """Builds every performance of one shard into one ArrayRecord + index.

  Pure and idempotent (a Dask task, retried after a failure or a dead worker): a
  complete shard is not rebuilt, its index is returned; an interrupted one leaves
  only a temporary file (removed by the next `build.build_records`). For each song of the
  shard (`_build_song`): load audio (16 kHz), VAD segments on the grid
  (`segments.plan_segments`), transposition, clip features of the performance and
  of the reference clip at the reference position. Records are streamed to the
  file performance by performance (one performance's features in memory at once).

  The extractor is called as `extractor((B, 48000) float32, crepe_capacity=...)
  -> (B, 5, 96, 94)`. The default, this module's `extract_features`, keeps the
  CREPE weights and jitted functions in module-level caches
  (asa_jax.features.crepe), so a worker process loads them once, at its first
  shard, and reuses them for every later shard; nothing here reloads them.

  Args:
    shard: the shard (records_dir, split, name, performances).
    config: ConfigDict; reads config.data.* (on_error, reference, min_seconds,
      extract_batch_size, segmentation fields) and
      config.features.crepe_capacity.
    extractor: feature function (default: `extract_features`, read at call time).

  Returns:
    The shard's index dict (see the module docstring; also on disk).

  Raises:
    AudioError / ValueError: unusable audio when data.on_error == 'raise'.
    Whatever the extractor raises.
  """
  if is_shard_complete(shard):
    return records_lib.read_index(shard.records_dir, shard.split, shard.name)
  extractor = extractor or extract_features
  songs: dict[str, list[Performance]] = {}
  for perf in shard.performances:
    songs.setdefault(perf.song_id, []).append(perf)
  metas: list[dict] = []
  entries: list[dict] = []
  with records_lib.shard_writer(shard.records_dir, shard.split, shard.name) as add:
    for perfs in songs.values():
      for perf, res in zip(perfs, _build_song(perfs, config, extractor)):
        entry = dict(performance_id=perf.performance_id, song_id=perf.song_id,
                     split=shard.split,
                     spec=performance_spec(perf, config.data.reference),
                     status=res["status"])
        if res["status"] == "built":
          add(res["metas"], res["performance"], res["reference"])
          metas.extend(res["metas"])
          entry["problems"] = res["problems"]
        else:
          entry["reason"] = res["reason"]
          entry["problems"] = []
        entries.append(entry)
  return records_lib.write_index(shard.records_dir, shard.split, shard.name, metas,
                                 entries)
