"""Evaluation driver: manifest -> records -> scores -> Pearson table (paper 4, Table 2).

`evaluate(config, workdir, manifest, output_dir, split)` is what eval.py runs for one
trained system; `report_systems(output_dir, scores_by_system, references)` writes the
outputs for any number of systems (a dict system -> scores), so several systems can be
put in one Table 2 later.

Outputs in output_dir: scores.csv, pearson.json, table.md, scatter_<system>.png,
clip_embeddings_<system>.npz (clip embeddings for the PCA figure of paper 4.4), and
records/ (the feature records of the evaluated performances, cached and resumable).
"""

from __future__ import annotations

import csv
import io
import os
from typing import Callable, Mapping

import numpy as np

from asa_jax.evaluation import pearson as pearson_lib
from asa_jax.evaluation import plots
from asa_jax.evaluation import report
from asa_jax.evaluation import scoring

SPLITS = ("train", "validation", "test")
REFERENCE_LABELS = {"original": "Original Track", "accompaniment": "Accompaniment Track"}
# Systems that score a performance without any reference (paper 3.2.1, 3.2.4).
UNREFERENCED_SYSTEMS = ("direct", "embdirect")
PATH_COLUMNS = ("performance_audio", "reference_audio", "accompaniment_audio")


def reference_label(config) -> str:
  """Table 2's "Reference Used" cell for a config: Original / Accompaniment Track."""
  if str(config.system).lower() in UNREFERENCED_SYSTEMS:
    return "None"
  reference = config.data.get("reference", "original")
  return REFERENCE_LABELS.get(reference, str(reference))


def load_stats(path: str | os.PathLike) -> dict:
  """Reads training statistics {"mean": [5], "std": [5], "channels": [5]}.

  Raises:
    FileNotFoundError: no stats file (the message says where it comes from).
    ValueError: keys missing or not the 5 channels (input_pipeline.records.load_stats).
  """
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path}: training statistics not found; train.py copies records_dir/"
        "stats.json into the workdir, and evaluation normalises with them")
  return records_lib.load_stats(path)


def report_systems(output_dir: str | os.PathLike,
                   scores_by_system: Mapping[str, list],
                   references: Mapping[str, str] | None = None, *,
                   log: Callable[[str], None] | None = print) -> dict:
  """Correlates and writes scores.csv, pearson.json, table.md, scatter_<system>.png.

  Args:
    output_dir: folder for the outputs (created).
    scores_by_system: system -> list of (song_id, performance_id, predicted, human).
    references: system -> "Reference Used" label for the table.
    log: receives the undefined-r reasons and the table; None: silent.

  Returns:
    system -> `pearson.correlate(...)` result ({"per_song": {...}, "mix": ...}).
  """
  output_dir = os.fspath(output_dir)
  os.makedirs(output_dir, exist_ok=True)
  correlations = {system: pearson_lib.correlate(scores, system=system, log=log)
                  for system, scores in scores_by_system.items()}
  report.write_scores_csv(os.path.join(output_dir, "scores.csv"), scores_by_system)
  report.write_pearson_json(os.path.join(output_dir, "pearson.json"), correlations)
  table = report.write_table_md(os.path.join(output_dir, "table.md"), correlations,
                                references)
  for system, scores in scores_by_system.items():
    plots.plot_scatter(os.path.join(output_dir, f"scatter_{system}.png"), scores,
                       correlations[system], system=system)
  if log is not None:
    log(table)
  return correlations


def write_clip_embeddings(path: str | os.PathLike, clips: scoring.ClipEmbeddings) -> None:
  """Saves clip embeddings (.npz): performance, anchor (N, D) float32, similarity
  (N,), song_id, performance_id (N,) str, human (N,) float (nan = none),
  segment_start (N,) seconds."""
  meta = clips.metadata
  buf = io.BytesIO()
  np.savez(
      buf, performance=clips.performance, anchor=clips.anchor,
      similarity=clips.similarity,
      song_id=np.array([str(m["song_id"]) for m in meta], dtype=str),
      performance_id=np.array([str(m["performance_id"]) for m in meta], dtype=str),
      human=np.array([np.nan if m.get("score") is None else float(m["score"])
                      for m in meta], np.float64),
      segment_start=np.array([float(m.get("segment_start", np.nan)) for m in meta],
                             np.float64))
  report.atomic_write_bytes(path, buf.getvalue())


