"""CNNSA tower and triplet model (paper 3.2, 3.2.3): shapes, downsampling, sharing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax.models import CNNSATower, output_frames
from asa_jax.models.cnnsa import TimePooling
from asa_jax.systems import build_model
from configs import rori
from tests import fake_loader


def test_paper_strides_give_one_row_and_12_frames():
  c = rori.get_config()
  # 96x94 -> 48x47 -> 24x24 -> 12x12 -> 6x12 -> 3x12 -> 2x12 -> 1x12.
  assert output_frames(c.model.conv_strides) == (1, 12)


def test_paper_tower_forward_shape_and_frames():
  """One real forward pass of the paper-size tower (batch 2); checks 12 frames."""
  c = rori.get_config()
  tower = CNNSATower.from_config(c.model)
  x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 96, 94)), jnp.float32)

  @jax.jit
  def init_and_apply(key, x):
    variables = tower.init(key, x, train=False)
    return variables, tower.apply(variables, x, train=False)

  variables, out = init_and_apply(jax.random.key(0, impl="rbg"), x)
  # The sequence entering attention is [CLS] + 12 frames.
  assert variables["params"]["position_embedding"].shape == (1, 13, 256)
  # Parameters stay float32 whatever the compute dtype.
  assert {p.dtype for p in jax.tree.leaves(variables["params"])} == {jnp.dtype("float32")}
  assert out.shape == (2, 128) and out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all()


def test_paper_triplet_shapes():
  model = build_model(rori.get_config())
  x = jax.ShapeDtypeStruct((3, 5, 96, 94), jnp.float32)
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.PRNGKey(0), x, x, x, train=False), x)
  a, p, n = jax.eval_shape(
      lambda v, x: model.apply(v, x, x, x, train=True,
                               rngs={"dropout": jax.random.PRNGKey(1)},
                               mutable=["batch_stats"])[0], variables, x)
  assert a.shape == p.shape == n.shape == (3, 128)
  assert set(variables["params"]) == {"anchor_tower", "performance_tower"}
  n_params = sum(int(np.prod(l.shape)) for l in jax.tree.leaves(variables["params"]))
  assert 20e6 < n_params < 22e6  # Two ~10.6 M-parameter towers.


def test_small_triplet_forward_and_weight_sharing():
  """`:small` forward in train mode; paper 3.2.3: p and n share the performance tower,
  the anchor tower has its own parameters."""
  c = rori.get_config("small")
  model = build_model(c)
  rng = np.random.default_rng(0)
  xa, xp, xn = [jnp.asarray(rng.standard_normal((4, 5, 96, 94)), jnp.float32)
                for _ in range(3)]

  v = jax.jit(lambda k: model.init(k, xa, xp, xn, train=False))(
      jax.random.key(0, impl="rbg"))
  train_out, updates = jax.jit(lambda v: model.apply(
      v, xa, xp, xn, train=True, rngs={"dropout": jax.random.PRNGKey(1)},
      mutable=["batch_stats"]))(v)
  for e in train_out:
    assert e.shape == (4, c.model.embedding_dim) and np.isfinite(np.asarray(e)).all()
  # Training mode updates the running BatchNorm statistics.
  before = v["batch_stats"]["performance_tower"]["input_bn"]["mean"]
  after = updates["batch_stats"]["performance_tower"]["input_bn"]["mean"]
  assert not np.allclose(before, after)
  # Eval mode: swapping positive and negative swaps their embeddings (one shared
  # function), while the anchor tower maps the same clip elsewhere (own parameters).
  apply = jax.jit(lambda v, a, p, n: model.apply(v, a, p, n, train=False))
  a, p, n = apply(v, xa, xp, xn)
  a2, p2, n2 = apply(v, xa, xn, xp)
  np.testing.assert_allclose(p2, n, atol=1e-5)
  np.testing.assert_allclose(n2, p, atol=1e-5)
  np.testing.assert_allclose(a2, a, atol=1e-5)
  a3, p3, _ = apply(v, xp, xp, xn)
  np.testing.assert_allclose(p3, p, atol=1e-5)
  assert not np.allclose(a3, p3, atol=1e-3)


def test_bfloat16_compute_keeps_float32_params_and_output():
  c = fake_loader.tiny_config()
  c.model.dtype = "bfloat16"
  tower = CNNSATower.from_config(c.model)
  x = jax.ShapeDtypeStruct((2, 5, 96, 94), jnp.float32)
  v = jax.eval_shape(lambda x: tower.init(jax.random.PRNGKey(0), x, train=False), x)
  assert {p.dtype for p in jax.tree.leaves(v["params"])} == {jnp.dtype("float32")}
  out = jax.eval_shape(lambda v, x: tower.apply(v, x, train=False), v, x)
  assert out.dtype == jnp.float32 and out.shape == (2, c.model.embedding_dim)


def test_bad_inputs_raise():
  c = fake_loader.tiny_config()
  tower = CNNSATower.from_config(c.model)
  with pytest.raises(ValueError, match="96, 94"):
    tower.init(jax.random.PRNGKey(0), jnp.ones((1, 5, 96, 90)), train=False)
  bad = CNNSATower.from_config(c.model, conv_strides=((2, 2),) * 3 + ((1, 1),) * 4)
  with pytest.raises(ValueError, match="frequency rows"):
    bad.init(jax.random.PRNGKey(0), jnp.ones((1, 5, 96, 94)), train=False)
  with pytest.raises(ValueError, match="dtype"):
    c.model.dtype = "int8"
    CNNSATower.from_config(c.model)


def test_time_pooling_options():
  """model.pooling: every option gives an embedding; attention weights are a softmax."""
  c = rori.get_config("small")
  x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 5, 96, 94)), jnp.float32)
  bert_params = None
  for pooling in ("bert", "attention", "mean", "max"):
    c.model.pooling = pooling
    tower = CNNSATower.from_config(c.model)
    variables = tower.init(jax.random.PRNGKey(0), x, train=False)
    out = tower.apply(variables, x, train=False)
    assert out.shape == (2, c.model.embedding_dim) and out.dtype == jnp.float32
    assert np.all(np.isfinite(out))
    has_bert = "bert_1" in variables["params"]
    assert has_bert == (pooling == "bert")
    assert ("time_pooling" in variables["params"]) == (pooling == "attention")
    if pooling == "bert":
      bert_params = variables["params"]
  assert "time_pooling" not in bert_params  # The paper's tower is unchanged.
  # Frames that are all equal: every pooling returns that frame.
  frames = jnp.broadcast_to(jnp.arange(4.0), (3, 7, 4))
  for kind in ("attention", "mean", "max"):
    pool = TimePooling(kind)
    v = pool.init(jax.random.PRNGKey(1), frames)
    np.testing.assert_allclose(pool.apply(v, frames), frames[:, 0], rtol=1e-6)
  # Attention puts more weight where w^T tanh(x) is larger.
  pool = TimePooling("attention")
  x2 = jnp.stack([jnp.zeros(4), jnp.ones(4)])[None]  # (1, 2, 4)
  v = {"params": {"score": {"kernel": jnp.ones((4, 1)), "bias": jnp.zeros((1,))}}}
  expected = jax.nn.softmax(jnp.array([0.0, 4 * np.tanh(1.0)]))[1] * jnp.ones(4)
  np.testing.assert_allclose(pool.apply(v, x2)[0], expected, rtol=1e-6)
  c.model.pooling = "sum"
  with pytest.raises(ValueError, match="pooling"):
    CNNSATower.from_config(c.model)


def test_recomputed_batchnorm_gives_the_same_step_in_less_memory():
  """model.remat_norm (issue 20, part 4): BatchNorm recomputed in the backward pass.
  Same parameter tree, gradients and batch statistics as plain BatchNorm on a small
  tower (bit-identical here); XLA's temporaries of the gradient are smaller (0.78x
  here)."""
  c = rori.get_config("small")
  x = jnp.asarray(np.random.default_rng(1).standard_normal((8, 5, 96, 94)), jnp.float32)
  out = {}
  for remat in (False, True):
    tower = CNNSATower.from_config(c.model, remat_norm=remat)
    variables = tower.init(jax.random.key(0), x, train=False)

    def loss(params, batch_stats):
      y, new = tower.apply({"params": params, "batch_stats": batch_stats}, x,
                           train=True, mutable=["batch_stats"],
                           rngs={"dropout": jax.random.key(1)})
      return jnp.sum(y ** 2), new

    grad = jax.jit(jax.grad(loss, has_aux=True))
    out[remat] = (jax.tree.structure(variables),) + grad(
        variables["params"], variables["batch_stats"])
    out[remat] += (grad.lower(variables["params"], variables["batch_stats"])
                   .compile().memory_analysis().temp_size_in_bytes,)
  assert out[True][0] == out[False][0]
  for a, b in zip(jax.tree.leaves(out[True][1:3]), jax.tree.leaves(out[False][1:3])):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  assert out[True][3] < 0.9 * out[False][3], (out[True][3], out[False][3])
