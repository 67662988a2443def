"""The fusion levers' protocol (BUILD_NOTES "Fusion levers"): each corpus is
scored leave-melodies-out with the other corpus always in the training part."""

import numpy as np
import pytest

from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import fusion_recipes

FEATURES = ["dtw_melody", "wrong_notes", "onset_deviation_ms"]


def rows(seed=0):
  rng = np.random.default_rng(seed)
  out = []
  for corpus, n, n_mel in (("mast", 160, 10), ("ssvd", 60, 6)):
    for i in range(n):
      wrong, onset, dtw = rng.random(), 200 * rng.random(), -100 * rng.random()
      target = 100 * (1 - 0.7 * wrong) - 0.1 * onset + 5 * rng.standard_normal()
      out.append({"corpus": corpus, "melody": f"{corpus}:m{i % n_mel}",
                  "target": target, "passed": float(target > 60),
                  "dtw_melody": dtw, "wrong_notes": wrong,
                  "onset_deviation_ms": onset})
  return out


def test_corpus_cv_keeps_the_other_corpus_in_training_and_no_test_melody(monkeypatch):
  data = rows()
  seen = []
  real_fit = fusion_lib.fit_fusion

  def spy(x, y, groups, *a, **k):
    seen.append(set(groups.tolist()))
    return real_fit(x, y, groups, *a, **k)

  monkeypatch.setattr(fusion_lib, "fit_fusion", spy)
  mast = {r["melody"] for r in data if r["corpus"] == "mast"}
  ssvd = {r["melody"] for r in data if r["corpus"] == "ssvd"}
  res = fusion_recipes.corpus_cv(data, FEATURES, list(fusion_lib.DEFAULT_CANDIDATES),
                                "pearson", test_corpus="ssvd", n_folds=3, seed=0,
                                n_boot=100)
  assert len(seen) == 3 and res["n"] == 60 and len(res["chosen"]) == 3
  held_out = [ssvd - s for s in seen]
  for train in seen:
    assert mast <= train  # every MAST melody trains every SSVD fold.
  # Every SSVD melody is held out exactly once.
  assert sorted(m for h in held_out for m in h) == sorted(ssvd)
  assert res["pearson"] > 0.8 and res["raw"]["pearson"] > 0.8


def test_merit_is_the_mean_of_the_three_acceptance_figures():
  res = {"mast": {"summary": {"pearson": [0.8, 0, 0], "auc": [0.9, 0, 0]}},
         "ssvd": {"summary": {"pearson": [0.7, 0, 0]}}}
  assert np.isclose(fusion_recipes.merit(res), 0.8)
  per_seed = [{"pearson": 0.5, "auc": 0.7, "raw": {"pearson": 0.4, "auc": 0.6}},
              {"pearson": 0.7, "auc": 0.9, "raw": {"pearson": 0.6, "auc": 0.8}}]
  s = fusion_recipes.summary(per_seed)
  assert np.allclose(s["pearson"], [0.6, 0.5, 0.7])
  assert np.allclose(s["raw_auc"], [0.7, 0.6, 0.8])


def test_missing_above_masks_the_term_beyond_its_bound(monkeypatch):
  data = rows()
  for r in data[::7]:
    r["onset_deviation_ms"] = 900.0  # beyond the bound below
  seen = []
  real_fit = fusion_lib.fit_fusion

  def spy(x, y, groups, *a, **k):
    seen.append(x[:, FEATURES.index("onset_deviation_ms")])
    return real_fit(x, y, groups, *a, **k)

  monkeypatch.setattr(fusion_lib, "fit_fusion", spy)
  fusion_recipes.corpus_cv(data, FEATURES, list(fusion_lib.DEFAULT_CANDIDATES),
                          "pearson", test_corpus="mast", n_folds=3, seed=0,
                          n_boot=100, missing_above={"onset_deviation_ms": 500.0})
  column = np.concatenate(seen)
  assert np.isnan(column).any()
  assert np.nanmin(column) >= -500.0  # the rating is minus the deviation.


