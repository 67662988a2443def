r"""Leave-songs-out cross-validation folds of one corpus inside a manifest.

    python -m input_pipeline.corpora.folds --manifest=data/real/manifest.csv \
        --out_dir=data/real_cv --corpus=ssvd --folds=4 [--seed=0] \
        [--records_from=runs/real/records_original]

Real performances are few (SSVD: 80 performances of 19 melodies), so one held-out split
of 2 melodies says little. Cross-validation tests every song once (issue "Make the
learned systems work on real singing", acceptance "leave-melodies-out
cross-validation"): the songs (song_id) of the rows whose `corpus` column equals
--corpus are dealt into K folds, balanced by number of performances. Fold k's manifest
`OUT/fold_<k>/manifest.csv` is the input manifest with that corpus's rows re-split:
fold k's songs -> test, fold (k+1) mod K's songs -> validation (so that model selection
sees the target corpus), the other songs -> train. Rows of other corpora keep their
split. OUT/folds.json records song -> fold.

Feature records do not depend on the split except for the folder they are filed in, so
--records_from files an existing records folder's performances into
`OUT/fold_<k>/records/<split>/` (shards named after the source shards, rewriting only
the split field) instead of extracting the features again; train.py then finds no
stats.json there and its `build_records` call keeps these shards (they match the fold
manifest performance by performance) and completes the folder (nothing left to
extract: normalisation statistics of the
fold's train split and a build report naming the fold manifest, so eval.py reuses the
records too). A fold is trained and evaluated as any manifest (BUILD_NOTES.md has
the loop), and `python -m asa_jax.evaluation.crossval` pools the folds' test scores.
"""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import shutil
import sys

import numpy as np

from asa_jax import atomic
from asa_jax.features import constants
from input_pipeline import manifest as manifest_lib
from input_pipeline import records as records_lib


def assign_folds(counts: dict[str, int], folds: int, seed: int = 0) -> dict[str, int]:
  """Deals songs into folds with balanced numbers of performances.

  Largest song first (ties in a seeded random order), each to the fold with the fewest
  performances so far (ties: lowest fold index). Deterministic for a seed.

  Args:
    counts: song_id -> number of performances (> 0).
    folds: K >= 2.
    seed: seed of the tie order.

  Returns:
    song_id -> fold index in [0, K).

  Raises:
    ValueError: K < 2, or fewer songs than folds.
  """
  if folds < 2:
    raise ValueError(f"folds must be >= 2, got {folds}")
  if len(counts) < folds:
    raise ValueError(f"{len(counts)} songs cannot fill {folds} folds")
  songs = sorted(counts)
  tie = np.random.default_rng(seed).permutation(len(songs))
  order = sorted(range(len(songs)), key=lambda i: (-counts[songs[i]], tie[i]))
  load = [0] * folds
  out = {}
  for i in order:
    k = min(range(folds), key=lambda j: (load[j], j))
    out[songs[i]] = k
    load[k] += counts[songs[i]]
  return out


def fold_split(fold_of_song: int, fold: int, folds: int) -> str:
  """The split of a song of fold `fold_of_song` in cross-validation fold `fold`."""
  if fold_of_song == fold:
    return "test"
  return "validation" if fold_of_song == (fold + 1) % folds else "train"