def restore_model(config, workdir: str):
  """(model, variables) of the best (else latest) checkpoint in workdir.

  Delegates to `asa_jax.train.restore_for_inference(config, workdir)`.
  """
  from asa_jax import train as train_lib  # pylint: disable=g-import-not-at-top
  return train_lib.restore_for_inference(config, workdir)


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
  with open(manifest_path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    fields = reader.fieldnames or []
    if "split" not in fields:
      raise ValueError(f"{manifest_path}: no 'split' column (header: {fields})")
    rows = [row for row in reader if (row.get("split") or "").strip() == split]
  for row in rows:
    for column in PATH_COLUMNS:
      value = (row.get(column) or "").strip()
      if value:  # As input_pipeline.manifest resolves them.
        row[column] = os.path.abspath(os.path.join(base, os.path.expanduser(value)))
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  report.atomic_write_text(out_path, buf.getvalue())
  return len(rows)


def evaluate(config, workdir: str, manifest_path: str, output_dir: str,
             split: str = "all", *, log: Callable[[str], None] = print) -> dict:
  """Scores a manifest's performances with a trained system and writes Table 2 outputs.

  Steps: read the manifest; build (cached, resumable) feature records for the chosen
  performances under output_dir/records, normalisation statistics taken from
  workdir/stats.json (the training statistics); restore the model from workdir;
  score every performance (paper 3.2.3); Pearson per song and Mix (paper 4); write
  scores.csv, pearson.json, table.md, scatter_<system>.png and
  clip_embeddings_<system>.npz. Performances without a human score are scored but
  left out of Pearson.

  Args:
    config: the system's ConfigDict (the one it was trained with).
    workdir: training workdir (checkpoints, stats.json).
    manifest_path: manifest CSV of the performances to evaluate.
    output_dir: where outputs and records go.
    split: 'all' (every manifest row) or one of 'train', 'validation', 'test'.
    log: progress and reason messages.

  Returns:
    {"scores": list[PerformanceScore], "correlations": {...}, "clips": ClipEmbeddings}

  Raises:
    ValueError: unknown split, no manifest row in the split, or no clip scored.
    FileNotFoundError: workdir/stats.json missing.
  """
  # Imported here: the pipeline is only needed for a full run.
  from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top

  if split != "all" and split not in SPLITS:
    raise ValueError(f"split must be 'all' or one of {SPLITS}, got {split!r}")
  system = str(config.system)
  stats_path = os.path.join(workdir, "stats.json")
  stats = load_stats(stats_path)
  os.makedirs(output_dir, exist_ok=True)

  rows, problems = manifest_lib.read_manifest(
      manifest_path, on_error=config.data.get("on_error", "skip"))
  for problem in problems:
    log(f"manifest: skipped: {problem}")
  if split != "all":
    rows = [row for row in rows if row.split == split]
  if not rows:
    raise ValueError(f"{manifest_path}: no usable rows in split {split!r}")
  # Phrase rows of one performance share its performance_id (manifest.py).
  wanted = list(dict.fromkeys((row.song_id, row.performance_id) for row in rows))
  log(f"{len(wanted)} performance(s) ({len(rows)} manifest row(s)) of {manifest_path} "
      f"in split {split!r}")

  build_manifest = manifest_path
  if split != "all":
    build_manifest = os.path.join(output_dir, f"manifest_{split}.csv")
    write_split_manifest(manifest_path, split, build_manifest)
  records_dir = os.path.join(output_dir, "records")
  records_lib.build_records(build_manifest, records_dir, config,  # Prints a summary.
                            stats_from=stats_path)

  model, variables = restore_model(config, workdir)
  splits = sorted({row.split for row in rows})
  splits = [s for s in splits if os.path.isdir(os.path.join(records_dir, s))]
  scores, clips = scoring.score_performances(model, variables, records_dir, stats,
                                             config, split=splits, return_clips=True)
  if not scores:
    raise ValueError(f"no clip of {manifest_path} (split {split!r}) could be scored; "
                     f"see {os.path.join(records_dir, 'build_report.json')}")
  scored = {(s.song_id, s.performance_id) for s in scores}
  unscored = [f"{song}/{perf}" for song, perf in wanted
              if (str(song), str(perf)) not in scored]
  if unscored:
    log(f"{len(unscored)} performance(s) have no clips and are not scored (see "
        f"{os.path.join(records_dir, 'build_report.json')}): {', '.join(unscored)}")
  log(f"[{system}] scored {len(scores)} performance(s) from {len(clips)} clip(s)")

  write_clip_embeddings(os.path.join(output_dir, f"clip_embeddings_{system}.npz"),
                        clips)
  correlations = report_systems(output_dir, {system: scores},
                                {system: reference_label(config)}, log=log)
  return {"scores": scores, "correlations": correlations, "clips": clips}
