"""The default scorer's learned contour comparator (issue 18, 6; issue 19, 2): a saved
folder scores a pair exactly as its towers do one by one, averaged; the padding of
the window count changes nothing; a contour without voice gives nan; a broken folder
gets one error naming it; and the shipped comparator is the one the shipped fusion
was fitted with."""

import os

import jax
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.assess import contour_comparator, fused
from input_pipeline import contour_pool
from tests import contour_worker

FRAMES = 160


def _config():
  return contour_worker.tiny_config("contour_rori", FRAMES)


def _towers(config, seeds):
  system = systems.get(config)
  model = system.build_model(config)
  return system, model, [model.init(jax.random.PRNGKey(s), *system.init_inputs(None),
                                    train=False) for s in seeds]


def _hz(cents):
  return np.where(cents > 0, 440.0 * 2.0 ** ((cents - 6900.0) / 1200.0), 0.0)


@pytest.fixture(scope="module")
def pair():
  b = contour_worker.synthetic_batch(3, FRAMES, seed=5)
  ref = np.concatenate(list(b["cents"]))  # 3 windows' worth of notes.
  perf = ref.copy()
  perf[FRAMES // 2:FRAMES] += 100.0 * (perf[FRAMES // 2:FRAMES] > 0)  # a wrong stretch
  return _hz(perf), _hz(ref)


def test_saved_comparator_is_the_mean_of_its_towers(tmp_path, pair):
  config = _config()
  system, model, variables = _towers(config, (0, 1))
  paths = contour_comparator.save(str(tmp_path), config, variables)
  assert sorted(os.path.basename(p) for p in paths) == [
      "config.json", "tower_0.msgpack", "tower_1.msgpack"]
  comparator = contour_comparator.ContourComparator.load(str(tmp_path))
  assert comparator.n_towers == 2 and comparator.window == FRAMES
  perf_hz, ref_hz = pair
  arrays = system.pair_inputs(contour_pool.hz_to_cents(perf_hz),
                              contour_pool.hz_to_cents(ref_hz), FRAMES)
  # Each tower alone, straight through the system (no padding, no vmap).
  each = [float(np.mean(system.score_inputs(model, v, *arrays))) for v in variables]
  assert abs(each[0] - each[1]) > 1e-4  # two different towers
  assert comparator.score(perf_hz, ref_hz) == pytest.approx(np.mean(each), abs=1e-5)
  # Window scores: K (not a power of two) windows, padded inside, cut back.
  k = len(arrays[0])
  assert k % contour_comparator.MIN_BUCKET != 0
  window = comparator(*arrays)
  assert window.shape == (k,)
  np.testing.assert_allclose(window, np.mean(
      [system.score_inputs(model, v, *arrays) for v in variables], axis=0), atol=1e-5)


def test_a_given_alignment_gives_the_same_score(tmp_path, pair):
  """The default scorer hands the terms' alignment over (no second DTW)."""
  from asa_jax.features import aligned_contour  # pylint: disable=g-import-not-at-top
  config = _config()
  _, _, variables = _towers(config, (0, 1))
  contour_comparator.save(str(tmp_path), config, variables)
  comparator = contour_comparator.ContourComparator.load(str(tmp_path))
  perf_hz, ref_hz = pair
  a = aligned_contour.aligned_contour(perf_hz, ref_hz, hop_s=0.01)
  assert comparator.score(perf_hz, ref_hz, aligned=a) == pytest.approx(
      comparator.score(perf_hz, ref_hz), abs=1e-6)
  # Another pair's alignment changes the score: it is really used.
  other = aligned_contour.aligned_contour(ref_hz, ref_hz, hop_s=0.01)
  assert abs(comparator.score(perf_hz, ref_hz, aligned=other)
             - comparator.score(perf_hz, ref_hz)) > 1e-4


def test_an_unvoiced_contour_scores_nan(tmp_path, pair):
  config = _config()
  _, _, variables = _towers(config, (0,))
  contour_comparator.save(str(tmp_path), config, variables)
  comparator = contour_comparator.ContourComparator.load(str(tmp_path))
  perf_hz, ref_hz = pair
  assert np.isnan(comparator.score(np.zeros_like(perf_hz), ref_hz))
  assert np.isfinite(comparator.score(perf_hz, ref_hz))


def test_a_broken_folder_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=str(tmp_path)):
    contour_comparator.ContourComparator.load(str(tmp_path))
  config = _config()
  _, _, variables = _towers(config, (0,))
  contour_comparator.save(str(tmp_path), config, variables)
  (tmp_path / "tower_0.msgpack").write_bytes(b"\xc1 not msgpack")
  with pytest.raises(ValueError, match="tower_0.msgpack"):
    contour_comparator.ContourComparator.load(str(tmp_path))
  with pytest.raises(ValueError, match="at least one tower"):
    contour_comparator.ContourComparator(config, [])


