"""Feature records: manifest -> segments -> (5, 96, 94) features -> ArrayRecord.

Paper 3.3 / Figure 5 (preprocessing pipeline): every voiced 3 s segment of a
performance and the reference clip "on the same position" become one record.

Layout of `records_dir`:
  build_config.json          settings that change the features (fingerprint)
  stats.json                 {"mean": [5], "std": [5], "channels": [5], ...}
  build_report.json          built / skipped performances and reasons, failed
                             shards, the manifest's path and SHA-256
  <split>/<shard>.array_record  one file per shard (a group of whole songs'
                             performances of one split), one record per segment
  <split>/<shard>.json       the shard's index, written LAST: {"shard", "split",
                             "records": [per-record metadata, file order],
                             "performances": [{performance_id, song_id, split,
                             spec, status 'built'|'skipped', reason, problems}]}

A record is `flax.serialization.msgpack_serialize` of dict(song_id, performance_id,
split, segment_start, reference_start, score (nan if none), transposition,
performance=float16 (5, 96, 94), reference=float16 (5, 96, 94)).

Shards (`Shard`, planned by input_pipeline/build.py) are named
`shard-<split>-<NNNNN>-<8 hex>`, the hex a SHA-1 of the shard's content (performance
ids, song ids, scores, audio paths, data.reference), so a changed manifest gives new
names. `build_shard` builds one shard and is pure and idempotent: its ArrayRecord is
written to a hidden temporary name and `os.replace`d to its final name, and only then
is its index JSON written (also atomically). A shard is complete iff its index exists;
a rebuilt shard returns the existing index. Phrase files (several manifest rows with
one performance_id) are processed row by row (own VAD and reference positions) and
filed under the one performance; a bad row is reported and the others are kept.

The build itself (`build_records`, input_pipeline/build.py) runs one Dask task per
incomplete shard, on a LocalCluster or an existing Dask cluster; a shard whose worker
keeps dying is reported, never waited on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import hashlib
import json
import os
import re
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from array_record.python import array_record_module
from flax import serialization

from asa_jax import atomic
from asa_jax.features import constants
from input_pipeline import manifest as manifest_lib
from input_pipeline import segments as segments_lib

FORMAT_VERSION = 2  # 2: one ArrayRecord + JSON index per shard of songs.
# group_size:1 gives O(1) random access per record (what Grain expects);
# records are float16 features, zstd level 1 compresses them cheaply.
WRITER_OPTIONS = "group_size:1,zstd:1"
_TMP_MARK = atomic.TMP_MARK


class RecordsConfigError(ValueError):
  """records_dir was built with other feature settings (names the differences)."""


@dataclasses.dataclass
class BuildReport:
  """What a `build_records` run did.

  Attributes:
    records_dir: the records folder.
    built: performance_ids written by this run.
    existing: performance_ids already complete (resumed, not recomputed).
    skipped: one dict per performance left out: performance_id, song_id,
      split, reason.
    problems: manifest rows left out and rows dropped from a kept performance
      ("<file>:<line>: <reason>" or "<performance_id>: <reason>").
    removed_stale: '<split>/<shard>' of complete shards that hold performances no
      longer in the manifest, or changed (deleted).
    num_records: split -> number of records of the manifest's performances.
    num_performances: split -> number of complete (built) performances.
    stats_source: 'train' (computed), the stats_from path, or None (no stats).
    worker_failures: one dict per shard whose Dask task still failed after its
      retries (an exception, or `distributed.KilledWorker` when its worker process
      kept dying: crash, signal, out of memory): shard, split, performance_ids,
      reason; its performances are also listed in `skipped`, and a rerun retries
      the shard.
    manifest: absolute path of the manifest the records were built from.
    manifest_sha256: SHA-256 of that manifest's bytes (evaluation reuses these
      records only when its manifest has the same path and hash).
  """
  records_dir: str
  built: list[str] = dataclasses.field(default_factory=list)
  existing: list[str] = dataclasses.field(default_factory=list)
  skipped: list[dict] = dataclasses.field(default_factory=list)
  problems: list[str] = dataclasses.field(default_factory=list)
  removed_stale: list[str] = dataclasses.field(default_factory=list)
  num_records: dict = dataclasses.field(default_factory=dict)
  num_performances: dict = dataclasses.field(default_factory=dict)
  stats_source: str | None = None
  worker_failures: list[dict] = dataclasses.field(default_factory=list)
  manifest: str | None = None
  manifest_sha256: str | None = None

  def to_json(self) -> dict:
    """The report as a JSON-serialisable dict (written to build_report.json)."""
    return dataclasses.asdict(self)

  def summary(self) -> str:
    """One human-readable paragraph."""
    per_split = ", ".join(
        f"{s}: {self.num_performances.get(s, 0)} performances / "
        f"{self.num_records.get(s, 0)} records" for s in manifest_lib.SPLITS)
    return (f"records in {self.records_dir}: {per_split}; built "
            f"{len(self.built)}, resumed {len(self.existing)}, skipped "
            f"{len(self.skipped)} performances, {len(self.problems)} row "
            f"problems, {len(self.worker_failures)} failed shards, stats from "
            f"{self.stats_source}")


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


# --- Record format and atomic writes. -----------------------------------------


def file_sha256(path: str) -> str:
  """Hex SHA-256 of a file's bytes (identifies the manifest a build used)."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def serialize_record(meta: dict, performance: np.ndarray,
                     reference: np.ndarray) -> bytes:
  """msgpack bytes of one record (see module docstring).

  Args:
    meta: needs song_id, performance_id, split, segment_start,
      reference_start, score (float|None), transposition.
    performance, reference: (5, 96, 94) features, stored as float16.
  """
  score = meta.get("score")
  return serialization.msgpack_serialize(dict(
      song_id=str(meta["song_id"]),
      performance_id=str(meta["performance_id"]),
      split=str(meta["split"]),
      segment_start=float(meta["segment_start"]),
      reference_start=float(meta["reference_start"]),
      score=float("nan") if score is None else float(score),
      transposition=int(meta["transposition"]),
      performance=np.asarray(performance, dtype=np.float16),
      reference=np.asarray(reference, dtype=np.float16),
  ))


