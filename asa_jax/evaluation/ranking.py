r"""Degradation ranking: does a system order the versions of one recording correctly?

    python -m asa_jax.evaluation.ranking --scores=runs/real/eval/scores.csv \
        --manifest=data/real/manifest.csv [--output=runs/real/eval/ranking.json]

For a corpus of labelled degradations of real recordings (input_pipeline/corpora/real.py;
manifest column `source_id`), every source recording has K versions of known quality.
Per source, Spearman's rho between a system's predicted scores and the labels over
its versions; reported per system: the mean rho over sources with a 95% percentile
bootstrap CI (sources resampled, scipy.stats.bootstrap), the number of sources, and
per-corpus means. This is the "degradation ranking on unseen songs and singers"
figure of the real-singing issue (evaluate the test split: singers and songs unseen).
"""

from __future__ import annotations

import collections
import json
import math
import os
import sys
from typing import Mapping

import numpy as np


def read_sources(manifest_path: str) -> dict[str, tuple[str, str]]:
  """performance_id -> (source_id, corpus) from a manifest with a `source_id` column.

  Raises:
    ValueError: the manifest has no source_id column (not a real_corpus manifest).
  """
  from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  source = manifest_lib.column(manifest_path, "source_id")
  if source is None:
    raise ValueError(f"{manifest_path}: no 'source_id' column (written by "
                     "input_pipeline.corpora.real)")
  corpus = manifest_lib.column(manifest_path, "corpus") or {}
  return {pid: (source_id, corpus.get(pid, "")) for pid, source_id in source.items()}


def source_spearman(predicted: np.ndarray, human: np.ndarray) -> float:
  """Spearman's rho of one source's versions; nan with < 3 versions or ties only."""
  import scipy.stats  # pylint: disable=g-import-not-at-top
  if len(predicted) < 3 or np.ptp(predicted) == 0 or np.ptp(human) == 0:
    return math.nan
  return float(scipy.stats.spearmanr(predicted, human)[0])


def ranking(scores_csv: str, sources: Mapping[str, tuple[str, str]], *,
            resamples: int = 2000, seed: int = 0) -> dict:
  """Per-system mean per-source Spearman's rho with a bootstrap 95% CI.

  Args:
    scores_csv: eval.py's scores.csv (system, song_id, performance_id, predicted,
      human).
    sources: `read_sources` of the evaluated manifest.
    resamples: bootstrap resamples over sources.
    seed: bootstrap seed.

  Returns:
    {system: {"mean_rho", "ci95" [lo, hi] or None, "sources" (n with a defined rho),
     "per_corpus": {corpus: mean rho}, "pearson_per_corpus": {corpus: [r, n]}
     (pooled Pearson's r of all that corpus's performances; r None when undefined),
     "per_source": {source_id: rho}}}.
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top
  groups: dict[str, dict[str, list]] = collections.defaultdict(
      lambda: collections.defaultdict(list))
  from asa_jax.evaluation import report  # pylint: disable=g-import-not-at-top
  for row in report.read_scores_csv(scores_csv):
    if row["performance_id"] not in sources or row["human"] is None:
      continue
    source, _ = sources[row["performance_id"]]
    groups[row["system"]][source].append((row["predicted"], row["human"]))
  out = {}
  corpus_of = {s: c for s, c in sources.values()}
  for system, per_source in groups.items():
    rhos = {}
    for source, pairs in per_source.items():
      p = np.array(pairs)
      rho = source_spearman(p[:, 0], p[:, 1])
      if not math.isnan(rho):
        rhos[source] = rho
    values = np.array(list(rhos.values()))
    ci = None
    if len(values) >= 3 and np.ptp(values) > 0:
      res = scipy.stats.bootstrap((values,), np.mean, n_resamples=resamples,
                                  method="percentile", random_state=seed)
      ci = [float(res.confidence_interval.low), float(res.confidence_interval.high)]
    per_corpus = collections.defaultdict(list)
    for source, rho in rhos.items():
      per_corpus[corpus_of.get(source, "")].append(rho)
    pooled = collections.defaultdict(list)
    for source, pairs in per_source.items():
      pooled[corpus_of.get(source, "")].extend(pairs)
    pearson = {}
    for corpus, pairs in pooled.items():
      p = np.array(pairs)
      ok = len(p) >= 3 and np.ptp(p[:, 0]) > 0 and np.ptp(p[:, 1]) > 0
      pearson[corpus] = [float(scipy.stats.pearsonr(p[:, 0], p[:, 1])[0]) if ok
                         else None, int(len(p))]
    out[system] = {"mean_rho": float(values.mean()) if len(values) else None,
                   "ci95": ci, "sources": int(len(values)),
                   "per_corpus": {c: float(np.mean(v)) for c, v in per_corpus.items()},
                   "pearson_per_corpus": pearson,
                   "per_source": rhos}
  return out


def main(argv) -> int:
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  result = ranking(f.scores, read_sources(f.manifest))
  for system, r in sorted(result.items()):
    ci = "" if r["ci95"] is None else f" [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"
    mean = "undefined" if r["mean_rho"] is None else f"{r['mean_rho']:.3f}"
    pooled = ", ".join(f"{c or '-'} r {v[0]:.3f} (n {v[1]})" if v[0] is not None
                       else f"{c or '-'} r undefined (n {v[1]})"
                       for c, v in sorted(r["pearson_per_corpus"].items()))
    print(f"{system}: mean per-source Spearman {mean}{ci} over {r['sources']} "
          f"sources; pooled Pearson per corpus: {pooled}")
  if f.output:
    os.makedirs(os.path.dirname(os.path.abspath(f.output)), exist_ok=True)
    with open(f.output, "w", encoding="utf-8") as fh:
      json.dump(result, fh, indent=1)
  return 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("scores", None, "eval.py scores.csv", required=True)
  flags.DEFINE_string("manifest", None, "real_corpus manifest.csv", required=True)
  flags.DEFINE_string("output", "", "Optional JSON output path.")
  sys.exit(app.run(main))
