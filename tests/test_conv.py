"""asa_jax/models/conv.py: the im2col convolution equals XLA's, and its selection."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from asa_jax.models import conv as conv_lib
from asa_jax.models.cnnsa import CNNSATower
from configs import rori


@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (2, 1)])
def test_im2col_conv_output_and_gradients_equal_lax(strides):
  rng = np.random.default_rng(0)
  # 20 clips: more than one forward chunk (8) and a ragged last chunk.
  x = jnp.asarray(rng.standard_normal((20, 13, 11, 6)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, 6, 5)), jnp.float32)
  dn = ("NHWC", "HWIO", "NHWC")

  def loss(conv, x, w):
    y = conv(x, w, strides, ((1, 1), (1, 1)), dimension_numbers=dn)
    return jnp.sum(y * jnp.cos(y)), y  # A non-trivial cotangent.

  (l_ref, y_ref), g_ref = jax.value_and_grad(
      lambda x, w: loss(lax.conv_general_dilated, x, w), argnums=(0, 1),
      has_aux=True)(x, w)
  (l_ours, y_ours), g_ours = jax.jit(jax.value_and_grad(
      lambda x, w: loss(conv_lib.conv_general_dilated, x, w), argnums=(0, 1),
      has_aux=True))(x, w)
  np.testing.assert_allclose(y_ours, y_ref, rtol=1e-5, atol=1e-4)
  np.testing.assert_allclose(l_ours, l_ref, rtol=1e-4)
  for ours, ref in zip(g_ours, g_ref):  # Input and weight gradients.
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3 * np.abs(ref).max())


def test_conv_impl_selection():
  assert conv_lib.resolve_impl("auto", "cpu") == "im2col"
  assert conv_lib.resolve_impl("auto", "gpu") == "xla"
  assert conv_lib.resolve_impl("auto", "tpu") == "xla"
  assert conv_lib.resolve_impl("xla", "cpu") == "xla"
  assert conv_lib.conv_module("auto", "gpu") is nn.Conv
  assert conv_lib.conv_module("im2col") is conv_lib.Im2colConv
  with pytest.raises(ValueError, match="conv_impl"):
    conv_lib.resolve_impl("cudnn")


def test_tower_conv_impls_share_parameters_and_outputs():
  c = rori.get_config("small")
  x = jnp.asarray(np.random.default_rng(1).standard_normal((3, 5, 96, 94)), jnp.float32)
  towers = {}
  for impl in ("xla", "im2col"):
    c.model.conv_impl = impl
    towers[impl] = CNNSATower.from_config(c.model)
  assert towers["im2col"] == CNNSATower.from_config(c.model)  # Reusable jit keys.
  variables = towers["xla"].init(jax.random.PRNGKey(0), x, train=False)
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a.shape, b.shape),
               variables, towers["im2col"].init(jax.random.PRNGKey(0), x, train=False))
  out = {k: t.apply(variables, x, train=False) for k, t in towers.items()}
  np.testing.assert_allclose(out["im2col"], out["xla"], rtol=1e-4, atol=1e-4)