def deserialize_record(data: bytes) -> dict:
  """Inverse of `serialize_record` (arrays stay float16 (5, 96, 94))."""
  return serialization.msgpack_restore(data)


_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _check_name(name: str) -> None:
  if not _NAME_RE.fullmatch(name) or _TMP_MARK in name:
    raise ValueError(f"shard name {name!r} is not file-name safe "
                     "([A-Za-z0-9._-], not starting with '.' or '-')")


@contextlib.contextmanager
def _shard_writer(records_dir: str, split: str,
                  name: str) -> Iterator[Callable[..., None]]:
  """Streams records into `<split>/<name>.array_record` (temporary name first).

  Yields `add(metas, performance, reference)`, which appends N records
  ((N, 5, 96, 94) features, N == len(metas)). When the block ends without an
  exception the file is moved to its final name; else the temporary is removed.
  The index is not written here (the caller writes it after the file).
  """
  _check_name(name)
  final = os.path.join(records_dir, split, f"{name}.array_record")
  with atomic.atomic_path(final) as tmp:
    writer = array_record_module.ArrayRecordWriter(tmp, WRITER_OPTIONS)

    def add(metas: list[dict], performance: np.ndarray,
            reference: np.ndarray) -> None:
      if len(metas) != len(performance) or len(metas) != len(reference):
        raise ValueError(
            f"{len(metas)} metadata entries for {len(performance)} performance "
            f"and {len(reference)} reference clips")
      for meta, p, r in zip(metas, performance, reference):
        writer.write(serialize_record(meta, p, r))

    try:
      yield add
    finally:
      writer.close()


def _performances_of(metas: list[dict], split: str) -> list[dict]:
  """Index 'performances' entries (all built) derived from record metadata."""
  out: dict[str, dict] = {}
  for m in metas:
    out.setdefault(str(m["performance_id"]), dict(
        performance_id=str(m["performance_id"]), song_id=str(m["song_id"]),
        split=split, status="built", problems=[]))
  return list(out.values())


