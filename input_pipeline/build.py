"""The feature build on Dask: manifest -> shards -> one Dask task per shard.

`build_records` (the entry point the trainer and evaluation call) reads the
manifest, plans shards (`plan_shards`: per split, songs in manifest order grouped
greedily into shards of about data.shard_performances performances; a song is never
split, so the per-song cache of reference features keeps working), keeps the complete
shards that still match the manifest, deletes the others, and submits one
`shard.build_shard` task (input_pipeline/shard.py) per incomplete shard:

  * data.build_cluster == "" -> a `distributed.LocalCluster` of data.build_workers
    workers with one thread each: worker processes when build_workers > 1 (numba's
    cache is filled first by this process, input_pipeline/numba_warm.py), else one
    in-process worker thread (cheap for small builds and tests; the same Dask code
    path);
  * data.build_cluster == "tcp://host:8786" -> `distributed.Client` on that existing
    cluster (README: "Building features on many machines"). Its workers need the
    repository installed and the audio at the manifest's paths, and write
    `records_dir` directly, so it must be on a filesystem they share; each fills its
    numba cache first (`client.run(numba_warm.warm)`; workers that join later do
    not).

Retries (input_pipeline/dask_tasks.py): a shard task that raises is retried twice; a
worker process that dies (native crash, signal, out-of-memory kill) is restarted by
its nanny and the scheduler reschedules its shard, until the shard has been on
`dask_tasks.ALLOWED_FAILURES` + 1 dying workers, when it fails with
`distributed.KilledWorker`.
A shard that still fails is reported (BuildReport.worker_failures and .skipped), never
waited on, and retried by the next build; the other shards are kept. With
data.on_error == 'raise', an AudioError / ValueError of a shard stops the build.
Shard tasks are idempotent (`build_shard` returns a complete shard's index), so a
retried or duplicated task never writes a shard twice.

Build only (then train with --config.data.records_dir=DIR):

    python -m input_pipeline.build --config=configs/rori.py \
        --config.data.manifest=/path/to/manifest.csv --records_dir=DIR \
        [--config.data.build_cluster=tcp://scheduler:8786]

Exit status 1 when a shard failed (build_report.json lists it); a rerun retries it.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
import os
import sys
from typing import Callable

from asa_jax import atomic
from input_pipeline import dask_tasks
from input_pipeline import manifest as manifest_lib
from input_pipeline import records as records_lib
from input_pipeline import shard as shard_lib

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


def group_performances(rows) -> dict[str, list[shard_lib.Performance]]:
  """song_id -> its performances (manifest order), rows pooled by performance_id.

  Args:
    rows: `manifest.ManifestRow`s (manifest order).
  """
  by_perf: dict[str, shard_lib.Performance] = {}
  songs: dict[str, list[shard_lib.Performance]] = collections.OrderedDict()
  for row in rows:
    perf = by_perf.get(row.performance_id)
    if perf is None:
      perf = shard_lib.Performance(
          performance_id=row.performance_id, song_id=row.song_id,
          split=row.split, score=row.score, rows=[])
      by_perf[row.performance_id] = perf
      songs.setdefault(row.song_id, []).append(perf)
    perf.rows.append(row)
  return songs


def shard_name(split: str, number: int, performances: list[shard_lib.Performance],
               reference: str) -> str:
  """`shard-<split>-<NNNNN>-<8 hex>`, the hex a SHA-1 of the shard's content
  (`shard.performance_spec` of each performance, in order, and data.reference)."""
  content = json.dumps([reference] + [shard_lib.performance_spec(p, reference)
                                      for p in performances])
  digest = hashlib.sha1(content.encode("utf-8")).hexdigest()[:8]
  return f"shard-{split}-{number:05d}-{digest}"


def plan_shards(songs: dict[str, list[shard_lib.Performance]], records_dir: str,
                config) -> list[shard_lib.Shard]:
  """Groups songs into shards, per split (manifest.SPLITS order).

  Songs in manifest order are added to the current shard until adding the next
  song would pass data.shard_performances performances (a larger song is one
  shard of its own). Deterministic for a manifest and config.

  Args:
    songs: song_id -> performances (`group_performances`).
    records_dir: the records root (absolute), stored in each shard.
    config: reads config.data.shard_performances (>= 1) and data.reference.

  Returns:
    The shards (shard.Shard), numbered per split from 0.

  Raises:
    ValueError: data.shard_performances < 1.
  """
  size = int(config.data.shard_performances)
  if size < 1:
    raise ValueError(f"data.shard_performances must be >= 1, got {size}")
  shards = []
  for split in manifest_lib.SPLITS:
    groups: list[list[shard_lib.Performance]] = []
    current: list[shard_lib.Performance] = []
    for perfs in songs.values():
      song = [p for p in perfs if p.split == split]
      if not song:
        continue
      if current and len(current) + len(song) > size:
        groups.append(current)
        current = []
      current = current + song
    if current:
      groups.append(current)
    for number, perfs in enumerate(groups):
      shards.append(shard_lib.Shard(
          records_dir=records_dir, split=split,
          name=shard_name(split, number, perfs, config.data.reference),
          performances=perfs))
  return shards


def _resolve(records_dir: str, songs: dict[str, list[shard_lib.Performance]],
             config) -> tuple[list[shard_lib.Shard], dict[str, dict], list[str]]:
  """Splits the work into kept shards, shards to build and stale shards.

  A complete shard is kept when it is in the plan, or when every performance its
  index lists is a manifest performance of the same split and spec not held by
  another kept shard (a shard of an earlier plan, or refiled by
  input_pipeline.corpora.folds); any other complete shard is deleted. The performances
  not held by kept shards are planned again (`plan_shards`), which gives the
  planned names when nothing was adopted.

  Returns:
    (shards to build, kept: '<split>/<name>' -> index, removed '<split>/<name>').
  """
  reference = config.data.reference
  plan = plan_shards(songs, records_dir, config)
  planned = {(s.split, s.name) for s in plan}
  perf_by_id = {p.performance_id: p for perfs in songs.values() for p in perfs}
  kept: dict[str, dict] = {}
  held: set[str] = set()
  foreign = []
  for split in manifest_lib.SPLITS:
    for name in records_lib.complete_keys(records_dir, split):
      index = records_lib.read_index(records_dir, split, name)
      if (split, name) in planned:
        kept[f"{split}/{name}"] = index
        held.update(e["performance_id"] for e in index["performances"])
      else:
        foreign.append((split, name, index))
  removed = []
  for split, name, index in foreign:
    ids = [e["performance_id"] for e in index["performances"]]
    ok = bool(ids) and len(set(ids)) == len(ids) and all(
        e["performance_id"] in perf_by_id and e["performance_id"] not in held
        and e.get("split") == split == perf_by_id[e["performance_id"]].split
        and e.get("spec") == shard_lib.performance_spec(
            perf_by_id[e["performance_id"]], reference)
        for e in index["performances"])
    if ok:
      kept[f"{split}/{name}"] = index
      held.update(ids)
    else:
      for ext in (".json", ".array_record"):
        os.remove(os.path.join(records_dir, split, name + ext))
      removed.append(f"{split}/{name}")
  todo = [s for s in plan if f"{s.split}/{s.name}" not in kept]
  if any(p.performance_id in held for s in todo for p in s.performances):
    rest = collections.OrderedDict()
    for song, perfs in songs.items():
      left = [p for p in perfs if p.performance_id not in held]
      if left:
        rest[song] = left
    todo = plan_shards(rest, records_dir, config)
  return todo, kept, removed


def _run_shards(shards: list[shard_lib.Shard], config, extractor,
                on_done: Callable[[shard_lib.Shard, dict | None, str | None], None]
                ) -> None:
  """Runs `shard.build_shard` for each shard on Dask (`dask_tasks.run_tasks`); calls
  on_done per shard.

  on_done(shard, index, None) after a shard is built; on_done(shard, None, reason)
  when its task failed after the retries (exception or KilledWorker).

  Raises:
    AudioError / ValueError: from a shard, when data.on_error == 'raise'.
  """
  from asa_jax.features import audio  # pylint: disable=g-import-not-at-top
  fatal = ((audio.AudioError, ValueError) if config.data.on_error == "raise"
           else ())
  # Each worker fills (or loads) its machine's numba cache under the cache's lock
  # before any shard runs (on our LocalCluster: this process, before the workers).
  dask_tasks.run_tasks(
      shard_lib.build_shard, [(shard, config, extractor) for shard in shards],
      keys=[shard.name for shard in shards],
      on_done=lambda i, index, error: on_done(shards[i], index, error),
      workers=int(config.data.build_workers),
      address=str(config.data.build_cluster or ""), label="build_records",
      noun="shards", fatal=fatal, warm=functools.partial(_warm_numba_cache, config))


def _warm_numba_cache(config) -> str:
  """Fills the numba cache (input_pipeline.numba_warm.warm), once per machine."""
  from input_pipeline import numba_warm  # pylint: disable=g-import-not-at-top
  return numba_warm.warm(config)


def build_records(manifest_path: str, records_dir: str, config, *,
                  stats_from: str | None = None) -> BuildReport:
  """Builds (or resumes) the feature records of a manifest (paper 3.3, Fig. 5).

  Plans shards (`plan_shards`), keeps complete shards that match the manifest,
  deletes stale ones and leftover temporary files, builds the other shards on Dask
  (module docstring; `shard.build_shard` per shard), then writes stats.json
  (train split, or copied from `stats_from`) and build_report.json. The extractor
  is `shard.extract_features` as bound when the build starts (tests replace it;
  it is pickled to the workers). A performance skipped inside a complete shard
  (unusable audio) is not retried by a rerun; delete the shard's .json to retry it.

  Args:
    manifest_path: manifest CSV (see input_pipeline.manifest).
    records_dir: output folder (created; resumable).
    config: ConfigDict; reads config.data.* (on_error, build_workers,
      build_cluster, shard_performances, reference, segmentation fields) and
      config.features.crepe_capacity.
    stats_from: a stats.json (or folder holding one) to copy instead of
      computing stats from the train split (evaluation-time builds).

  Returns:
    BuildReport (also written to records_dir/build_report.json).

  Raises:
    ManifestError: bad manifest (header, or a row when data.on_error='raise').
    AudioError / ValueError: unusable audio when data.on_error == 'raise'.
    ValueError: bad data.on_error / data.reference / data.shard_performances.
    RecordsConfigError: records_dir holds records built with other settings.
    OSError: the Dask cluster at data.build_cluster cannot be reached.
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
  records_lib.check_fingerprint(records_dir, config)
  records_lib.remove_temporaries(records_dir)
  report = BuildReport(
      records_dir=records_dir, problems=list(problems),
      manifest=os.path.abspath(manifest_path),
      manifest_sha256=records_lib.file_sha256(manifest_path))
  songs = group_performances(rows)
  todo, kept, report.removed_stale = _resolve(records_dir, songs, config)
  indexes = dict(kept)

  def add_skipped(entry: dict, reason: str) -> None:
    report.skipped.append(dict(performance_id=entry["performance_id"],
                               song_id=entry["song_id"], split=entry["split"],
                               reason=reason))

  for index in kept.values():
    for entry in index["performances"]:
      if entry["status"] == "built":
        report.existing.append(entry["performance_id"])
      else:
        add_skipped(entry, entry.get("reason", "skipped"))

  total = sum(len(perfs) for perfs in songs.values())
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  progress = tqdm(total=total, desc="records", unit="perf", disable=None)
  progress.update(total - sum(len(s.performances) for s in todo))

  # Shards finish in any order; the report takes their results in plan order, so
  # that the same build writes the same build_report.json.
  results: dict[str, tuple[dict | None, str | None]] = {}

  def on_done(shard: shard_lib.Shard, index: dict | None,
              error: str | None) -> None:
    results[shard.name] = (index, error)
    if index is None:
      print(f"build_records: shard {shard.name} failed: {error}", file=sys.stderr)
    progress.update(len(shard.performances))

  def add_result(shard: shard_lib.Shard, index: dict | None,
                 error: str | None) -> None:
    if index is not None:
      indexes[f"{shard.split}/{shard.name}"] = index
      for entry in index["performances"]:
        if entry["status"] == "built":
          report.built.append(entry["performance_id"])
          report.problems.extend(entry.get("problems", []))
        else:
          add_skipped(entry, entry.get("reason", "skipped"))
    else:
      reason = f"shard {shard.name} failed: {error}"
      report.worker_failures.append(dict(
          shard=shard.name, split=shard.split,
          performance_ids=[p.performance_id for p in shard.performances],
          reason=reason))
      for perf in shard.performances:
        add_skipped(dict(performance_id=perf.performance_id, song_id=perf.song_id,
                         split=perf.split), reason)

  try:
    if todo:
      _run_shards(todo, config, shard_lib.extract_features, on_done)
      for shard in todo:
        if shard.name in results:
          add_result(shard, *results[shard.name])
  finally:
    progress.close()
    if not config.data.build_cluster:
      # A worker killed while writing leaves a temporary file; our LocalCluster is
      # closed, so no writer runs now.
      records_lib.remove_temporaries(records_dir)

  for split in manifest_lib.SPLITS:
    mine = [index for key, index in indexes.items() if key.startswith(split + "/")]
    report.num_performances[split] = sum(
        e["status"] == "built" for index in mine for e in index["performances"])
    report.num_records[split] = sum(len(index["records"]) for index in mine)

  stats_path = os.path.join(records_dir, "stats.json")
  if stats_from:
    stats = records_lib.load_stats(stats_from)
    report.stats_source = os.path.abspath(stats_from)
    atomic.write_json(stats_path, stats)
  else:
    train = sorted(key.split("/", 1)[1] for key in indexes
                   if key.startswith("train/"))
    stats = records_lib.compute_stats(records_dir, train, "train")
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


def main(argv) -> int:
  """CLI: builds the records of --config's data.manifest into --records_dir."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  config = f.config
  if not config.data.manifest:
    raise ValueError("set --config.data.manifest")
  report = build_records(config.data.manifest,
                         f.records_dir or config.data.records_dir, config)
  return 1 if report.worker_failures else 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  from ml_collections import config_flags  # pylint: disable=g-import-not-at-top
  config_flags.DEFINE_config_file(
      "config", None, "Config file (configs/<system>.py[:variant]).")
  flags.DEFINE_string("records_dir", "", "Output folder (default data.records_dir).")
  flags.mark_flags_as_required(["config"])
  app.run(lambda argv: sys.exit(main(argv)))
