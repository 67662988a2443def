"""Lee & Nam's hinge rank system (asa_jax/systems/hinge_rank.py) and its K-negative
rows (input_pipeline.pairing.add_negatives)."""

import jax
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.systems import hinge_rank
from asa_jax.train import loop, mesh as mesh_lib
from asa_jax.train.step import make_steps
from input_pipeline import pairing as pairing_lib
from tests import fake_loader


def test_hinge_rank_loss_matches_hand_computation():
  a = np.array([[1.0, 0.0], [0.0, 2.0]], np.float32)
  p = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)
  n = np.array([[[1.0, 0.0], [-1.0, 0.0]], [[1.0, 1.0], [0.0, 3.0]]], np.float32)
  margin = 0.1
  want = []
  cos = lambda x, y: float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))
  for i in range(2):
    s_ap = cos(a[i], p[i])
    want.append(sum(max(0.0, margin - s_ap + cos(a[i], n[i, k])) for k in range(2)))
  # Row 0: cos_ap = 0.707: max(0, 0.1 - 0.707 + 1) + max(0, 0.1 - 0.707 - 1) = 0.393.
  np.testing.assert_allclose(want[0], 0.1 - np.sqrt(0.5) + 1.0, rtol=1e-6)
  got = hinge_rank.hinge_rank_losses(a, p, n, margin)
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_hinge_rank_system_takes_a_real_training_step():
  c = fake_loader.tiny_config("small", "hinge_rank", blocks=4)
  system = systems.get(c)
  assert "hinge_rank" in systems.names() and system.negatives == 4
  assert system.margin == pytest.approx(0.1)
  mesh = mesh_lib.make_mesh()
  repl = mesh_lib.replicated(mesh)
  train_fn, eval_fn = make_steps(c, repl, mesh_lib.batch_sharding(mesh), repl)
  rng = np.random.default_rng(0)
  shape = (8, len(c.features.channels), 96, 94)
  batch = {"anchor": rng.standard_normal(shape, dtype=np.float32),
           "positive": rng.standard_normal(shape, dtype=np.float32),
           "negatives": rng.standard_normal((8, 4) + shape[1:], dtype=np.float32),
           "mask": np.ones((8,), np.float32)}
  batch = mesh_lib.to_global(batch, mesh)
  model, state = loop.init_state(c, mesh)
  before = jax.device_get(state.params)
  sums = jax.device_get(eval_fn(state, batch))
  assert sums["count"] == 8 and np.isfinite(sums["loss_sum"])
  state, metrics = train_fn(state, batch)
  metrics = jax.device_get(metrics)
  assert int(state.step) == 1 and np.isfinite(metrics["loss"]) and metrics["grad_norm"] > 0
  assert set(metrics) == {"loss", "grad_norm", "learning_rate", "active_fraction",
                          "cos_ap", "cos_an"}
  k = ("performance_tower", "block_1", "conv_1", "kernel")
  after = jax.device_get(state.params)
  assert not np.allclose(after[k[0]][k[1]][k[2]][k[3]], before[k[0]][k[1]][k[2]][k[3]])
  # The clip scorer is Rori's: cosine of the performance and anchor embeddings.
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  _, _, score = model.apply(variables, batch["positive"], batch["anchor"],
                            method=type(model).score_clips)
  assert score.shape == (8,) and np.all(np.abs(np.asarray(score)) <= 1.0 + 1e-6)


def _index(rows):
  """RecordIndex from (song, performance, reference_start, score) rows."""
  n = len(rows)
  return pairing_lib.RecordIndex(
      song=np.array([r[0] for r in rows], dtype=object),
      performance=np.array([r[1] for r in rows], dtype=object),
      reference_file=np.array(["ref"] * n, dtype=object),
      reference_start=np.array([r[2] for r in rows], np.float64),
      score=np.array([r[3] for r in rows], np.float64),
      transposition=np.zeros(n, np.int32))


@pytest.mark.parametrize("pairing", ["threshold", "gap"])
def test_negatives_are_worse_performances_of_the_same_song(pairing):
  c = fake_loader.tiny_config("small", "hinge_rank", blocks=4)
  c.data.pairing = pairing
  rows = []
  for song, scores in (("s1", (95, 85, 30, 20, 10)), ("s2", (90, 35, 25))):
    for p, score in enumerate(scores):
      for start in (0.0, 1.5, 3.0):
        rows.append((song, f"{song}p{p}", start, float(score)))
  index = _index(rows)
  triplets = pairing_lib.pair_triplets(index, c, 0)
  out = pairing_lib.add_negatives(index, triplets, c, 0, 4)
  assert out.shape == (len(triplets), 5) and len(triplets) > 0
  np.testing.assert_array_equal(out[:, :2], triplets)
  for row in out:
    pos = row[0]
    for neg in row[1:]:
      assert index.song[neg] == index.song[pos]
      assert index.score[neg] < index.score[pos]
      assert abs(index.reference_start[neg] - index.reference_start[pos]) <= 0.75
  assert len({tuple(r[1:]) for r in out}) > 1  # Drawn, not copies of one negative.
  np.testing.assert_array_equal(out, pairing_lib.add_negatives(index, triplets, c, 0, 4))
  np.testing.assert_array_equal(pairing_lib.add_negatives(index, triplets, c, 0, 1),
                                triplets)
  with pytest.raises(ValueError, match="negatives"):
    pairing_lib.add_negatives(index, triplets, c, 0, 0)