def write_shard(records_dir: str, split: str, name: str, metas: list[dict],
                performance: np.ndarray, reference: np.ndarray,
                performances: list[dict] | None = None) -> str:
  """Writes one shard's ArrayRecord + index JSON, crash-safe.

  Args:
    records_dir: records root.
    split: 'train' | 'validation' | 'test' (sub-folder).
    name: the shard's file-name-safe name (`[A-Za-z0-9._-]`).
    metas: per-record metadata in file order (JSON-serialisable; needs the
      fields of `serialize_record`; score None when unknown).
    performance, reference: (N, 5, 96, 94) features (stored as float16),
      N == len(metas).
    performances: the index's 'performances' entries (see module docstring);
      default: one 'built' entry per performance_id of `metas`.

  Returns:
    The .array_record path. The index <name>.json exists only after the record
    file is complete under its final name.

  Raises:
    ValueError: an unsafe name, or lengths that differ.
  """
  with _shard_writer(records_dir, split, name) as add:
    add(metas, performance, reference)
  _write_index(records_dir, split, name, list(metas),
               _performances_of(metas, split) if performances is None
               else performances)
  return os.path.join(records_dir, split, f"{name}.array_record")


def _write_index(records_dir: str, split: str, name: str, metas: list[dict],
                 performances: list[dict]) -> dict:
  index = dict(shard=name, split=split, records=metas,
               performances=performances)
  atomic.write_json(os.path.join(records_dir, split, f"{name}.json"), index)
  return index


def read_index(records_dir: str, split: str, key: str) -> dict:
  """The index of a complete shard: {"shard", "split", "records",
  "performances"} (see module docstring).

  An index written as a plain list of record metadata (test fixtures) is
  returned with 'performances' derived from the records (all 'built').

  Raises:
    FileNotFoundError: no such index; ValueError: not JSON.
  """
  with open(os.path.join(records_dir, split, f"{key}.json"),
            encoding="utf-8") as f:
    index = json.load(f)
  if isinstance(index, list):
    return dict(shard=key, split=split, records=index,
                performances=_performances_of(index, split))
  return index


def read_sidecar(records_dir: str, split: str, key: str) -> list[dict]:
  """The per-record metadata list (file order) of complete shard `key`.

  Raises:
    FileNotFoundError: no such index.
  """
  return read_index(records_dir, split, key)["records"]


def complete_keys(records_dir: str, split: str) -> list[str]:
  """Sorted names of the complete shards of a split folder (index JSON and
  .array_record both present)."""
  paths = glob.glob(os.path.join(glob.escape(records_dir), split, "*.json"))
  keys = []
  for path in paths:
    key = os.path.basename(path)[:-len(".json")]
    if _TMP_MARK in key or key.startswith("."):
      continue
    if os.path.exists(os.path.join(records_dir, split, f"{key}.array_record")):
      keys.append(key)
  return sorted(keys)


def complete_performances(records_dir: str) -> dict[str, str]:
  """performance_id -> split of every performance built in a complete shard."""
  out = {}
  for split in manifest_lib.SPLITS:
    for key in complete_keys(records_dir, split):
      for entry in read_index(records_dir, split, key)["performances"]:
        if entry.get("status") == "built":
          out[entry["performance_id"]] = split
  return out


def remove_temporaries(records_dir: str) -> None:
  """Deletes the temporary files of writes cut short (a killed worker) anywhere under
  `records_dir`. Call only while no build writes there."""
  # Hidden names (".<key>.array_record.tmp-<pid>") need include_hidden.
  for path in glob.glob(os.path.join(glob.escape(records_dir), "**",
                                     f"*{_TMP_MARK}*"), recursive=True,
                        include_hidden=True):
    os.remove(path)


# --- Build configuration fingerprint. -----------------------------------------


def build_fingerprint(config) -> dict:
  """The settings that change record contents (stored in build_config.json)."""
  d = config.data
  fp = dict(
      format_version=FORMAT_VERSION,
      sample_rate=constants.SAMPLE_RATE,
      clip_samples=constants.CLIP_SAMPLES,
      hop_length=constants.HOP_LENGTH,
      feature_shape=list(constants.FEATURE_SHAPE),
      channels=list(constants.CHANNELS),
      crepe_capacity=config.features.crepe_capacity,
      reference=d.reference,
      segment_hop_seconds=float(d.segment_hop_seconds),
      vad_mode=int(d.vad_mode),
      vad_frame_ms=int(d.vad_frame_ms),
      min_voiced_fraction=float(d.min_voiced_fraction),
      alignment=d.alignment,
      min_seconds=float(d.min_seconds),
      vad_max_gap_seconds=segments_lib.MAX_GAP_SECONDS,
  )
  if d.alignment == "dtw":
    fp["reference_grid_seconds"] = float(d.reference_grid_seconds)
  return fp


