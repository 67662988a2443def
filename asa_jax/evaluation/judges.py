"""Inter-judge agreement: mean pairwise Pearson's r between judges (paper 4.1).

Paper 4.1: 5 judges scored the 45 test recordings and "the scores reached an average
inter-judge correlation of 0.78". We compute exactly that: for every pair of judges
(j, k), Pearson's r between judge j's and judge k's scores over the performances
both scored, and the plain mean of those r over the pairs (no Fisher z averaging;
the paper gives none). Judges are identified by their position in the manifest's
`judge_scores` column (';'-separated, the same judge order on every row), as
`input_pipeline.manifest.ManifestRow.judge_scores` reads it.

Reported per song (performances of that song) and overall (all performances pooled).
A pair whose r is undefined (fewer than 3 common performances, or a judge giving one
constant score) is left out of the mean and counted.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Iterable, Sequence

import numpy as np

from asa_jax.evaluation import pearson as pearson_lib

OVERALL = "overall"


@dataclasses.dataclass(frozen=True)
class Agreement:
  """Mean pairwise inter-judge Pearson's r of one group of performances.

  Attributes:
    r: mean of the defined pairwise r, in [-1, 1]; None when no pair is defined.
    n_performances: performances with at least two judge scores.
    n_judges: number of judge positions seen.
    n_pairs: judge pairs whose r is defined (used in the mean).
    n_undefined_pairs: judge pairs left out (r undefined).
    reason: why r is None.
  """
  r: float | None
  n_performances: int
  n_judges: int
  n_pairs: int
  n_undefined_pairs: int = 0
  reason: str | None = None

  def to_json(self) -> dict:
    """The pearson.json entry (all attributes except a None reason)."""
    out = dataclasses.asdict(self)
    if out["reason"] is None:
      del out["reason"]
    return out


def mean_pairwise_r(judge_scores: Sequence[Sequence[float]]) -> Agreement:
  """Mean Pearson's r over all judge pairs (paper 4.1).

  Args:
    judge_scores: one sequence per performance: the judges' scores in judge order
      (judge i = position i); sequences may be shorter (a judge missing at the end).

  Returns:
    Agreement; r None with a reason when fewer than 2 judges or no pair is defined.
  """
  rows = [tuple(float(v) for v in s) for s in judge_scores if len(s) >= 2]
  n_judges = max((len(s) for s in rows), default=0)
  if n_judges < 2:
    return Agreement(None, len(rows), n_judges, 0, 0,
                     "fewer than 2 judges per performance")
  rs = []
  undefined = 0
  for j, k in itertools.combinations(range(n_judges), 2):
    pairs = [(s[j], s[k]) for s in rows if len(s) > k]
    corr = pearson_lib.pearson([p[0] for p in pairs], [p[1] for p in pairs])
    if corr.r is None:
      undefined += 1
    else:
      rs.append(corr.r)
  if not rs:
    return Agreement(None, len(rows), n_judges, 0, undefined,
                     f"no judge pair has a defined r ({undefined} pairs: n < 3 or "
                     "constant scores)")
  return Agreement(float(np.mean(rs)), len(rows), n_judges, len(rs), undefined)


def inter_judge_agreement(performances: Iterable) -> dict:
  """Per-song and overall inter-judge agreement of a set of performances.

  Args:
    performances: items with attributes song_id, performance_id and judge_scores
      (e.g. manifest rows, `input_pipeline.manifest.ManifestRow`); several rows of
      one (song_id, performance_id) (phrase files) count once (the first).

  Returns:
    {"per_song": {song_id: Agreement} (natural order), "overall": Agreement}, or {}
    when no performance has two or more judge scores.
  """
  seen: dict[tuple[str, str], tuple[float, ...]] = {}
  for row in performances:
    key = (str(row.song_id), str(row.performance_id))
    if key not in seen:
      seen[key] = tuple(row.judge_scores or ())
  if not any(len(s) >= 2 for s in seen.values()):
    return {}
  songs = sorted({song for song, _ in seen}, key=pearson_lib.natural_key)
  per_song = {song: mean_pairwise_r([s for (g, _), s in seen.items() if g == song])
              for song in songs}
  return {"per_song": per_song, OVERALL: mean_pairwise_r(list(seen.values()))}


def agreement_json(agreement: dict) -> dict | None:
  """JSON form of `inter_judge_agreement(...)` (None when there are no judges)."""
  if not agreement:
    return None
  return {"definition": "mean pairwise Pearson's r between judges (paper 4.1)",
          "per_song": {s: a.to_json() for s, a in agreement["per_song"].items()},
          OVERALL: agreement[OVERALL].to_json()}


def agreement_text(agreement: dict) -> str:
  """One markdown paragraph for below the table ('' when there are no judges)."""
  if not agreement:
    return ""

  def fmt(a: Agreement) -> str:
    return "-" if a.r is None else f"{a.r:.3f}"

  overall = agreement[OVERALL]
  songs = ", ".join(f"{s} {fmt(a)}" for s, a in agreement["per_song"].items())
  return (f"Inter-judge agreement (mean pairwise Pearson's r between {overall.n_judges} "
          f"judges, paper 4.1): overall {fmt(overall)} ({overall.n_performances} "
          f"performances, {overall.n_pairs} judge pairs); per song: {songs}.")