def write_fold_manifests(manifest_path: str, out_dir: str, *, corpus: str,
                         folds: int, seed: int = 0) -> list[str]:
  """Writes OUT/fold_<k>/manifest.csv for k < K and OUT/folds.json (atomically).

  Args:
    manifest_path: a manifest with a `corpus` column (input_pipeline.corpora.real).
    out_dir: output folder.
    corpus: the corpus whose songs are cross-validated (e.g. "ssvd").
    folds: K.
    seed: tie order of `assign_folds`.

  Returns:
    The K manifest paths. Relative audio paths are made absolute, so the fold
    manifests can live anywhere.

  Raises:
    ValueError: no `corpus` column, no rows of `corpus`, or too few songs for K.
  """
  base = os.path.dirname(os.path.abspath(manifest_path))
  with open(manifest_path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    fields = list(reader.fieldnames or [])
    rows = list(reader)
  if "corpus" not in fields:
    raise ValueError(f"{manifest_path}: no 'corpus' column (written by "
                     "input_pipeline.corpora.real)")
  counts = collections.Counter(r["song_id"] for r in rows if r["corpus"] == corpus)
  if not counts:
    raise ValueError(f"{manifest_path}: no rows with corpus {corpus!r}")
  fold_of = assign_folds(dict(counts), folds, seed)
  paths = []
  for k in range(folds):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
      row = dict(row)
      for col in ("performance_audio", "reference_audio", "accompaniment_audio"):
        if row.get(col):
          row[col] = os.path.normpath(os.path.join(base, row[col]))
      if row["corpus"] == corpus:
        row["split"] = fold_split(fold_of[row["song_id"]], k, folds)
      writer.writerow(row)
    path = os.path.join(out_dir, f"fold_{k}", "manifest.csv")
    atomic.write_text(path, buf.getvalue())
    paths.append(path)
  summary = {"manifest": os.path.abspath(manifest_path), "corpus": corpus,
             "folds": folds, "seed": seed, "fold_of_song": fold_of,
             "performances_per_fold": [sum(c for s, c in counts.items()
                                           if fold_of[s] == k) for k in range(folds)]}
  atomic.write_text(os.path.join(out_dir, "folds.json"),
                               json.dumps(summary, indent=1))
  return paths


def refile_records(source_dir: str, manifest_path: str, records_dir: str) -> dict:
  """Files `source_dir`'s complete performances under the manifest's splits.

  Only the split changes: for each complete source shard, the records of the
  manifest's performances are read, their `split` field rewritten, and written
  with `records.write_shard` (atomic, index last) to one output shard per (source
  shard, new split), named after the source shard, in `records_dir/<new split>/`.
  The index's performance entries (built, and skipped with their reason) keep their
  content spec, so `build_records` on the same manifest keeps these shards (they
  match it performance by performance) and only builds what is missing. The
  source's build_config.json (feature fingerprint) is copied, so a later
  `build_records` with other feature settings refuses the folder. Resumable: an
  output shard already complete in `records_dir` is left alone.

  Args:
    source_dir: a finished records folder (`build.build_records`).
    manifest_path: the manifest whose splits to use (e.g. a fold manifest).
    records_dir: the output records folder.

  Returns:
    {"refiled": n, "present": n, "missing": [performance_id]}: performances
    (built in the source) written now / found in an already complete output
    shard / not built in source_dir (`build_records` extracts them).

  Raises:
    FileNotFoundError: source_dir has no build_config.json.
    records.RecordsConfigError: records_dir was built with other feature settings.
  """
  config_src = os.path.join(source_dir, "build_config.json")
  if not os.path.exists(config_src):
    raise FileNotFoundError(f"{config_src}: not a finished records folder")
  config_dst = os.path.join(records_dir, "build_config.json")
  os.makedirs(records_dir, exist_ok=True)
  if os.path.exists(config_dst):
    with open(config_src, encoding="utf-8") as a, open(config_dst, encoding="utf-8") as b:
      if json.load(a) != json.load(b):
        raise records_lib.RecordsConfigError(
            f"{records_dir}: built with other feature settings than {source_dir}")
  else:
    shutil.copyfile(config_src, config_dst)
  rows, _ = manifest_lib.read_manifest(manifest_path, on_error="skip")
  wanted = {}
  for row in rows:
    wanted[row.performance_id] = row.split
  out = {"refiled": 0, "present": 0, "missing": []}
  found = set()
  done = {split: set(records_lib.complete_keys(records_dir, split))
          for split in manifest_lib.SPLITS}
  for src_split in manifest_lib.SPLITS:
    for name in records_lib.complete_keys(source_dir, src_split):
      index = records_lib.read_index(source_dir, src_split, name)
      by_split: dict[str, list[dict]] = collections.defaultdict(list)
      for entry in index["performances"]:
        if entry["performance_id"] in wanted:
          by_split[wanted[entry["performance_id"]]].append(entry)
      for split, entries in by_split.items():
        built = [e["performance_id"] for e in entries if e["status"] == "built"]
        found.update(built)
        if name in done[split]:
          out["present"] += len(built)
          continue
        keep = set(built)
        positions = [i for i, m in enumerate(index["records"])
                     if m["performance_id"] in keep]
        metas = [dict(index["records"][i], split=split) for i in positions]
        perf, ref = _read_features(source_dir, src_split, name, positions)
        records_lib.write_shard(records_dir, split, name, metas, perf, ref,
                                performances=[dict(e, split=split) for e in entries])
        out["refiled"] += len(built)
  out["missing"] = [pid for pid in wanted if pid not in found]
  return out


def _read_features(records_dir: str, split: str, name: str, positions: list[int]):
  """(performance, reference) float16 (N, 5, 96, 94) of shard `name`'s records
  `positions`."""
  shape = (0,) + constants.FEATURE_SHAPE
  if not positions:
    return np.zeros(shape, np.float16), np.zeros(shape, np.float16)
  recs = list(records_lib.read_records(records_dir, split, name, positions))
  return (np.stack([r["performance"] for r in recs]),
          np.stack([r["reference"] for r in recs]))


def main(argv) -> int:
  """CLI (see module doc)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  paths = write_fold_manifests(f.manifest, f.out_dir, corpus=f.corpus,
                               folds=f.folds, seed=f.seed)
  with open(os.path.join(f.out_dir, "folds.json"), encoding="utf-8") as fh:
    summary = json.load(fh)
  print(f"{len(paths)} folds of {len(summary['fold_of_song'])} {f.corpus} songs, "
        f"performances per fold {summary['performances_per_fold']}")
  for k, path in enumerate(paths):
    line = f"fold {k}: {path}"
    if f.records_from:
      res = refile_records(f.records_from, path,
                           os.path.join(os.path.dirname(path), "records"))
      line += (f"; records refiled {res['refiled']}, already there {res['present']}, "
               f"not in {f.records_from}: {len(res['missing'])}")
    print(line)
  return 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("manifest", None, "Manifest with a corpus column.", required=True)
  flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
  flags.DEFINE_string("corpus", "ssvd", "Corpus whose songs are cross-validated.")
  flags.DEFINE_integer("folds", 4, "Number of folds K.")
  flags.DEFINE_integer("seed", 0, "Tie order of the fold assignment.")
  flags.DEFINE_string("records_from", "", "Records folder to refile into each fold.")
  sys.exit(app.run(main))
