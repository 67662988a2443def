"""The real-label ablation entry point on a synthetic term table (issue 18, 4-6)."""

import math

import numpy as np

from asa_jax.baselines import term_table
from asa_jax.experiments import real_labels


def rows(n=64, seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    quality = rng.random()
    row = {name: math.nan for name in term_table.FEATURES}
    row.update(performance_id=f"p{i}", melody=f"m{i % 8}", target=1 + 3 * quality,
               passed=float(quality > 0.6), majority=1.0,
               dtw_melody=-200 * (1 - quality) + 10 * rng.standard_normal(),
               wrong_notes=(1 - quality) * 0.5 + 0.05 * rng.random(),
               onset_deviation_ms=100 * rng.random())
    out.append(row)
  return out


def test_ablation_joins_learned_scores_by_id_and_runs_without_them():
  table = rows()
  learned = {"contour": {f"p{i}": float(i % 5) for i in range(0, 64, 2)}}  # half.
  results, final = real_labels.run(table, "mast", n_folds=4, seed=0,
                                   learned=learned, n_boot=50, log=lambda s: None)
  by = {r["system"]: r for r in results["rows"]}
  assert by["learned:contour"]["n"] == 32  # missing ids are nan, not zero.
  assert "measured terms + learned fused (raw)" in by
  assert by["measured terms fused (raw)"]["pearson"] > 0.8
  assert by["wrong_notes"]["pearson"] > 0.8  # oriented: fewer wrong notes = better.
  assert final.features == ("dtw_melody", "wrong_notes", "onset_deviation_ms")
  why = results["example_contributions"]
  assert [w["target"] for w in why] == sorted(w["target"] for w in why)
  assert set(why[0]["contributions"]) == set(final.features)
  assert why[0]["score_0_100"] <= why[-1]["score_0_100"]
  plain, _ = real_labels.run(table, "mast", n_folds=4, seed=0, n_boot=50,
                             log=lambda s: None)
  assert not any(r["system"].startswith("learned") for r in plain["rows"])
  assert "| measured terms fused (raw) |" in real_labels.markdown(plain)
