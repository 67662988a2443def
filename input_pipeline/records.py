"""The feature record format: ArrayRecord shards, their JSON index, and the one reader.

Paper 3.3 / Figure 5 (preprocessing pipeline): every voiced 3 s segment of a
performance and the reference clip "on the same position" become one record.
This module owns the format: writing a shard (`write_shard`, `shard_writer`),
reading one (`read_records`, `split_source`; nothing else opens the files), the
index, the build fingerprint and the normalisation statistics.

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

Shards (`input_pipeline.shard.Shard`, planned by input_pipeline/build.py) are named
`shard-<split>-<NNNNN>-<8 hex>`, the hex a SHA-1 of the shard's content (performance
ids, song ids, scores, audio paths, data.reference), so a changed manifest gives new
names. A shard's ArrayRecord is written to a hidden temporary name and `os.replace`d
to its final name, and only then is its index JSON written (also atomically). A shard
is complete iff its index exists.

Building one shard is input_pipeline/shard.py (`build_shard`); the build itself
(`build_records`, input_pipeline/build.py) runs one Dask task per incomplete shard.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
from typing import Callable, Iterable, Iterator

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


class RecordsConfigError(ValueError):
  """records_dir was built with other feature settings (names the differences)."""


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
  if not _NAME_RE.fullmatch(name) or atomic.TMP_MARK in name:
    raise ValueError(f"shard name {name!r} is not file-name safe "
                     "([A-Za-z0-9._-], not starting with '.' or '-')")


@contextlib.contextmanager
def shard_writer(records_dir: str, split: str,
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
  with shard_writer(records_dir, split, name) as add:
    add(metas, performance, reference)
  write_index(records_dir, split, name, list(metas),
               _performances_of(metas, split) if performances is None
               else performances)
  return os.path.join(records_dir, split, f"{name}.array_record")


def write_index(records_dir: str, split: str, name: str, metas: list[dict],
                performances: list[dict]) -> dict:
  """Writes (atomically) and returns the index of shard `name`: {"shard", "split",
  "records": metas, "performances"}; write it only after the shard's ArrayRecord."""
  index = dict(shard=name, split=split, records=metas,
               performances=performances)
  atomic.write_json(os.path.join(records_dir, split, f"{name}.json"), index)
  return index


def read_index(records_dir: str, split: str, key: str) -> dict:
  """The index of a complete shard: {"shard", "split", "records",
  "performances"} (see module docstring).

  Raises:
    FileNotFoundError: no such index; ValueError: not JSON, or not an index
      object (names the file).
  """
  path = os.path.join(records_dir, split, f"{key}.json")
  with open(path, encoding="utf-8") as f:
    index = json.load(f)
  if not isinstance(index, dict) or "records" not in index:
    raise ValueError(f"{path}: not a shard index (an object with 'records')")
  return index


def read_records(records_dir: str, split: str, key: str,
                 positions: Iterable[int] | None = None) -> Iterator[dict]:
  """Decoded records (`deserialize_record`) of shard `key`, in `positions` order
  (default: every record, file order), read in blocks of 64."""
  path = os.path.join(records_dir, split, f"{key}.array_record")
  reader = array_record_module.ArrayRecordReader(path)
  try:
    wanted = (list(range(reader.num_records())) if positions is None
              else [int(p) for p in positions])
    for start in range(0, len(wanted), 64):
      for data in reader.read(wanted[start:start + 64]):
        yield deserialize_record(data)
  finally:
    reader.close()


class SplitSource:
  """Random access to every record of a split's complete shards (global order:
  shards by name, records in file order), through one Grain `ArrayRecordDataSource`.

  Attributes:
    metadata: per-record index metadata, global order (len = number of records).
  """

  def __init__(self, records_dir: str, split: str):
    import grain  # pylint: disable=g-import-not-at-top
    self.metadata: list[dict] = []
    paths = []
    for key in complete_keys(records_dir, split):
      metas = read_index(records_dir, split, key)["records"]
      if not metas:
        continue
      path = os.path.join(records_dir, split, f"{key}.array_record")
      # "path[start:end]" lets Grain skip opening every file to count records.
      paths.append(f"{path}[0:{len(metas)}]")
      self.metadata.extend(metas)
    self._source = grain.sources.ArrayRecordDataSource(paths) if paths else None

  def __len__(self) -> int:
    return len(self.metadata)

  def read(self, indices: list[int]) -> list[dict]:
    """Decoded records at global `indices` (one batched read)."""
    if not indices:
      return []
    return [deserialize_record(x) for x in self._source.__getitems__(list(indices))]


def complete_keys(records_dir: str, split: str) -> list[str]:
  """Sorted names of the complete shards of a split folder (index JSON and
  .array_record both present)."""
  paths = glob.glob(os.path.join(glob.escape(records_dir), split, "*.json"))
  keys = []
  for path in paths:
    key = os.path.basename(path)[:-len(".json")]
    if atomic.TMP_MARK in key or key.startswith("."):
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
                                     f"*{atomic.TMP_MARK}*"), recursive=True,
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
    for rec in read_records(records_dir, split, key):
      for name in ("performance", "reference"):
        x = rec[name].astype(np.float64).reshape(c, -1)
        total += x.sum(axis=1)
        total_sq += (x * x).sum(axis=1)
        count += x.shape[1]
        n_clips += 1
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