def check_fingerprint(records_dir: str, config) -> None:
  """Writes records_dir/build_config.json (`build_fingerprint`) on a new folder; on an
  existing one, checks that it was built with the same settings.

  Raises:
    RecordsConfigError: the folder was built with other settings (names them).
  """
  path = os.path.join(records_dir, "build_config.json")
  fp = build_fingerprint(config)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      old = json.load(f)
    diffs = [f"{k}: built with {old.get(k)!r}, config has {fp.get(k)!r}"
             for k in sorted(set(old) | set(fp)) if old.get(k) != fp.get(k)]
    if diffs:
      raise RecordsConfigError(
          f"{records_dir} holds records built with other feature settings ("
          + "; ".join(diffs) + "). Use another records_dir or delete this one.")
  else:
    os.makedirs(records_dir, exist_ok=True)
    atomic.write_json(path, fp)


# --- Statistics (normalisation, computed on the train split). ------------------


def compute_stats(records_dir: str, keys: Iterable[str],
                  split: str = "train") -> dict | None:
  """Per-channel mean/std over all performance AND reference clips of shards `keys`.

  Returns:
    {"mean": [5], "std": [5], "channels": [5 names], "num_clips": int,
     "split": split}, std floored at 1e-6; None when there are no records.
  """
  c = constants.N_CHANNELS
  total = np.zeros(c, np.float64)
  total_sq = np.zeros(c, np.float64)
  count = 0
  n_clips = 0
  for key in keys:
    path = os.path.join(records_dir, split, f"{key}.array_record")
    reader = array_record_module.ArrayRecordReader(path)
    try:
      n = reader.num_records()
      for start in range(0, n, 64):
        for data in reader.read(list(range(start, min(n, start + 64)))):
          rec = deserialize_record(data)
          for name in ("performance", "reference"):
            x = rec[name].astype(np.float64).reshape(c, -1)
            total += x.sum(axis=1)
            total_sq += (x * x).sum(axis=1)
            count += x.shape[1]
            n_clips += 1
    finally:
      reader.close()
  if count == 0:
    return None
  mean = total / count
  std = np.sqrt(np.maximum(total_sq / count - mean * mean, 0.0))
  std = np.maximum(std, 1e-6)
  return dict(mean=[float(v) for v in mean], std=[float(v) for v in std],
              channels=list(constants.CHANNELS), num_clips=n_clips, split=split)


def load_stats(path: str | os.PathLike) -> dict:
  """Reads a stats.json (or <folder>/stats.json); checks its keys and length.

  Raises:
    FileNotFoundError: no stats file (the message says where it comes from).
    ValueError: keys missing or not the 5 channels, with the path.
  """
  path = os.fspath(path)
  if os.path.isdir(path):
    path = os.path.join(path, "stats.json")
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path}: training statistics not found; the records build writes "
        "records_dir/stats.json, train.py copies it into the workdir, and evaluation "
        "normalises with them")
  with open(path, encoding="utf-8") as f:
    stats = json.load(f)
  for k in ("mean", "std", "channels"):
    if k not in stats:
      raise ValueError(f"{path}: stats lack {k!r}")
  if list(stats["channels"]) != list(constants.CHANNELS) or not (
      len(stats["mean"]) == len(stats["std"]) == constants.N_CHANNELS):
    raise ValueError(
        f"{path}: stats must cover channels {list(constants.CHANNELS)}, have "
        f"{stats['channels']}")
  return stats


# --- Building one shard (runs on a Dask worker). -------------------------------


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
  only a temporary file (removed by the next `build_records`). For each song of the
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
    return read_index(shard.records_dir, shard.split, shard.name)
  extractor = extractor or extract_features
  songs: dict[str, list[Performance]] = {}
  for perf in shard.performances:
    songs.setdefault(perf.song_id, []).append(perf)
  metas: list[dict] = []
  entries: list[dict] = []
  with _shard_writer(shard.records_dir, shard.split, shard.name) as add:
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
  return _write_index(shard.records_dir, shard.split, shard.name, metas, entries)


def build_records(manifest_path: str, records_dir: str, config, *,
                  stats_from: str | None = None) -> BuildReport:
  """Builds (or resumes) the feature records of a manifest on Dask.

  The implementation is `input_pipeline.build.build_records` (see there for the
  arguments, the returned BuildReport and the errors raised); this name is the
  entry point the trainer and evaluation call.
  """
  from input_pipeline import build  # pylint: disable=g-import-not-at-top
  return build.build_records(manifest_path, records_dir, config,
                             stats_from=stats_from)
