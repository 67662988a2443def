"""3x3 convolution with a faster weight gradient on XLA CPU (paper 3.2 front-end).

Why: on XLA CPU (jaxlib 0.10, AVX2 EPYC) the weight gradient of a 3x3 NHWC
convolution (the "backward-filter" conv XLA derives by transposition) runs at
~7-18 GFLOP/s, versus ~50-70 GFLOP/s for the forward conv and the input gradient,
and took over half of the CNNSA train step (benchmarks/conv_micro.py). Here the
forward conv and the input gradient stay `lax.conv_general_dilated` (or its
autodiff), and the weight gradient is computed as an explicit im2col matmul

  dW[kh, kw, i, o] = sum_{b, y, x} x_pad[b, y*s_h + kh, x*s_w + kw, i] * g[b, y, x, o]

with the patches built chunk by chunk (a few clips at a time, inside a lax.scan) so a
chunk's patch matrix (~9k rows x 9*C_in) stays cache- and memory-friendly and each
chunk is one (C_out, rows) @ (rows, 9*C_in) matmul, accumulated in float32. Same
math as the XLA gradient (a sum over the same products, in a different order):
float32 results agree to ~1e-5 relative.

The forward conv (and the stride-1 input gradient, itself a forward-style conv) also
runs 8 clips at a time, which XLA CPU executes faster than one whole-batch conv.

`conv_general_dilated` has the signature of `lax.conv_general_dilated`, so it plugs
into `flax.linen.Conv(conv_general_dilated=...)` with the parameter tree unchanged;
any call it does not specialise (not 3x3 / padding 1 / NHWC-HWIO / undilated /
ungrouped) goes to `lax.conv_general_dilated` unchanged.

Only for XLA CPU: its `lax.scan` / chunked loops serialise work that an accelerator
does at once. `conv_module(config.model.conv_impl)` gives the towers their
convolution (`'auto'`: this one on the CPU backend, XLA's own elsewhere).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

# Rows (clips x output pixels) of im2col patches per scan chunk. Measured on
# 64 x 48x47 x 128 -> 128 (benchmarks/conv_micro.py): ~4.5k rows 36 GFLOP/s, 9k
# rows 43, 18k rows 41, all 144k rows at once 21 (the XLA gradient: 11).
_CHUNK_ROWS = 9000
# Clips per forward-conv chunk (see _chunked_conv).
_FWD_CHUNK = 8

CONV_IMPLS = ("auto", "xla", "im2col")
ModuleDef = Any


def _taps(xp: jnp.ndarray, out_hw: tuple[int, int], strides: tuple[int, int]):
  """The 9 shifted (and strided) views x_pad[:, kh + s_h*y, kw + s_w*x, :]."""
  (ho, wo), (sh, sw) = out_hw, strides
  for kh in range(3):
    for kw in range(3):
      yield lax.slice(xp, (0, kh, kw, 0),
                      (xp.shape[0], kh + (ho - 1) * sh + 1, kw + (wo - 1) * sw + 1,
                       xp.shape[3]), (1, sh, sw, 1))


def conv3x3_weight_grad(x: jnp.ndarray, g: jnp.ndarray, strides: tuple[int, int]
                        ) -> jnp.ndarray:
  """Weight gradient of a 3x3, padding-1 NHWC conv, by chunked im2col matmuls.

  Args:
    x: (B, H, W, C_in) conv input.
    g: (B, H', W', C_out) cotangent of the conv output.
    strides: (s_h, s_w).

  Returns:
    (3, 3, C_in, C_out) float32 (HWIO), the gradient of sum(g * conv(x, w)) in w.
  """
  b, ho, wo, co = g.shape
  ci = x.shape[3]
  # Largest divisor of B whose chunk stays within _CHUNK_ROWS rows (at least 1 clip).
  per = max(1, _CHUNK_ROWS // (ho * wo))
  clips = max(d for d in range(1, b + 1) if b % d == 0 and d <= per)
  xs = x.reshape((b // clips, clips) + x.shape[1:])
  gs = g.reshape((b // clips, clips, ho, wo, co))

  def chunk(acc, xg):
    xc, gc = xg
    xp = jnp.pad(xc, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = jnp.concatenate(list(_taps(xp, (ho, wo), strides)), axis=-1)
    patches = patches.reshape(-1, 9 * ci)  # (rows, 9*C_in), tap-major like HWIO.
    return acc + jnp.dot(gc.reshape(-1, co).T, patches,
                         preferred_element_type=jnp.float32), None

  acc, _ = lax.scan(chunk, jnp.zeros((co, 9 * ci), jnp.float32), (xs, gs))
  return acc.T.reshape(3, 3, ci, co)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv3x3(x: jnp.ndarray, w: jnp.ndarray, strides: tuple[int, int]) -> jnp.ndarray:
  """3x3 conv, padding 1 each side, no bias: (B, H, W, C_in) x (3, 3, C_in, C_out).

  Returns (B, H', W', C_out) with H' = (H - 1) // s_h + 1 (PyTorch padding=1 rule):
  the `lax.conv_general_dilated` forward (in clip chunks); custom (faster on CPU)
  weight gradient.
  """
  return _chunked_conv(x, w, strides)


def _lax_conv(x, w, strides):
  return lax.conv_general_dilated(x, w, tuple(strides), ((1, 1), (1, 1)),
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _chunked_conv(x, w, strides):
  """`_lax_conv` applied _FWD_CHUNK clips at a time (lax.map), same values.

  XLA CPU's (Eigen) conv is faster on a few clips at a time than on the whole batch
  (cache blocking): at batch 128, 8-clip chunks took 48x47x128 s2 627 -> 433 ms,
  24x24x128 s2 286 -> 165 ms, 48x47x128 s1 1559 -> 1363 ms (benchmarks/conv_micro.py).
  Batches that are not a multiple of _FWD_CHUNK (or not larger) run in one call.
  """
  b = x.shape[0]
  if b <= _FWD_CHUNK or b % _FWD_CHUNK:
    return _lax_conv(x, w, strides)
  y = lax.map(lambda xc: _lax_conv(xc, w, strides),
              x.reshape((b // _FWD_CHUNK, _FWD_CHUNK) + x.shape[1:]))
  return y.reshape((b,) + y.shape[2:])


def _conv3x3_fwd(x, w, strides):
  return _chunked_conv(x, w, strides), (x, w)


def _conv3x3_bwd(strides, res, g):
  x, w = res
  if tuple(strides) == (1, 1):
    # Stride 1: the input gradient is the 'same' conv of g with the kernel flipped in
    # space and transposed in channels, so it takes the chunked forward path too.
    dx = _chunked_conv(g, jnp.transpose(w[::-1, ::-1], (0, 1, 3, 2)), (1, 1))
  else:
    # Strided: XLA's own transposed conv (lhs-dilated) of the whole batch.
    _, vjp_x = jax.vjp(lambda x_: _lax_conv(x_, w, strides), x)
    (dx,) = vjp_x(g)
  dw = conv3x3_weight_grad(x, g, strides).astype(w.dtype)
  return dx, dw


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None,
                         feature_group_count=1, precision=None, **kwargs):
  """Drop-in for `lax.conv_general_dilated` (as flax.linen.Conv calls it).

  Routes 3x3 / padding ((1, 1), (1, 1)) / NHWC-HWIO-NHWC / undilated / ungrouped /
  default-precision convs to `conv3x3`; anything else to lax unchanged.
  """
  nhwc = lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  dn = (lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
        if dimension_numbers is not None else None)
  ones = lambda d: d is None or all(int(v) == 1 for v in d)
  pad = None if isinstance(padding, str) else tuple(tuple(int(v) for v in p)
                                                     for p in padding)
  if (dn == nhwc and lhs.ndim == 4 and rhs.shape[:2] == (3, 3)
      and pad == ((1, 1), (1, 1)) and ones(lhs_dilation) and ones(rhs_dilation)
      and feature_group_count == 1 and precision is None and not kwargs):
    return conv3x3(lhs, rhs, tuple(int(s) for s in window_strides))
  return lax.conv_general_dilated(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count, precision=precision, **kwargs)


def resolve_impl(impl: str, backend: str | None = None) -> str:
  """'auto' -> 'im2col' on the CPU backend, else 'xla'; other values checked.

  Args:
    impl: config.model.conv_impl, one of CONV_IMPLS.
    backend: jax backend name (default `jax.default_backend()`).

  Raises:
    ValueError: unknown impl (names the valid ones).
  """
  if impl not in CONV_IMPLS:
    raise ValueError(f"model.conv_impl must be one of {CONV_IMPLS}, not {impl!r}")
  if impl != "auto":
    return impl
  return "im2col" if (backend or jax.default_backend()) == "cpu" else "xla"


def conv_module(impl: str = "auto", backend: str | None = None) -> ModuleDef:
  """The convolution module the towers use (injected, as in Flax's ImageNet example).

  Args:
    impl: 'auto' | 'xla' | 'im2col' (config.model.conv_impl; see `resolve_impl`).
    backend: jax backend name for 'auto' (default: the default backend).

  Returns:
    `flax.linen.Conv` itself ('xla') or `nn.Conv` with this module's
    `conv_general_dilated` ('im2col'); both have the same parameter tree.

  Raises:
    ValueError: unknown impl.
  """
  return nn.Conv if resolve_impl(impl, backend) == "xla" else Im2colConv


# One object (not a new partial per call), so that towers built from equal configs
# compare equal and jitted functions keyed on the model are reused.
Im2colConv: ModuleDef = functools.partial(nn.Conv,
                                          conv_general_dilated=conv_general_dilated)
