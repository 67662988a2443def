"""Fusion and leave-melodies-out folds (issue 18, sections 4 and 6).

Synthetic features with a known monotone relation to the target; no data files.
"""

import os

import numpy as np
import pytest

from asa_jax.evaluation import fusion as fusion_lib
from asa_jax.evaluation import melody_cv


def data(n=240, seed=0):
  rng = np.random.default_rng(seed)
  melodies = np.array([f"m{i % 12}" for i in range(n)])
  x = rng.standard_normal((n, 3))
  x[rng.random(n) < 0.1, 2] = np.nan  # a term missing on some rows.
  y = 2.5 + 0.8 * np.tanh(x[:, 0]) + 0.3 * x[:, 1] + 0.1 * rng.standard_normal(n)
  passed = y > 2.8
  return x, y, melodies, passed


@pytest.mark.parametrize("family", ["linear", "hgb"])
def test_fusion_is_monotone_in_every_ordered_term(family):
  x, y, melodies, _ = data()
  fit = fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(1.0, 4.0), families=(family,))
  assert fit.family == family
  rng = np.random.default_rng(1)
  base = rng.standard_normal((50, 3))
  grid = np.linspace(-3, 3, 25)
  for j in (0, 1):
    rows = np.repeat(base, len(grid), axis=0)
    rows[:, j] = np.tile(grid, len(base))
    raw = fit.predict_raw(rows).reshape(len(base), len(grid))
    cal = fit.predict(rows).reshape(len(base), len(grid))
    assert np.all(np.diff(raw, axis=1) >= -1e-9)
    assert np.all(np.diff(cal, axis=1) >= -1e-9)
    assert np.all((cal >= 0) & (cal <= 100))
  assert np.corrcoef(fit.predict_raw(x), y)[0, 1] > 0.9


def test_fusion_contributions_save_and_load(tmp_path):
  x, y, melodies, _ = data()
  fit = fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(1.0, 4.0), families=("linear",))
  contrib = fit.contributions(x[:5])
  assert contrib.shape == (5, 3)
  # Linear: the contributions plus the intercept are the raw score.
  assert np.allclose(contrib.sum(axis=1) + fit.model.ridge_.intercept_,
                     fit.predict_raw(x[:5]))
  assert np.all(contrib[np.argsort(x[:5, 0])][:, 0] == np.sort(contrib[:, 0]))
  path = os.path.join(tmp_path, "fusion.pkl")
  fit.save(path)
  assert os.path.getsize(path) < 5_000_000
  back = fusion_lib.load(path)
  assert np.array_equal(back.predict(x), fit.predict(x))
  with pytest.raises(ValueError, match="expected"):
    back.predict(x[:, :2])
  hgb = fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(1.0, 4.0), families=("hgb",))
  c = hgb.contributions(x[:20])
  assert np.corrcoef(c[:, 0], x[:20, 0])[0, 1] > 0.8


def test_centred_isotonic_passes_through_block_centres_and_steps_less():
  rng = np.random.default_rng(3)
  raw = rng.uniform(-2, 2, 300)
  target = np.clip(50 + 20 * raw + 15 * rng.standard_normal(300), 0, 100)
  from sklearn.isotonic import IsotonicRegression
  iso = IsotonicRegression(y_min=0, y_max=100, out_of_bounds="clip").fit(raw, target)
  cir = fusion_lib.CentredIsotonic(0.0, 100.0).fit(raw, target)
  # Each block of the step fit: the centred map takes its level at the block's
  # mean raw score.
  level = iso.predict(raw)
  for v in np.unique(level):
    block = raw[level == v]
    assert cir.predict([block.mean()])[0] == pytest.approx(v, abs=1e-9)
  grid = np.linspace(-3, 3, 2001)
  out = cir.predict(grid)
  assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 100
  inside = (grid > cir.X_thresholds_[1]) & (grid < cir.X_thresholds_[-2])
  assert np.all(np.diff(out[inside]) > 0)  # no flat step between the centres.
  assert len(np.unique(cir.predict(raw))) > 3 * len(np.unique(level))
  assert np.abs(np.diff(out)).max() < np.abs(np.diff(iso.predict(grid))).max()
  # np.interp of the knots is the map (how `assess.fused.calibration_of` reads it).
  assert np.array_equal(np.interp(grid, cir.X_thresholds_, cir.y_thresholds_), out)


def test_the_fusion_calibrates_by_the_chosen_map():
  x, y, melodies, _ = data()
  fits = {c: fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                                   target_range=(1.0, 4.0), families=("linear",),
                                   calibration=c)
          for c in fusion_lib.CALIBRATIONS}
  assert np.array_equal(fits["isotonic"].predict_raw(x), fits["centred"].predict_raw(x))
  assert (len(np.unique(fits["centred"].predict(x)))
          > 3 * len(np.unique(fits["isotonic"].predict(x))))
  with pytest.raises(ValueError, match="calibration"):
    fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                          target_range=(1.0, 4.0), calibration="spline")


def test_fusion_selection_is_recorded_and_bad_input_raises():
  x, y, melodies, _ = data()
  fit = fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(1.0, 4.0))
  assert len(fit.selection) == (len(fusion_lib.LINEAR_ALPHAS)
                                + len(fusion_lib.HGB_PARAMS))
  assert max(fit.selection.values()) == fit.selection[
      next(k for k in fit.selection if k.startswith(fit.family)
           and str(fit.params) in k)]
  with pytest.raises(ValueError, match="directions"):
    fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, -1, 0],
                          target_range=(1.0, 4.0))
  with pytest.raises(ValueError, match="melodies"):
    fusion_lib.fit_fusion(x[:20], y[:20], np.array(["a", "b"] * 10),
                          ["a", "b", "c"], [1, 1, 0], target_range=(1.0, 4.0))