def test_saving_again_replaces_every_tower(tmp_path):
  config = _config()
  _, _, variables = _towers(config, (0, 1, 2))
  contour_comparator.save(str(tmp_path), config, variables)
  contour_comparator.save(str(tmp_path), config, variables[:1])
  assert contour_comparator.ContourComparator.load(str(tmp_path)).n_towers == 1


def test_the_shipped_fusion_was_fitted_with_the_shipped_comparator():
  manifest = fused.read_manifest()
  spec = manifest["contour"]
  folder = os.path.join(fused.DEFAULT_DIR, spec["folder"])
  assert spec["fingerprint"] == contour_comparator.fingerprint(folder)
  assert manifest["features"][-1] == fused.LEARNED_FEATURE
  comparator = fused.load_comparator(fused.DEFAULT_DIR, manifest)
  assert comparator.n_towers == spec["towers"] == 3
  # The scorer refuses a contour fusion without its comparator, and the reverse.
  fusion, _ = fused.load_fusion()
  with pytest.raises(fused.DefaultScorerError, match="contour_score"):
    fused.FusedScorer(fusion, manifest, None)
  terms_only = {**manifest, "features": manifest["features"][:-1]}
  with pytest.raises(fused.DefaultScorerError, match="contour_score"):
    fused.FusedScorer(fusion, terms_only, comparator)


def test_a_missing_comparator_folder_is_one_error(tmp_path):
  manifest = {**fused.read_manifest()}
  with pytest.raises(fused.DefaultScorerError, match="contour comparator"):
    fused.load_comparator(str(tmp_path), manifest)


def test_the_scorer_reads_the_learned_score_on_the_products_scale(monkeypatch):
  """The fusion was fitted on the score z-scored per corpus; a recording is read
  with the statistics of the product's f0 source (CREPE on audio: SSVD's)."""
  import types  # pylint: disable=g-import-not-at-top
  from asa_jax.baselines import pair_terms  # pylint: disable=g-import-not-at-top
  manifest = fused.read_manifest()
  fusion, _ = fused.load_fusion()
  spec = manifest["contour"]
  assert spec["product_source"] == "ssvd"
  stats = spec["standardise"]
  assert stats["ssvd"]["mean"] != pytest.approx(stats["mast"]["mean"], abs=0.05)

  class Stub:
    n_towers = 3

    def score(self, perf_hz, ref_hz, aligned=None):
      assert perf_hz is perf.f0_hz and ref_hz is ref.f0_hz
      assert aligned is alignment  # the terms' DTW, not a second one.
      return 0.3

  perf = types.SimpleNamespace(f0_hz=np.zeros(3))
  ref = types.SimpleNamespace(f0_hz=np.ones(3))
  alignment = object()
  monkeypatch.setattr(pair_terms, "pair_terms_and_alignment",
                      lambda p, r: ({n: 1.0 for n in pair_terms.TERMS}, alignment))
  scorer = fused.FusedScorer(fusion, manifest, Stub())
  x, values = scorer.features_of(perf, ref)
  assert values[fused.LEARNED_FEATURE] == 0.3
  assert x[0, -1] == pytest.approx((0.3 - stats["ssvd"]["mean"]) / stats["ssvd"]["sd"])
  # A higher learned score never lowers the fused score (monotone +1).
  low, high = x.copy(), x.copy()
  low[0, -1], high[0, -1] = -2.0, 2.0
  assert fusion.predict_raw(high)[0] >= fusion.predict_raw(low)[0]
