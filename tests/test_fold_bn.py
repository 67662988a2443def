"""BatchNorm folding (asa_jax/models/fold_bn.py; issue 20, part 3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.evaluation import scoring
from asa_jax.models import cnnsa
from asa_jax.models import fold_bn
from tests import fake_loader


def _with_statistics(variables, seed=0):
  """The variables with non-trivial BN statistics and affine parameters: running
  means N(0, 0.5), variances U(0.2, 3), BN scales U(0.5, 1.5), biases N(0, 0.3)."""
  rng = np.random.default_rng(seed)
  draw = {"mean": lambda s: rng.normal(0, 0.5, s), "var": lambda s: rng.uniform(0.2, 3, s)}
  stats = jax.tree_util.tree_map_with_path(
      lambda path, x: jnp.asarray(draw[path[-1].key](x.shape), jnp.float32),
      variables["batch_stats"])

  def param(path, x):
    names = [p.key for p in path]
    if any(n.startswith("bn_") or n == "input_bn" for n in names):
      value = rng.uniform(0.5, 1.5, x.shape) if names[-1] == "scale" else (
          rng.normal(0, 0.3, x.shape))
      return jnp.asarray(value, jnp.float32)
    return x
  params = jax.tree_util.tree_map_with_path(param, variables["params"])
  return {"params": params, "batch_stats": stats}


@pytest.fixture(scope="module")
def rori():
  config = fake_loader.tiny_config(blocks=4)
  config.model.conv_impl = "xla"
  model = systems.build_model(config)
  c = len(config.features.channels)
  x = jnp.zeros((2, c, 96, 94), jnp.float32)
  variables = model.init(jax.random.key(0), x, x, x, train=False)
  return model, _with_statistics(dict(variables)), c


def test_folded_tower_gives_the_same_embeddings(rori):
  model, variables, c = rori
  folded_model, folded = fold_bn.fold(model, variables)
  assert "batch_stats" not in folded
  assert folded_model.anchor_tower.folded and folded_model.performance_tower.folded
  assert not model.anchor_tower.folded  # the trained model is untouched.
  block = folded["params"]["performance_tower"]["block_1"]
  assert set(block) == {"conv_1", "conv_2", "conv_3"}
  assert set(block["conv_1"]) == {"kernel", "bias"}
  x = jnp.asarray(np.random.default_rng(1).normal(0, 1, (6, c, 96, 94)), jnp.float32)
  for method in ("embed_anchor", "embed_performance"):
    ref = model.apply(variables, x, train=False, method=method)
    out = folded_model.apply(folded, x, train=False, method=method)
    # Same embeddings, and the statistics matter (a fold that ignored them fails).
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=0, err_msg=method)
    plain = model.apply({"params": variables["params"],
                         "batch_stats": jax.tree_util.tree_map(
                             lambda s: jnp.ones_like(s) if s.ndim else s,
                             variables["batch_stats"])},
                        x, train=False, method=method)
    assert np.max(np.abs(np.asarray(plain) - np.asarray(ref))) > 1e-3


def test_scoring_uses_the_folded_graph(rori):
  model, variables, c = rori
  x = jnp.asarray(np.random.default_rng(2).normal(0, 1, (4, c, 96, 94)), jnp.float32)
  p, a, score = scoring.make_embed_fn(model, variables)(x, x[::-1])
  ref = model.apply(variables, x, x[::-1], train=False, method="score_clips")
  for got, want in zip((p, a, score), ref):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  # It runs on the folded variables: conv biases, no batch_stats.
  used = scoring.make_embed_fn(model, variables).variables
  assert "batch_stats" not in used
  assert "bias" in used["params"]["anchor_tower"]["block_1"]["conv_1"]


def test_fold_is_idempotent_and_leaves_models_without_stats(rori):
  model, variables, _ = rori
  folded_model, folded = fold_bn.fold(model, variables)
  again_model, again = fold_bn.fold(folded_model, folded)
  assert again_model is folded_model or again_model == folded_model
  assert jax.tree_util.tree_structure(again) == jax.tree_util.tree_structure(folded)


def test_folded_block_refuses_training():
  block = cnnsa.ResBlock(4, (2, 2), folded=True)
  x = jnp.zeros((1, 8, 8, 2))
  variables = block.init(jax.random.key(0), x, train=False)
  with pytest.raises(ValueError, match="inference only"):
    block.apply(variables, x, train=True)