def test_melody_folds_hold_each_melody_in_one_fold_and_follow_the_seed():
  melodies = np.array([f"m{i % 19}" for i in range(80)])
  folds = melody_cv.melody_folds(melodies, 5, seed=0)
  for m in set(melodies):
    assert len(set(folds[melodies == m])) == 1
  assert set(folds) == set(range(5))
  assert np.array_equal(folds, melody_cv.melody_folds(melodies, 5, seed=0))
  assert not np.array_equal(folds, melody_cv.melody_folds(melodies, 5, seed=1))
  with pytest.raises(ValueError):
    melody_cv.melody_folds(melodies[:3], 5, seed=0)


def test_out_of_fold_never_scores_a_melody_it_trained_on(monkeypatch):
  x, y, melodies, passed = data()
  folds = melody_cv.melody_folds(melodies, 4, seed=0)
  seen = []
  real_fit = fusion_lib.fit_fusion

  def spy(xt, yt, groups, *a, **k):
    seen.append(set(groups.tolist()))
    return real_fit(xt, yt, groups, *a, **k)

  monkeypatch.setattr(fusion_lib, "fit_fusion", spy)
  cal, raw, chosen = melody_cv.out_of_fold(x, y, melodies, folds, ["a", "b", "c"],
                                           [1, 1, 0], target_range=(1.0, 4.0))
  assert len(seen) == 4 and len(chosen) == 4
  for k, train_melodies in enumerate(seen):
    assert not train_melodies & set(melodies[folds == k].tolist())
  res = melody_cv.agreement(raw, y, passed, n_resamples=200)
  assert res["pearson"] > 0.8 and res["auc"] > 0.9
  assert res["pearson_ci95"][0] < res["pearson"] < res["pearson_ci95"][1]
  assert res["auc_ci95"][0] <= res["auc"] <= res["auc_ci95"][1]


@pytest.mark.parametrize("family,params", [
    ("lasso", {"alpha": 0.01}),
    ("mean", fusion_lib.MEAN_PARAMS),
    ("pass_blend", fusion_lib.PASS_BLEND_PARAMS),
    ("bagged", {**fusion_lib.BAGGED_PARAMS, "bags": 3}),
    ("hgb", {**fusion_lib.REGULARISED_HGB[0], "target": "z"}),
])
def test_lever_candidates_are_monotone_and_track_the_target(family, params):
  x, y, melodies, passed = data()
  strata = np.array(["a", "b"])[np.arange(len(y)) % 2]
  fit = fusion_lib.fit_fusion(x, y, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(1.0, 4.0), candidates=[(family, params)],
                              passed=passed, strata=strata)
  assert fit.family == family
  rows = np.repeat(np.random.default_rng(2).standard_normal((30, 3)), 25, axis=0)
  rows[:, 0] = np.tile(np.linspace(-3, 3, 25), 30)
  raw = fit.predict_raw(rows).reshape(30, 25)
  assert np.all(np.diff(raw, axis=1) >= -1e-9)
  assert np.corrcoef(fit.predict_raw(x), y)[0, 1] > 0.9
  assert fit.contributions(x[:4]).shape == (4, 3)


def test_z_target_gives_each_stratum_the_shape_not_the_scale():
  # Stratum b's target is stratum a's shape on another scale (x 10, + 50): a
  # z-target fit predicts both from one shape, the raw fit is pulled by the offset.
  x, y, melodies, passed = data()
  b = np.arange(len(y)) % 2 == 1
  y2 = np.where(b, 50 + 10 * y, y)
  strata = np.where(b, "b", "a")
  z = fusion_lib.fit_fusion(x, y2, melodies, ["a", "b", "c"], [1, 1, 0],
                            target_range=(0.0, 100.0), strata=strata,
                            candidates=[("linear", {"alpha": 1.0, "target": "z"})])
  raw = fusion_lib.fit_fusion(x, y2, melodies, ["a", "b", "c"], [1, 1, 0],
                              target_range=(0.0, 100.0), strata=strata,
                              candidates=[("linear", {"alpha": 1.0})])
  for k in (b, ~b):
    assert np.corrcoef(z.predict_raw(x[k]), y2[k])[0, 1] > 0.9
    assert (np.corrcoef(z.predict_raw(x[k]), y2[k])[0, 1]
            > np.corrcoef(raw.predict_raw(x[k]), y2[k])[0, 1])


def test_strata_criterion_weighs_every_stratum_and_needs_labels():
  rng = np.random.default_rng(0)
  y = rng.standard_normal(100)
  passed = y > 0
  strata = np.array(["big"] * 90 + ["small"] * 10)
  good_on_big = np.where(strata == "big", y, -y)
  pooled = fusion_lib.selection_score(good_on_big, y, criterion="pearson")
  per_stratum = fusion_lib.selection_score(good_on_big, y, criterion="strata_r_auc",
                                           passed=passed, strata=strata)
  # big: (r 1 + AUC 1) / 2 = 1; small: (r -1 + AUC 0) / 2 = -0.5; mean 0.25.
  assert pooled > 0.8 and per_stratum == pytest.approx(0.25)
  with pytest.raises(ValueError, match="pass/fail"):
    fusion_lib.selection_score(y, y, criterion="strata_r_auc")
  with pytest.raises(ValueError, match="criterion"):
    fusion_lib.selection_score(y, y, criterion="spearman")
  with pytest.raises(ValueError, match="pass_blend"):
    x, yy, melodies, _ = data()
    fusion_lib.fit_fusion(x, yy, melodies, ["a", "b", "c"], [1, 1, 0],
                          target_range=(1.0, 4.0),
                          candidates=[("pass_blend", fusion_lib.PASS_BLEND_PARAMS)])
