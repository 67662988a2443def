"""Evaluation driver: manifest -> records -> scores -> Pearson table (paper 4, Table 2).

`evaluate_systems(learned, baselines, manifest, output_dir, split)` evaluates any set
of systems in one run: learned systems (`LearnedSystem(name, config, workdir)`,
restored with `asa_jax.train.checkpoint.restore_for_inference` and scored with
`scoring.score_performances`) and rule-based baselines by name
(`asa_jax.baselines.score_baselines`). `evaluate(config, workdir, ...)` is the
one-system form that `eval.py --config=...` runs.

Outputs in output_dir: scores.csv, pearson.json (one key per system with r, n and the
bootstrap 95% CI per song and Mix; "_meta": bootstrap settings, inter-judge agreement,
failed systems), table.md (Table 2 rows grouped Baseline / Proposed / Ablation /
Histogram / DTWDist, CIs, inter-judge agreement below), scatter_<system>.png,
clip_embeddings_<system>.npz (learned systems), figure6.png (paper 4.4),
figure7.png (paper 4.5, when the ablation rows are evaluated) and calibration.json
(learned systems whose workdir has one: MAE and Pearson's r of the calibrated 0..100
scores; not in the paper).
Caches (resumable): records_<reference>[_<hash>]/ (feature records of the evaluated
performances, one build per data.reference and feature settings, shared by all
learned systems; each system normalises with its own workdir/stats.json) and
baseline_cache/ (f0 / energy / onset contours of the baselines).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from asa_jax import ablations
from asa_jax import atomic
from asa_jax import systems
from asa_jax.baselines import names as baseline_names
from asa_jax.evaluation import figures
from asa_jax.evaluation import judges
from asa_jax.evaluation import pearson as pearson_lib
from asa_jax.evaluation import plots
from asa_jax.evaluation import records_reuse
from asa_jax.evaluation import report
from asa_jax.evaluation import scoring
from asa_jax.train import checkpoint
from input_pipeline import manifest as manifest_lib

DEFAULT_BOOTSTRAP_SAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class LearnedSystem:
  """A trained system to evaluate.

  Attributes:
    name: table row / file label (config.name or config.system).
    config: the ConfigDict it was trained with.
    workdir: its training workdir (checkpoints/, stats.json).
  """
  name: str
  config: Any
  workdir: str


def resolve_baselines(spec: str | Sequence[str]) -> list[str]:
  """'all' | 'none' | '' | 'a,b' | [names] -> list of baseline names.

  'all' is every name of asa_jax/baselines/names.py.
  """
  if isinstance(spec, str):
    spec = spec.strip()
    if spec == "all":
      return list(baseline_names.ALL)
    if spec in ("", "none"):
      return []
    return [n.strip() for n in spec.split(",") if n.strip()]
  return [str(n) for n in spec]
def report_systems(output_dir: str | os.PathLike,
                   scores_by_system: Mapping[str, list],
                   references: Mapping[str, str] | None = None, *,
                   groups: Mapping[str, str] | None = None,
                   agreement: Mapping | None = None,
                   failed: Mapping[str, str] | None = None,
                   bootstrap_samples: int = DEFAULT_BOOTSTRAP_SAMPLES,
                   seed: int = 0, ylabels: Mapping[str, str] | None = None,
                   log: Callable[[str], None] | None = print) -> dict:
  """Correlates and writes scores.csv, pearson.json, table.md, scatter_<system>.png.

  Args:
    output_dir: folder for the outputs (created).
    scores_by_system: system -> list of (song_id, performance_id, predicted, human).
    references: system -> "Reference Used" label for the table.
    groups: system -> Table 2 group (report.GROUP_ORDER), orders the table rows.
    agreement: `judges.inter_judge_agreement(...)` result ({} / None: no judges).
    failed: system -> reason, for systems that could not be evaluated (listed in
      pearson.json "_meta" and below the table).
    bootstrap_samples: resamples of the 95% CI of every r (0: no CI).
    seed: bootstrap seed.
    ylabels: system -> scatter y label.
    log: receives the undefined-r reasons and the table; None: silent.

  Returns:
    system -> `pearson.correlate(...)` result ({"per_song": {...}, "mix": ...}).
  """
  output_dir = os.fspath(output_dir)
  os.makedirs(output_dir, exist_ok=True)
  failed = dict(failed or {})
  correlations = {system: pearson_lib.correlate(scores, system=system, log=log,
                                                n_resamples=bootstrap_samples,
                                                seed=seed)
                  for system, scores in scores_by_system.items()}
  meta = {
      "bootstrap": {"method": "percentile", "confidence": 0.95,
                    "resamples": int(bootstrap_samples), "seed": int(seed),
                    "unit": "performance (per song: within the song; mix: all)"},
      "inter_judge": judges.agreement_json(agreement or {}),
      "failed": failed,
  }
  report.write_scores_csv(os.path.join(output_dir, "scores.csv"), scores_by_system)
  report.write_pearson_json(os.path.join(output_dir, "pearson.json"), correlations,
                            meta)
  notes = [judges.agreement_text(agreement or {})]
  if failed:
    notes.append("Not evaluated: " + "; ".join(f"{k} ({v})" for k, v in failed.items()))
  table = report.write_table_md(os.path.join(output_dir, "table.md"), correlations,
                                references, groups, notes=notes)
  for system, scores in scores_by_system.items():
    plots.plot_scatter(os.path.join(output_dir, f"scatter_{system}.png"), scores,
                       correlations[system], system=system,
                       ylabel=(ylabels or {}).get(system, "predicted score"))
  if log is not None:
    log(table + "".join(f"\n{n}" for n in notes if n))
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
  atomic.write_bytes(path, buf.getvalue())


def _read_rows(manifest_path: str, split: str, on_error: str,
               log: Callable[[str], None]) -> list:
  if split != "all" and split not in manifest_lib.SPLITS:
    raise ValueError(f"split must be 'all' or one of {manifest_lib.SPLITS}, got "
                     f"{split!r}")
  rows, problems = manifest_lib.read_manifest(manifest_path, on_error=on_error)
  for problem in problems:
    log(f"manifest: skipped: {problem}")
  if split != "all":
    rows = [row for row in rows if row.split == split]
  if not rows:
    raise ValueError(f"{manifest_path}: no usable rows in split {split!r}")
  return rows


def _score_learned(system: LearnedSystem, rows: list, manifest_path: str,
                   build_manifest: str, output_dir: str, built: set,
                   log: Callable[[str], None]):
  """Scores one learned system: stats, checkpoint, (shared) records, clips.

  Reads the system's training records when `records_reuse.training_records_for`
  allows it; else
  builds (once per feature setting and run) under output_dir.

  Returns (scores, clips). Raises whatever fails (missing stats.json or checkpoint,
  records build errors, no clip scored).
  """
  from input_pipeline import build  # pylint: disable=g-import-not-at-top
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  config, name = system.config, system.name
  stats_path = os.path.join(system.workdir, "stats.json")
  stats = records_lib.load_stats(stats_path)
  model, variables = checkpoint.restore_for_inference(config, system.workdir)
  records_dir = records_reuse.training_records_for(config, system.workdir,
                                                   manifest_path, rows)
  if records_dir is not None:
    log(f"[{name}] reusing the training records in {records_dir} (same manifest and "
        "feature settings)")
  else:
    records_dir = records_reuse.records_dir_for(config, output_dir)
    if records_dir not in built:  # One (resumable) build per feature setting and run.
      build.build_records(build_manifest, records_dir, config,  # Prints a summary.
                          stats_from=stats_path)
      built.add(records_dir)
  splits = sorted({row.split for row in rows})
  splits = [s for s in splits if os.path.isdir(os.path.join(records_dir, s))]
  scores, clips = scoring.score_performances(model, variables, records_dir, stats,
                                             config, split=splits, return_clips=True)
  if not scores:
    raise ValueError(f"no clip could be scored; see "
                     f"{os.path.join(records_dir, 'build_report.json')}")
  wanted = list(dict.fromkeys((row.song_id, row.performance_id) for row in rows))
  scored = {(s.song_id, s.performance_id) for s in scores}
  unscored = [f"{song}/{perf}" for song, perf in wanted
              if (str(song), str(perf)) not in scored]
  if unscored:
    log(f"[{name}] {len(unscored)} performance(s) have no clips and are not scored "
        f"(see {os.path.join(records_dir, 'build_report.json')}): "
        f"{', '.join(unscored)}")
  log(f"[{name}] scored {len(scores)} performance(s) from {len(clips)} clip(s)")
  return scores, clips


def other_metrics(scores: Mapping[str, Sequence], clips: Mapping[str, Any],
                  manifest_path: str) -> dict:
  """Per system: R^2 of its performance scores (regression metric of Seshadri & Lerch)
  and, for learned systems, the embedding metrics of Lee & Nam and the
  singer-embedding study on its performance embeddings, labelled by song and, where
  the manifest has a `singer` column, by singer (`embedding_metrics.embedding_report`).
  """
  from asa_jax.evaluation import embedding_metrics  # pylint: disable=g-import-not-at-top
  singers = {pid: singer for pid, singer in
             (manifest_lib.column(manifest_path, "singer") or {}).items() if singer}
  out = {}
  for name, rows in scores.items():
    pairs = [(s.predicted, s.human) for s in rows
             if s.human is not None and np.isfinite(s.human)]
    entry = {"r2": embedding_metrics.r2([p for p, _ in pairs], [h for _, h in pairs])}
    if name in clips and len(clips[name].metadata):
      c = clips[name]
      pids = [str(m["performance_id"]) for m in c.metadata]
      sets = {"song": {str(m["performance_id"]): str(m["song_id"]) for m in c.metadata}}
      if singers:
        sets["singer"] = singers
      entry["embeddings"] = embedding_metrics.embedding_report(c.performance, pids, sets)
    out[name] = entry
  return out


def evaluate_systems(learned: Sequence[LearnedSystem], baselines: Sequence[str],
                     manifest_path: str, output_dir: str, split: str = "test", *,
                     figure6_system: str | None = "auto",
                     figure7_rows: Sequence[str] = ablations.FIGURE7_ROWS,
                     bootstrap_samples: int | None = None, seed: int = 0,
                     crepe_capacity: str = "tiny", raise_errors: bool = False,
                     skipped: Mapping[str, str] | None = None,
                     log: Callable[[str], None] = print) -> dict:
  """Evaluates several systems on one manifest split and writes Table 2 outputs.

  Learned systems: each is restored from its workdir (best, else latest checkpoint),
  normalises with its own workdir/stats.json, and scores the feature records of the
  split's performances, which are built once per data.reference and feature
  settings under output_dir (`records_reuse.records_dir_for`; resumable). Baselines are scored by
  `asa_jax.baselines.score_baselines` with contours cached in
  output_dir/baseline_cache. A system that fails (no checkpoint, no stats, build or
  baseline error, asa_jax.baselines missing) is reported and skipped; the others are
  still evaluated. Pearson's r per song and Mix with a bootstrap 95% CI (paper 4,
  Table 2), the inter-judge agreement of the split (paper 4.1), Figure 6 (PCA of
  `figure6_system`'s clip embeddings, paper 4.4) and Figure 7 (the `figure7_rows`
  that were evaluated, when at least two, paper 4.5).

  Args:
    learned: learned systems (unique names).
    baselines: baseline names (asa_jax.baselines.names.REFERENCE_USED keys).
    manifest_path: manifest CSV.
    output_dir: outputs and caches (see module doc).
    split: 'all' or one of input_pipeline.manifest.SPLITS.
    figure6_system: system whose clip embeddings make Figure 6 (None: no figure;
      "auto": the first learned system with anchor embeddings, a triplet system).
    figure7_rows: ablation rows of Figure 7, in bar order.
    bootstrap_samples: CI resamples; None -> the first learned config's
      eval.bootstrap_samples, else 1000.
    seed: bootstrap seed.
    crepe_capacity: CREPE model of the baselines' f0 contours.
    raise_errors: re-raise a system's error instead of skipping it.
    skipped: name -> reason of systems the caller could not even set up (e.g. not
      trained); reported with the failed ones.
    log: progress, problems and the table.

  Returns:
    {"scores": {name: [PerformanceScore]}, "correlations": {name: correlate()},
     "clips": {name: ClipEmbeddings}, "failed": {name: reason},
     "agreement": inter_judge_agreement result, "figures": [written paths]}

  Raises:
    ValueError: unknown split, no manifest row in it, duplicate system names, or
      (raise_errors) a system's error.
  """
  names = [s.name for s in learned] + list(baselines)
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"system names must be unique; repeated: {duplicates}")
  on_error = learned[0].config.data.on_error if learned else "skip"
  rows = _read_rows(manifest_path, split, on_error, log)
  if bootstrap_samples is None:
    bootstrap_samples = (int(learned[0].config.eval.bootstrap_samples) if learned
                         else DEFAULT_BOOTSTRAP_SAMPLES)
  os.makedirs(output_dir, exist_ok=True)
  n_perf = len(dict.fromkeys((row.song_id, row.performance_id) for row in rows))
  log(f"{n_perf} performance(s) ({len(rows)} manifest row(s)) of {manifest_path} in "
      f"split {split!r}; systems: {', '.join(names)}")

  build_manifest = manifest_path
  if split != "all" and learned:
    build_manifest = os.path.join(output_dir, f"manifest_{split}.csv")
    manifest_lib.write_split_manifest(manifest_path, split, build_manifest)

  scores: dict[str, list] = {}
  clips: dict[str, scoring.ClipEmbeddings] = {}
  references: dict[str, str] = {}
  groups: dict[str, str] = {}
  ylabels: dict[str, str] = {}
  failed: dict[str, str] = dict(skipped or {})

  def fail(name: str, error: BaseException) -> None:
    if raise_errors:
      raise error
    failed[name] = f"{type(error).__name__}: {error}"
    log(f"[{name}] FAILED, skipped: {failed[name]}")
    if error.__traceback__ is not None and not isinstance(error, FileNotFoundError):
      log("".join(traceback.format_exception(error)).rstrip())  # Unexpected: details.

  built: set[str] = set()
  calibrated: dict[str, dict] = {}
  for system in learned:
    log(f"[{system.name}] evaluating {system.workdir}")
    try:
      scores[system.name], clips[system.name] = _score_learned(
          system, rows, manifest_path, build_manifest, output_dir, built, log)
    except Exception as e:  # pylint: disable=broad-except
      fail(system.name, e)
      continue
    write_clip_embeddings(
        os.path.join(output_dir, f"clip_embeddings_{system.name}.npz"),
        clips[system.name])
    cal = calibration_metrics(system.workdir, scores[system.name])
    if cal is not None:
      calibrated[system.name] = cal
      log(f"[{system.name}] calibrated scores ({cal['method']}, fitted on the "
          f"validation split): MAE {cal['mae']:.2f}, Pearson's r {_r(cal['pearson_calibrated'])}"
          f" (raw {_r(cal['pearson_raw'])}), n = {cal['n']}")
    learned_system = systems.get(system.config)
    references[system.name] = report.reference_label(system.config)
    groups[system.name] = report.table_group(system.name, learned_system.group)
    ylabels[system.name] = learned_system.score_label

  if baselines:
    try:
      from asa_jax import baselines as baselines_lib  # pylint: disable=g-import-not-at-top
      labels = report.baseline_labels()
      unknown = [n for n in baselines if n not in labels]
      for name in unknown:
        fail(name, KeyError(f"unknown baseline; known: {', '.join(labels)}"))
      known = [n for n in baselines if n in labels]
      result = baselines_lib.score_baselines(
          manifest_path, known, split=split,
          cache_dir=os.path.join(output_dir, "baseline_cache"),
          crepe_capacity=crepe_capacity, log=log) if known else {}
      for name in known:
        if not result.get(name):
          fail(name, ValueError("the baseline scored no performance"))
          continue
        scores[name] = list(result[name])
        references[name] = labels[name]
        groups[name] = report.table_group(name)
        ylabels[name] = f"{name} (higher = better)"
    except Exception as e:  # pylint: disable=broad-except
      for name in baselines:
        if name not in scores and name not in failed:
          fail(name, e)

  ordered = sorted(scores, key=lambda n: (
      report.GROUP_ORDER.index(groups.get(n, "Other")), report.paper_rank(n)))
  scores = {name: scores[name] for name in ordered}
  agreement = judges.inter_judge_agreement(rows)
  correlations = report_systems(output_dir, scores, references, groups=groups,
                                agreement=agreement, failed=failed,
                                bootstrap_samples=bootstrap_samples, seed=seed,
                                ylabels=ylabels, log=log)

  written = []
  if calibrated:
    path = os.path.join(output_dir, "calibration.json")
    atomic.write_json(path, {k: {m: (None if isinstance(v, float) and np.isnan(v)
                                     else v) for m, v in d.items()}
                             for k, d in calibrated.items()})
    written.append(path)
  try:  # The other papers' metrics (asa_jax/evaluation/embedding_metrics.py).
    path = os.path.join(output_dir, "embedding_metrics.json")
    atomic.write_text(path, json.dumps(
        other_metrics(scores, clips, manifest_path), indent=1))
    written.append(path)
  except Exception as e:  # pylint: disable=broad-except
    log(f"embedding_metrics.json not written: {type(e).__name__}: {e}")
  if figure6_system == "auto":
    figure6_system = next((s.name for s in learned
                           if systems.get(s.config).batch_kind == "triplet"), None)
  if figure6_system and figure6_system in clips:
    path = os.path.join(output_dir, "figure6.png")
    try:
      c = clips[figure6_system]
      figures.plot_embeddings_pca(
          path, c.performance, [m["song_id"] for m in c.metadata],
          [np.nan if scoring.human_score(m.get("score")) is None
           else scoring.human_score(m.get("score")) for m in c.metadata], system=figure6_system)
      written.append(path)
    except Exception as e:  # pylint: disable=broad-except
      log(f"Figure 6 not drawn: {type(e).__name__}: {e}")
  elif figure6_system:
    log(f"Figure 6 not drawn: system {figure6_system!r} was not evaluated")
  present = [r for r in figure7_rows if r in correlations]
  if len(present) >= 2:
    path = os.path.join(output_dir, "figure7.png")
    figures.plot_ablation(path, correlations, rows=figure7_rows)
    written.append(path)
  elif any(r in names for r in figure7_rows[:-1]):
    log(f"Figure 7 not drawn: only {present} of {list(figure7_rows)} evaluated")
  if failed:
    log(f"{len(failed)} system(s) not evaluated: {', '.join(failed)}")
  log(f"outputs in {output_dir}")
  return {"scores": scores, "correlations": correlations, "clips": clips,
          "failed": failed, "agreement": agreement, "figures": written}


def _r(value: float) -> str:
  return "undefined" if value is None or np.isnan(value) else f"{value:.3f}"


def calibration_metrics(workdir: str, scores: Sequence) -> dict | None:
  """MAE and Pearson's r of a system's calibrated scores against the human ones.

  Applies WORKDIR/calibration.json (fitted on the validation split at the end of
  training; asa_jax.evaluation.calibration) to the evaluated PerformanceScores.

  Returns:
    {"method", "human", "n", "pearson_raw", "pearson_calibrated", "mae"}, or None
    when the workdir has no calibration.json.
  """
  from asa_jax.evaluation import calibration as calibration_lib  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, calibration_lib.FILENAME)
  if not os.path.isfile(path):
    return None
  cal = calibration_lib.load(path)
  m = calibration_lib.metrics(cal, [s.predicted for s in scores],
                              [np.nan if s.human is None else s.human for s in scores])
  return {"method": cal.method, "human": cal.human, **m}


def evaluate(config, workdir: str, manifest_path: str, output_dir: str,
             split: str = "all", *, log: Callable[[str], None] = print) -> dict:
  """Scores a manifest's performances with one trained system (eval.py --config).

  `evaluate_systems` with this one system (name = config.name or config.system),
  errors raised instead of skipped: read the manifest; build (cached, resumable)
  feature records for the chosen performances under output_dir/records_<reference>,
  normalisation statistics taken from workdir/stats.json; restore the model from
  workdir; score every performance (paper 3.2.3); Pearson per song and Mix with
  bootstrap CIs (paper 4); write scores.csv, pearson.json, table.md,
  scatter_<name>.png, clip_embeddings_<name>.npz and, for a triplet system,
  figure6.png. Performances without a human score are scored but left out of
  Pearson.

  Args:
    config: the system's ConfigDict (the one it was trained with).
    workdir: training workdir (checkpoints, stats.json).
    manifest_path: manifest CSV of the performances to evaluate.
    output_dir: where outputs and records go.
    split: 'all' (every manifest row) or one of 'train', 'validation', 'test'.
    log: progress and reason messages.

  Returns:
    {"scores": list[PerformanceScore], "correlations": {name: correlate()},
     "clips": ClipEmbeddings}

  Raises:
    ValueError: unknown split, no manifest row in the split, or no clip scored.
    FileNotFoundError: workdir/stats.json or the checkpoint missing.
  """
  name = report.system_name(config)
  result = evaluate_systems(
      [LearnedSystem(name, config, workdir)], [], manifest_path, output_dir, split,
      figure6_system=name if systems.get(config).batch_kind == "triplet" else None,
      raise_errors=True, log=log)
  return {"scores": result["scores"][name],
          "correlations": {name: result["correlations"][name]},
          "clips": result["clips"][name]}