def test_diagnostics_cost_every_ordered_term_and_refuse_unmatched_scores(tmp_path):
  from asa_jax.evaluation import fusion_diagnostics  # pylint: disable=g-import-not-at-top
  data = [dict(r, performance_id=f"p{i}") for i, r in enumerate(rows())]
  costs = fusion_diagnostics.monotone_costs(data, FEATURES, log=lambda s: None)
  assert set(costs) == {"all monotone", "all unordered", "classifier on pass/fail"} | {
      f"{n} unordered" for n in FEATURES}
  assert costs["all monotone"][0] > 0.8 and costs["all monotone"][1] > 0.8
  path = tmp_path / "scores.csv"
  path.write_text("performance_id,score\nnot_a_row,1.0\n")
  with pytest.raises(ValueError, match="scores.csv"):
    fusion_diagnostics.learned_residuals(data, FEATURES, [str(path)],
                                         log=lambda s: None)


def test_learned_scores_join_by_id_and_drop_the_selection_melodies(tmp_path):
  from asa_jax.evaluation import pooled_terms  # pylint: disable=g-import-not-at-top
  (tmp_path / "mast_scores.csv").write_text(
      "performance_id,melody,selection,score,mean_grade,passed\n"
      "a_per1_pass,a,0,0.5,3,1\nb_per2_fail,b,1,0.9,1,0\n")
  (tmp_path / "ssvd_scores.csv").write_text(
      "performance_id,melody,score,label_score\n77,x,-0.25,40\n")
  data = [{"performance_id": "a_per1_pass", "corpus": "mast"},
          {"performance_id": "b_per2_fail", "corpus": "mast"},
          {"performance_id": "c_per3_pass", "corpus": "mast"},
          {"performance_id": "ssvd-77", "corpus": "ssvd"}]
  out = pooled_terms.with_learned_scores(data, str(tmp_path))
  got = {r["performance_id"]: r[pooled_terms.LEARNED_COLUMN] for r in out}
  assert set(got) == {"a_per1_pass", "c_per3_pass", "ssvd-77"}
  assert got["a_per1_pass"] == 0.5 and got["ssvd-77"] == -0.25
  assert np.isnan(got["c_per3_pass"])
  # The CREPE scores (preferred when present) carry the manifest's 'ssvd-<id>'
  # ids already: they join the same rows, not a doubled prefix.
  (tmp_path / "ssvd_crepe_scores.csv").write_text(
      "performance_id,melody,score,label_score\nssvd-77,x,0.125,40\n")
  out = pooled_terms.with_learned_scores(data, str(tmp_path))
  got = {r["performance_id"]: r[pooled_terms.LEARNED_COLUMN] for r in out}
  assert got["ssvd-77"] == 0.125
  (tmp_path / "ssvd_crepe_scores.csv").unlink()
  (tmp_path / "ssvd_scores.csv").unlink()
  with pytest.raises(FileNotFoundError, match="ssvd_scores.csv"):
    pooled_terms.with_learned_scores(data, str(tmp_path))


def test_learned_scores_standardised_within_each_corpus():
  from asa_jax.evaluation import pooled_terms  # pylint: disable=g-import-not-at-top
  col = pooled_terms.LEARNED_COLUMN
  rows = ([{"corpus": "mast", col: v} for v in (-0.9, -0.5, 0.2, np.nan)]
          + [{"corpus": "ssvd", col: v} for v in (0.1, 0.5)])
  out, stats = pooled_terms.standardise_learned(rows)
  mast = np.array([-0.9, -0.5, 0.2])
  assert stats["mast"] == {"mean": pytest.approx(mast.mean()),
                           "sd": pytest.approx(mast.std())}
  assert stats["ssvd"] == {"mean": pytest.approx(0.3), "sd": pytest.approx(0.2)}
  got = [r[col] for r in out]
  np.testing.assert_allclose(got[:3], (mast - mast.mean()) / mast.std())
  assert np.isnan(got[3])
  np.testing.assert_allclose(got[4:], [-1.0, 1.0])
  assert rows[4][col] == 0.1  # the input rows are not changed.
