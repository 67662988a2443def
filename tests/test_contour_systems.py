"""Contour systems (issue 18): the tower, the on-device augmentation hook, and a
short training of each contour system through the ordinary loop."""

import dataclasses
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.models.contour_tower import ContourTower
from asa_jax.systems import contour
from asa_jax.train import train_and_evaluate
from input_pipeline import aligned_input
from input_pipeline import contour_pool
from tests import contour_worker

FRAMES = 320


@pytest.fixture(scope="module")
def pool_path(tmp_path_factory):
  b = contour_worker.synthetic_batch(24, FRAMES, seed=11)
  split = np.array(["train"] * 16 + ["validation"] * 8)
  pool = contour_pool.Pool(**b, source=np.array(["synthetic"] * 24),
                           group=np.array([f"g{i}" for i in range(24)]), split=split)
  path = tmp_path_factory.mktemp("pool") / "pool.npz"
  fields = {k: v for k, v in dataclasses.asdict(pool).items() if k != "selection"}
  np.savez(path, **fields)
  return str(path)


def _config(system, pool_path):
  c = contour_worker.tiny_config(system, FRAMES)
  c.contour.pool = pool_path
  c.train.global_batch_size = 8
  c.train.selection_metric = "loss"
  return c


def test_tower_embeds_contours():
  x = jnp.zeros((3, 2, FRAMES))
  tower = ContourTower(conv_channels=(8, 8), attention_hidden=16, attention_mlp=16,
                       embedding_dim=5)
  v = tower.init(jax.random.PRNGKey(0), x, train=False)
  assert tower.apply(v, x, train=False).shape == (3, 5)
  with pytest.raises(ValueError):
    tower.apply(v, x[0], train=False)


def test_contour_channels_ignore_transposition():
  b = contour_worker.synthetic_batch(2, FRAMES)
  x = contour.contour_channels(jnp.asarray(b["cents"]), jnp.asarray(b["voiced"]))
  y = contour.contour_channels(jnp.asarray(b["cents"] + 350.0 * b["voiced"]),
                               jnp.asarray(b["voiced"]))
  np.testing.assert_allclose(x, y, atol=1e-4)
  assert x.shape == (2, contour.CHANNELS, FRAMES)


def test_triplet_augment_orders_by_label_and_eval_is_fixed(pool_path):
  system = systems.get(_config("contour_rori", pool_path))
  b = {k: jnp.asarray(v) for k, v in contour_worker.synthetic_batch(8, FRAMES).items()}
  b["row_id"] = jnp.arange(8.0)
  out = system.augment(b, jax.random.PRNGKey(3), train=True)
  assert out["anchor"].shape == out["positive"].shape == (8, system.in_channels(), FRAMES)
  assert np.all(np.asarray(out["label_positive"]) >= np.asarray(out["label_negative"]))
  gap = np.asarray(out["label_positive"] - out["label_negative"])
  np.testing.assert_array_equal(out["mask"], (gap >= system.min_label_gap) * 1.0)
  e1 = system.augment(b, jax.random.PRNGKey(0), train=False)
  e2 = system.augment(b, jax.random.PRNGKey(0), train=False)
  np.testing.assert_array_equal(e1["positive"], e2["positive"])
  t2 = system.augment(b, jax.random.PRNGKey(4), train=True)
  assert not np.array_equal(out["positive"], t2["positive"])


@pytest.mark.parametrize("name", ["contour_rori", "contour_delta", "contour_hinge_rank"])
def test_contour_system_trains_through_the_loop(tmp_path, pool_path, name):
  c = _config(name, pool_path)
  c.train.max_epochs = 1
  out = train_and_evaluate(c, str(tmp_path / name))
  assert out["step"] == 2  # 16 train windows / batch 8.
  assert np.isfinite(out["train_loss"]) and np.isfinite(out["val_loss"])


def test_stack_reference_gives_the_performance_tower_the_reference(tmp_path, pool_path):
  c = _config("contour_rori", pool_path)
  c.contour.aligned = False
  c.contour.stack_reference = True
  system = systems.get(c)
  b = {k: jnp.asarray(v) for k, v in contour_worker.synthetic_batch(4, FRAMES).items()}
  out = system.augment(b, jax.random.PRNGKey(1), train=True)
  ref = contour.contour_channels(b["cents"], b["voiced"])
  assert out["positive"].shape == (4, 2 * contour.CHANNELS, FRAMES)
  np.testing.assert_array_equal(out["positive"][:, contour.CHANNELS:], ref)
  np.testing.assert_array_equal(out["anchor"][:, :contour.CHANNELS], ref)
  assert system.init_inputs(None)[0].shape == (1, 2 * contour.CHANNELS, FRAMES)
  c.train.max_epochs = 1
  assert train_and_evaluate(c, str(tmp_path / "stacked"))["step"] == 2


@pytest.mark.parametrize("name", ["contour_rori", "contour_delta", "contour_hinge_rank"])
def test_aligned_input_feeds_every_contour_system(pool_path, name):
  c = _config(name, pool_path)
  c.contour.aligned = True
  system = systems.get(c)
  b = {k: jnp.asarray(v) for k, v in contour_worker.synthetic_batch(4, FRAMES).items()}
  out = system.augment(b, jax.random.PRNGKey(1), train=True)
  perf = out["positive"] if "positive" in out else out["performance"]
  anchor = out["anchor"] if "anchor" in out else out["reference"]
  assert perf.shape == anchor.shape == (4, aligned_input.CHANNELS, FRAMES)
  np.testing.assert_array_equal(anchor[:, 0], 0.0)  # the reference against itself.
  assert float(jnp.abs(perf[:, 0]).max()) > 0.0
  assert system.init_inputs(None)[0].shape == (1, aligned_input.CHANNELS, FRAMES)


def test_aligned_system_scores_real_pairs_through_dtw(pool_path):
  c = _config("contour_rori", pool_path)
  c.contour.aligned = True
  system = systems.get(c)
  model = system.build_model(c)
  variables = model.init(jax.random.PRNGKey(0), *system.init_inputs(None), train=False)
  b = contour_worker.synthetic_batch(2, FRAMES, seed=4)
  ref = np.concatenate([b["cents"][0], b["cents"][1]])
  arrays = system.pair_inputs(ref + 200.0 * (ref > 0), ref, FRAMES)
  assert len(arrays) == 3 and arrays[0].shape[1] == FRAMES
  s = np.asarray(system.score_inputs(model, variables, *arrays))
  assert s.shape == (arrays[0].shape[0],) and np.all(np.isfinite(s))
  # The key of the performance does not matter; its notes do.
  same = np.asarray(system.score_inputs(model, variables, *system.pair_inputs(
      ref, ref, FRAMES)))
  np.testing.assert_allclose(s, same, atol=1e-5)
  wrong = ref.copy()
  wrong[100:160] = np.where(wrong[100:160] > 0, wrong[100:160] + 200.0, 0.0)
  other = np.asarray(system.score_inputs(model, variables, *system.pair_inputs(
      wrong, ref, FRAMES)))
  assert np.abs(other - same).max() > 1e-4
