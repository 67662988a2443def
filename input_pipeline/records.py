"""Feature records: manifest -> segments -> (5, 96, 94) features -> ArrayRecord.

Paper 3.3 / Figure 5 (preprocessing pipeline): every voiced 3 s segment of a
performance and the reference clip "on the same position" become one record.

Layout of `records_dir`:
  build_config.json          settings that change the features (fingerprint)
  stats.json                 {"mean": [5], "std": [5], "channels": [5], ...}
  build_report.json          built / skipped performances and reasons, dead
                             workers, the manifest's path and SHA-256
  <split>/<key>.array_record one file per performance, one record per segment
  <split>/<key>.json         per-record metadata (same order), written LAST
  .inflight/<pid>.json       during a multi-worker build: what each worker builds

A record is `flax.serialization.msgpack_serialize` of dict(song_id, performance_id,
split, segment_start, reference_start, score (nan if none), transposition,
performance=float16 (5, 96, 94), reference=float16 (5, 96, 94)).

Writing is crash-safe and resumable: a performance's ArrayRecord is written to a
hidden temporary name, `os.replace`d to its final name, and only then is its
sidecar JSON written (also via a temporary file + `os.replace`). A performance is
complete iff its sidecar exists; a rerun skips complete ones and deletes leftover
temporary files. Phrase files (several manifest rows with one performance_id) are
processed row by row (own VAD and reference positions) and filed under the one
performance; a bad row is reported and the others are kept.

With data.build_workers > 1, songs are built on a spawned ProcessPoolExecutor after
one process has filled numba's cache (asa_jax.numba_cache). A worker that dies is
reported, never waited on: see `_run_pool`.
"""

from __future__ import annotations

import collections
import dataclasses
import glob
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import sys
from concurrent import futures
from concurrent.futures import process as futures_process
from typing import Any, Callable, Iterable

import numpy as np
from array_record.python import array_record_module
from flax import serialization

from asa_jax import atomic
from asa_jax.features import constants
from input_pipeline import manifest as manifest_lib
from input_pipeline import segments as segments_lib

FORMAT_VERSION = 1
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
    removed_stale: '<split>/<key>' of complete performances no longer in the
      manifest (deleted).
    num_records: split -> number of records of the manifest's performances.
    num_performances: split -> number of complete performances.
    stats_source: 'train' (computed), the stats_from path, or None (no stats).
    worker_failures: one dict per performance whose worker process died (crash,
      signal, out of memory): performance_id, split, attempts, reason; such a
      performance was retried once alone in a fresh process and, if that died too,
      is also listed in `skipped`.
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
            f"problems, {len(self.worker_failures)} dead workers, stats from "
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


def performance_key(performance_id: str) -> str:
  """File-name-safe key of a performance_id (a hash suffix when characters change)."""
  safe = re.sub(r"[^A-Za-z0-9._-]", "_", performance_id).strip(".")
  if safe != performance_id or not safe:
    digest = hashlib.sha1(performance_id.encode("utf-8")).hexdigest()[:8]
    safe = f"{safe[:80]}-{digest}"
  return safe


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


def write_performance(records_dir: str, split: str, key: str,
                      metas: list[dict], performance: np.ndarray,
                      reference: np.ndarray) -> str:
  """Writes one performance's ArrayRecord + sidecar, crash-safe.

  Args:
    records_dir: records root.
    split: 'train' | 'validation' | 'test' (sub-folder).
    key: `performance_key` of the performance.
    metas: per-record metadata (JSON-serialisable; score None when unknown).
    performance, reference: (N, 5, 96, 94) features, N == len(metas).

  Returns:
    The .array_record path. The sidecar <key>.json exists only after the
    record file is complete under its final name.
  """
  if len(metas) != len(performance) or len(metas) != len(reference):
    raise ValueError(
        f"{len(metas)} metadata entries for {len(performance)} performance "
        f"and {len(reference)} reference clips")
  folder = os.path.join(records_dir, split)
  os.makedirs(folder, exist_ok=True)
  final = os.path.join(folder, f"{key}.array_record")
  with atomic.atomic_path(final) as tmp:
    writer = array_record_module.ArrayRecordWriter(tmp, WRITER_OPTIONS)
    try:
      for meta, p, r in zip(metas, performance, reference):
        writer.write(serialize_record(meta, p, r))
    finally:
      writer.close()
  atomic.write_json(os.path.join(folder, f"{key}.json"), list(metas))
  return final


