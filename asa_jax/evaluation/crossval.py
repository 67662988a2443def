r"""Pooled Pearson's r of cross-validation folds (leave-songs-out).

    python -m asa_jax.evaluation.crossval \
        --scores='runs/real_cv/*/fold_*/eval/scores.csv,runs/ssvd_baselines/scores.csv' \
        --manifest=data/real/manifest.csv --corpus=ssvd [--output=cv.json]

Each fold (input_pipeline/corpora/folds.py) tests its own songs with a model trained
without them; the folds' test scores together cover every song once. Per system, the
scores of the `corpus` rows of `manifest` are pooled over all the given scores.csv files
(eval.py's: system, song_id, performance_id, predicted, human) and correlated with the
labels: Pearson's r with a 95% percentile bootstrap CI over performances
(`bootstrap.pearson_interval`), the number of performances and of songs, and the
per-fold r. Rule-based baselines need no training, so their scores on all
performances can be pooled alongside (a scores.csv of `--split=all`).

Pooling scores of K differently trained models puts their output scales on one axis,
which can only lower r against a per-fold average; both are reported.
"""

from __future__ import annotations

import collections
import glob
import json
import math
import sys
from typing import Iterable, Mapping

import numpy as np

from asa_jax import atomic
from asa_jax.evaluation import bootstrap
from asa_jax.evaluation import report


def corpus_rows(manifest_path: str, corpus: str) -> dict[str, str]:
  """performance_id -> song_id of the manifest rows of `corpus`.

  Raises:
    ValueError: no `corpus` column, or no row of that corpus.
  """
  from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  fields, rows = manifest_lib.read_table(manifest_path)
  if "corpus" not in fields:
    raise ValueError(f"{manifest_path}: no 'corpus' column")
  out = {r["performance_id"]: r["song_id"] for r in rows if r["corpus"] == corpus}
  if not out:
    raise ValueError(f"{manifest_path}: no rows with corpus {corpus!r}")
  return out


def pooled(score_files: Iterable[str], wanted: Mapping[str, str], *,
           n_resamples: int = 1000, seed: int = 0) -> dict:
  """Pooled and per-file Pearson's r per system over the `wanted` performances.

  Args:
    score_files: eval.py scores.csv paths (one per fold, or one of all rows).
    wanted: performance_id -> song_id (`corpus_rows`); other rows are ignored.
    n_resamples, seed: bootstrap of the pooled r.

  Returns:
    {system: {"r", "ci95" ([lo, hi] or None), "n", "songs", "coverage" (n / wanted),
     "per_file": {path: [r or None, n]}, "mean_per_file_r"}}; r None when undefined.

  Raises:
    ValueError: a performance is scored twice for one system (overlapping folds),
      or a file lacks eval.py's columns (named).
  """
  pairs: dict[str, dict[str, tuple[float, float, str]]] = collections.defaultdict(dict)
  for path in score_files:
    for row in report.read_scores_csv(path):
      pid = row["performance_id"]
      if pid not in wanted or row["human"] is None or row["predicted"] is None:
        continue
      system = row["system"]
      if pid in pairs[system]:
        raise ValueError(f"{path}: {system} scores {pid} again (first in "
                         f"{pairs[system][pid][2]}): folds overlap")
      pairs[system][pid] = (row["predicted"], row["human"], path)
  out = {}
  for system, by_pid in sorted(pairs.items()):
    x = np.array([v[0] for v in by_pid.values()])
    y = np.array([v[1] for v in by_pid.values()])
    r = float(bootstrap.pearson_r(x, y)) if len(x) >= 3 else math.nan
    ci = bootstrap.pearson_interval(x, y, n_resamples=n_resamples, seed=seed)
    per_file = {}
    for path in sorted({v[2] for v in by_pid.values()}):
      sel = [v for v in by_pid.values() if v[2] == path]
      rf = (float(bootstrap.pearson_r(np.array([v[0] for v in sel]),
                                      np.array([v[1] for v in sel])))
            if len(sel) >= 3 else math.nan)
      per_file[path] = [None if math.isnan(rf) else rf, len(sel)]
    defined = [v[0] for v in per_file.values() if v[0] is not None]
    out[system] = {
        "r": None if math.isnan(r) else r, "ci95": ci.to_json(), "n": len(x),
        "songs": len({wanted[p] for p in by_pid}),
        "coverage": len(x) / len(wanted), "per_file": per_file,
        "mean_per_file_r": float(np.mean(defined)) if defined else None}
  return out


def expand(patterns: str) -> list[str]:
  """Comma-separated glob patterns -> sorted existing paths.

  Raises:
    FileNotFoundError: a pattern matches nothing (named).
  """
  paths = []
  for pattern in (p.strip() for p in patterns.split(",") if p.strip()):
    found = sorted(glob.glob(pattern))
    if not found:
      raise FileNotFoundError(f"{pattern}: no scores.csv matches")
    paths.extend(found)
  return paths


def main(argv) -> int:
  """CLI (see module doc)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  wanted = corpus_rows(f.manifest, f.corpus)
  result = pooled(expand(f.scores), wanted)
  print(f"{f.corpus}: {len(wanted)} performances of {len(set(wanted.values()))} songs")
  print("| system | pooled Pearson's r [95% CI] | n | songs | mean per-file r |")
  print("|---|---|---|---|---|")
  for system, res in sorted(result.items(), key=lambda kv: -(kv[1]["r"] or -2)):
    r = "undefined" if res["r"] is None else f"{res['r']:.3f}"
    ci = "" if res["ci95"] is None else f" [{res['ci95'][0]:.2f}, {res['ci95'][1]:.2f}]"
    m = res["mean_per_file_r"]
    print(f"| {system} | {r}{ci} | {res['n']} | {res['songs']} | "
          f"{'-' if m is None or len(res['per_file']) < 2 else f'{m:.3f}'} |")
  if f.output:
    atomic.write_text(f.output, json.dumps(result, indent=1))
  return 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("scores", None, "Comma-separated globs of eval.py scores.csv.",
                      required=True)
  flags.DEFINE_string("manifest", None, "Manifest with a corpus column.", required=True)
  flags.DEFINE_string("corpus", "ssvd", "Corpus whose rows are pooled.")
  flags.DEFINE_string("output", "", "Optional JSON output path.")
  sys.exit(app.run(main))
