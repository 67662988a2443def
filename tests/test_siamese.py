"""The siamese contrastive system (asa_jax/systems/siamese.py) and its clip pairs
(input_pipeline.pairing.pair_siamese / loader.PairLoader)."""

import jax
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.systems import siamese
from asa_jax.train import loop, mesh as mesh_lib
from asa_jax.train.step import make_steps
from input_pipeline import pairing as pairing_lib
from tests import fake_loader
from tests.test_hinge_rank import _index


def test_contrastive_loss_matches_hand_computation():
  e1 = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
  e2 = np.array([[0.6, 0.0], [0.6, 0.0], [2.0, 0.0]], np.float32)
  same = np.array([1.0, 0.0, 0.0], np.float32)
  # D = 0.36, 0.36, 4: same -> 0.18; different inside m = 1 -> 0.32; outside -> 0.
  got = siamese.contrastive_losses(e1, e2, same, 1.0)
  np.testing.assert_allclose(got, [0.18, 0.32, 0.0], rtol=1e-5)


def test_pairs_are_one_to_one_same_and_different_class():
  c = fake_loader.tiny_config("small", "siamese", blocks=4)
  rows = []
  for song, scores in (("s1", (95, 85, 30, 20)), ("s2", (90, 88, 25, 60))):
    for p, score in enumerate(scores):
      for start in (0.0, 1.5, 3.0):
        rows.append((song, f"{song}p{p}", start, float(score)))
  index = _index(rows)
  pairs = pairing_lib.pair_siamese(index, c, 0)
  assert pairs.shape[1] == 3 and len(pairs) > 0
  assert np.sum(pairs[:, 2] == 1) == np.sum(pairs[:, 2] == 0)
  good = lambda i: index.score[i] >= 80
  for a, b, same in pairs:
    assert index.song[a] == index.song[b] and index.performance[a] != index.performance[b]
    assert 60 not in (index.score[a], index.score[b])  # Neither good nor poor.
    assert (good(a) == good(b)) == bool(same)
  np.testing.assert_array_equal(pairs, pairing_lib.pair_siamese(index, c, 0))


def test_siamese_takes_a_real_training_step_and_scores_by_distance():
  c = fake_loader.tiny_config("small", "siamese", blocks=4)
  assert c.model.pooling == "attention" and systems.get(c).margin == 1.0
  mesh = mesh_lib.make_mesh()
  repl = mesh_lib.replicated(mesh)
  train_fn, _ = make_steps(c, repl, mesh_lib.batch_sharding(mesh), repl)
  rng = np.random.default_rng(0)
  shape = (8, len(c.features.channels), 96, 94)
  batch = mesh_lib.to_global({
      "first": rng.standard_normal(shape, dtype=np.float32),
      "second": rng.standard_normal(shape, dtype=np.float32),
      "same": np.array([1, 0] * 4, np.float32), "mask": np.ones(8, np.float32)}, mesh)
  model, state = loop.init_state(c, mesh)
  state, metrics = train_fn(state, batch)
  metrics = jax.device_get(metrics)
  assert int(state.step) == 1 and np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
  assert set(metrics) >= {"d_same", "d_different"}
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  p, r, score = model.apply(variables, batch["first"], batch["first"],
                            method=type(model).score_clips)
  np.testing.assert_allclose(score, 0.0, atol=1e-5)  # A clip against itself: D = 0.
  _, _, other = model.apply(variables, batch["first"], batch["second"],
                            method=type(model).score_clips)
  assert np.all(np.asarray(other) <= 0.0)
  with pytest.raises(ValueError, match="config.system='siamese_nope' is not a learned system"):
    c.system = "siamese_nope"
    systems.get(c)