def is_complete(records_dir: str, split: str, key: str) -> bool:
  """True iff the performance's sidecar JSON (written last) exists."""
  return os.path.exists(os.path.join(records_dir, split, f"{key}.json"))


def read_sidecar(records_dir: str, split: str, key: str) -> list[dict]:
  """The per-record metadata list of a complete performance."""
  with open(os.path.join(records_dir, split, f"{key}.json"),
            encoding="utf-8") as f:
    return json.load(f)


def complete_keys(records_dir: str, split: str) -> list[str]:
  """Sorted keys of the complete performances of a split folder."""
  paths = glob.glob(os.path.join(glob.escape(records_dir), split, "*.json"))
  keys = []
  for path in paths:
    key = os.path.basename(path)[:-len(".json")]
    if _TMP_MARK in key or key.startswith("."):
      continue
    if os.path.exists(os.path.join(records_dir, split, f"{key}.array_record")):
      keys.append(key)
  return sorted(keys)


def _remove_temporaries(records_dir: str) -> None:
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


def _check_fingerprint(records_dir: str, config) -> None:
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
  """Per-channel mean/std over all performance AND reference clips of `keys`.

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


def load_stats(path: str) -> dict:
  """Reads a stats.json (or <folder>/stats.json); checks its keys and length.

  Raises:
    FileNotFoundError / ValueError with the path and the problem.
  """
  if os.path.isdir(path):
    path = os.path.join(path, "stats.json")
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


# --- Building one song (runs in the main process or a pool worker). ------------


@dataclasses.dataclass
class _Performance:
  key: str
  performance_id: str
  song_id: str
  split: str
  score: float | None
  rows: list


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


def _build_song(records_dir: str, performances: list[_Performance],
                config, extractor: Extractor | None = None,
                inflight_dir: str | None = None) -> list[dict]:
  """Builds the incomplete performances of one song; one result dict each.

  `extractor` (default: this module's `extract_features`, read at call time) computes
  the clip features. In a pool worker, `inflight_dir` gets a file <pid>.json naming
  the performance being built, so that the parent knows which performances were in
  progress if a worker process dies.

  Reference audio, its pitch-class profile and its clip features are cached per song
  keyed by (reference file, reference_start), so performances sharing grid
  positions reuse the reference features.
  """
  extractor = extractor or extract_features
  marker = (os.path.join(inflight_dir, f"{os.getpid()}.json") if inflight_dir
            else None)
  audio_error = _audio_error_type()
  raise_errors = config.data.on_error == "raise"
  min_seconds = float(config.data.min_seconds)
  ref_audio: dict[str, Any] = {}
  ref_profile: dict[str, np.ndarray] = {}
  ref_feats: dict[tuple[str, float], np.ndarray] = {}
  results = []

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
    if is_complete(records_dir, perf.split, perf.key):
      results.append(dict(status="existing", performance_id=perf.performance_id))
      continue
    if marker:
      atomic.write_json(marker, dict(performance_id=perf.performance_id,
                                      split=perf.split, key=perf.key))
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
      results.append(dict(status="skipped", performance_id=perf.performance_id,
                          song_id=perf.song_id, split=perf.split,
                          reason=reason))
      continue
    pending_keys = list(pending_ref)
    feats = extract_batched(perf_clips + [pending_ref[k] for k in pending_keys],
                             config, extractor)
    perf_feats = feats[:len(perf_clips)]
    for k, f in zip(pending_keys, feats[len(perf_clips):]):
      ref_feats[k] = f
    reference = np.stack([ref_feats[k] for k in ref_keys])
    write_performance(records_dir, perf.split, perf.key, metas, perf_feats,
                      reference)
    results.append(dict(status="built", performance_id=perf.performance_id,
                        problems=[f"{perf.performance_id}: {p}"
                                  for p in problems]))
  return results


def _song_task(args) -> tuple[int, list[dict]]:
  records_dir, performances, config, extractor, inflight_dir = args
  results = _build_song(records_dir, performances, config, extractor, inflight_dir)
  if inflight_dir:
    try:
      os.remove(os.path.join(inflight_dir, f"{os.getpid()}.json"))
    except FileNotFoundError:
      pass
  return len(performances), results


# --- Worker processes that may die. --------------------------------------------

# A pool that broke this many times without any performance in progress (workers dying
# while starting) gives up on the performances it still had.
_MAX_ANONYMOUS_BREAKS = 2


def describe_exit(exitcode: int | None) -> str:
  """Words for a child process's exit status: 'killed by signal SIGKILL (exit code
  -9)', 'exited with code 1', ..."""
  if exitcode is None:
    return "did not exit"
  if exitcode < 0:
    try:
      name = signal.Signals(-exitcode).name
    except ValueError:
      name = f"signal {-exitcode}"
    return f"killed by signal {name} (exit code {exitcode})"
  return f"exited with code {exitcode}"


def _alone_entry(records_dir: str, perf: _Performance, config,
                 extractor: Extractor, result_path: str) -> None:
  """Child process of `_retry_alone`: builds one performance, writes its result."""
  try:
    out = dict(results=_build_song(records_dir, [perf], config, extractor))
  except Exception as e:  # pylint: disable=broad-except  (reported by the parent)
    out = dict(error=f"{type(e).__name__}: {e}")
  atomic.write_json(result_path, out)


def _retry_alone(records_dir: str, perf: _Performance, config,
                 extractor: Extractor, scratch: str) -> tuple[dict, dict | None]:
  """Builds one performance alone in a fresh spawned process (second attempt).

  Returns:
    (result dict as `_build_song` gives, worker failure dict or None). A process that
    dies gives a 'skipped' result whose reason names the signal / exit code.

  Raises:
    RuntimeError: the build raised an exception (data.on_error 'raise', or a bug).
  """
  result_path = os.path.join(scratch, f"alone-{perf.split}-{perf.key}.json")
  if os.path.exists(result_path):
    os.remove(result_path)
  proc = multiprocessing.get_context("spawn").Process(
      target=_alone_entry, args=(records_dir, perf, config, extractor, result_path),
      name=f"records-retry-{perf.key}")
  proc.start()
  proc.join()
  if proc.exitcode == 0 and os.path.exists(result_path):
    with open(result_path, encoding="utf-8") as f:
      out = json.load(f)
    if "error" in out:
      raise RuntimeError(f"{perf.performance_id}: {out['error']}")
    return out["results"][0], None
  how = describe_exit(proc.exitcode)
  reason = (f"its worker process died twice (in the pool, then alone: {how}); "
            "skipped")
  failure = dict(performance_id=perf.performance_id, song_id=perf.song_id,
                 split=perf.split, attempts=2, exit_code=proc.exitcode,
                 signal=(signal.Signals(-proc.exitcode).name
                         if proc.exitcode is not None and proc.exitcode < 0
                         and -proc.exitcode in signal.valid_signals() else None),
                 reason=reason)
  return dict(status="skipped", performance_id=perf.performance_id,
              song_id=perf.song_id, split=perf.split, reason=reason), failure


def _read_inflight(inflight_dir: str) -> set[str]:
  """performance_ids named by the in-progress markers of (dead) workers."""
  ids = set()
  for path in glob.glob(os.path.join(glob.escape(inflight_dir), "*.json")):
    try:
      with open(path, encoding="utf-8") as f:
        ids.add(json.load(f)["performance_id"])
    except (OSError, ValueError, KeyError):
      pass  # A marker cut short by the kill: that worker had not started the work.
  return ids


def _run_pool(songs: list[list[_Performance]], records_dir: str, config,
              extractor: Extractor, workers: int,
              collect: Callable[[list[dict], int], None]) -> list[dict]:
  """Builds songs on a spawned process pool that survives dying workers.

  A worker that dies (signal, os._exit, out-of-memory kill) breaks the pool
  (concurrent.futures raises BrokenProcessPool for every unfinished task). Then the
  performances that were in progress in any worker (their in-flight markers) are
  retried once each, alone in a fresh process; one whose process dies again is
  skipped and reported. The unfinished rest goes to a new pool; finished
  performances are complete on disk and are not redone.

  Returns:
    Worker failures (see BuildReport.worker_failures).
  """
  inflight_dir = os.path.join(records_dir, ".inflight")
  failures: list[dict] = []
  anonymous_breaks = 0
  queue = [perfs for perfs in songs if perfs]
  ctx = multiprocessing.get_context("spawn")
  while queue:
    shutil.rmtree(inflight_dir, ignore_errors=True)
    os.makedirs(inflight_dir)
    broken: list[list[_Performance]] = []
    with futures.ProcessPoolExecutor(min(workers, len(queue)),
                                     mp_context=ctx) as pool:
      jobs = {pool.submit(_song_task, (records_dir, perfs, config, extractor,
                                       inflight_dir)): perfs for perfs in queue}
      try:
        for job in futures.as_completed(jobs):
          try:
            n, results = job.result()
          except futures_process.BrokenProcessPool:
            broken.append(jobs[job])
            continue
          collect(results, n)
      except BaseException:
        # An error (data.on_error 'raise') or Ctrl-C: drop the queued songs.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    queue = []
    if not broken:
      break
    suspects = _read_inflight(inflight_dir)
    print(f"build_records: a worker process died; retrying alone the "
          f"performance(s) then in progress: {sorted(suspects) or 'none'}",
          file=sys.stderr)
    if not suspects:
      anonymous_breaks += 1
    for perfs in broken:
      rest = []
      for perf in perfs:
        if perf.performance_id in suspects:
          result, failure = _retry_alone(records_dir, perf, config, extractor,
                                         inflight_dir)
          collect([result], 1)
          if failure:
            print(f"build_records: {perf.performance_id}: {failure['reason']}",
                  file=sys.stderr)
            failures.append(failure)
        elif anonymous_breaks >= _MAX_ANONYMOUS_BREAKS:
          collect([dict(status="skipped", performance_id=perf.performance_id,
                        song_id=perf.song_id, split=perf.split,
                        reason="worker processes kept dying before starting any "
                        "performance")], 1)
        else:
          rest.append(perf)
      if rest:
        queue.append(rest)
  shutil.rmtree(inflight_dir, ignore_errors=True)
  return failures


# --- Public entry point. -------------------------------------------------------


def _group(rows) -> dict[str, list[_Performance]]:
  """song_id -> performances (manifest order), rows pooled by performance_id."""
  by_perf: dict[str, _Performance] = {}
  songs: dict[str, list[_Performance]] = collections.OrderedDict()
  for row in rows:
    perf = by_perf.get(row.performance_id)
    if perf is None:
      perf = _Performance(key=performance_key(row.performance_id),
                          performance_id=row.performance_id,
                          song_id=row.song_id, split=row.split,
                          score=row.score, rows=[])
      by_perf[row.performance_id] = perf
      songs.setdefault(row.song_id, []).append(perf)
    perf.rows.append(row)
  return songs


def build_records(manifest_path: str, records_dir: str, config, *,
                  stats_from: str | None = None) -> BuildReport:
  """Builds (or resumes) the feature records of a manifest (paper 3.3, Fig. 5).

  For each performance: load audio (16 kHz), VAD segments on the grid
  (`segments.plan_segments`), transposition (`segments.estimate_transposition`
  logic), clip features for the performance and the reference clip at the
  reference position (reference = data.reference 'original' |
  'accompaniment'), one ArrayRecord file + sidecar. Then stats.json (train
  split, or copied from `stats_from`) and build_report.json.

  With config.data.build_workers > 1, songs are built by that many spawned worker
  processes. A worker that dies (signal, native crash, OOM kill) does not stop or hang
  the build: the performances then in progress are retried once each, alone in a
  fresh process; one that dies again is skipped and listed in the report's
  `worker_failures` (signal, exit code). The extractor is this module's
  `extract_features` as bound when the build starts (it is pickled to the workers).

  Args:
    manifest_path: manifest CSV (see input_pipeline.manifest).
    records_dir: output folder (created; resumable).
    config: ConfigDict; reads config.data.* (on_error, build_workers,
      reference, segmentation fields) and config.features.crepe_capacity.
    stats_from: a stats.json (or folder holding one) to copy instead of
      computing stats from the train split (evaluation-time builds).

  Returns:
    BuildReport (also written to records_dir/build_report.json).

  Raises:
    ManifestError: bad manifest (header, or a row when data.on_error='raise').
    AudioError / ValueError: unusable audio when data.on_error == 'raise'
      (RuntimeError naming the performance when it happened in a retried-alone
      process).
    RecordsConfigError: records_dir holds records built with other settings.
  """
  if config.data.on_error not in ("raise", "skip"):
    raise ValueError(f"data.on_error must be 'raise' or 'skip', not "
                     f"{config.data.on_error!r}")
  if config.data.reference not in ("original", "accompaniment"):
    raise ValueError(f"data.reference must be 'original' or 'accompaniment', "
                     f"not {config.data.reference!r}")
  records_dir = os.path.abspath(records_dir)
  rows, problems = manifest_lib.read_manifest(
      manifest_path, on_error=config.data.on_error)
  _check_fingerprint(records_dir, config)
  _remove_temporaries(records_dir)
  report = BuildReport(records_dir=records_dir, problems=list(problems),
                       manifest=os.path.abspath(manifest_path),
                       manifest_sha256=file_sha256(manifest_path))
  songs = _group(rows)

  # Delete complete performances that the manifest no longer lists.
  wanted = {(p.split, p.key) for perfs in songs.values() for p in perfs}
  for split in manifest_lib.SPLITS:
    for key in complete_keys(records_dir, split):
      if (split, key) not in wanted:
        os.remove(os.path.join(records_dir, split, f"{key}.json"))
        os.remove(os.path.join(records_dir, split, f"{key}.array_record"))
        report.removed_stale.append(f"{split}/{key}")

  total = sum(len(p) for p in songs.values())
  workers = max(1, int(config.data.build_workers))
  extractor = extract_features  # Read now: tests replace it, and it travels to workers.
  started_complete = {p.performance_id for perfs in songs.values() for p in perfs
                      if is_complete(records_dir, p.split, p.key)}
  todo, done = [], []  # Songs with work left / songs already complete.
  for perfs in songs.values():
    (todo if any(p.performance_id not in started_complete for p in perfs)
     else done).append(perfs)
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  progress = tqdm(total=total, desc="records", unit="perf", disable=None)

  def collect(results: list[dict], n: int) -> None:
    for res in results:
      if res["status"] == "built" or (res["status"] == "existing" and
                                      res["performance_id"] not in started_complete):
        # "existing" but not at the start: built by this run before a worker died.
        report.built.append(res["performance_id"])
        report.problems.extend(res.get("problems", []))
      elif res["status"] == "existing":
        report.existing.append(res["performance_id"])
      else:
        report.skipped.append({k: res[k] for k in (
            "performance_id", "song_id", "split", "reason")})
    progress.update(n)

  try:
    collect([dict(status="existing", performance_id=p.performance_id)
             for perfs in done for p in perfs], sum(len(perfs) for perfs in done))
    if workers == 1 or len(todo) <= 1:
      for perfs in todo:
        n, results = _song_task((records_dir, perfs, config, extractor, None))
        collect(results, n)
    else:
      # One process fills numba's cache before the workers read it (numba_cache.py).
      from asa_jax import numba_cache  # pylint: disable=g-import-not-at-top
      numba_cache.warm(config)
      report.worker_failures = _run_pool(todo, records_dir, config, extractor,
                                         workers, collect)
  finally:
    progress.close()

  for split in manifest_lib.SPLITS:
    keys = [p.key for perfs in songs.values() for p in perfs
            if p.split == split and is_complete(records_dir, split, p.key)]
    report.num_performances[split] = len(keys)
    report.num_records[split] = sum(
        len(read_sidecar(records_dir, split, k)) for k in keys)

  stats_path = os.path.join(records_dir, "stats.json")
  if stats_from:
    stats = load_stats(stats_from)
    report.stats_source = os.path.abspath(stats_from)
    atomic.write_json(stats_path, stats)
  else:
    train_keys = [p.key for perfs in songs.values() for p in perfs
                  if p.split == "train"
                  and is_complete(records_dir, "train", p.key)]
    stats = compute_stats(records_dir, train_keys, "train")
    if stats is not None:
      report.stats_source = "train"
      atomic.write_json(stats_path, stats)
    elif os.path.exists(stats_path):
      report.stats_source = "existing stats.json"
    else:
      print(f"build_records: no train records in {records_dir} and no "
            "stats_from: stats.json not written", file=sys.stderr)
  atomic.write_json(os.path.join(records_dir, "build_report.json"),
                     report.to_json())
  print(report.summary())
  for item in report.skipped:
    print(f"  skipped {item['performance_id']} ({item['split']}): "
          f"{item['reason']}")
  return report
