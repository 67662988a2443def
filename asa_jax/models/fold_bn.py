"""BatchNorm folded into the preceding convolution: the inference graph (issue 20, part 3).

At inference a BatchNorm is a fixed per-channel affine map, so after a bias-free
convolution with kernel W (HWIO)

  BN(conv(x, W)) = conv(x, W * m) + (beta - mean * m),  m = gamma / sqrt(var + eps)

(the folding of Jacob et al., "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", CVPR 2018, section 3.2). Each of a
`ResBlock`'s three conv + BN pairs becomes one convolution with a bias; the tower's
input BN, which precedes a zero-padded convolution and so cannot go into its weights
exactly, becomes a per-channel `x * m + (beta - mean * m)` (`cnnsa.FoldedNorm`). The
folded tower (`CNNSATower(folded=True)`) then runs no BatchNorm and reads no
batch_stats. Everything here is a pure function of the trained variables.

`fold(model, variables)` does this for every CNNSA tower of a model (the fields of
TripletModel, RegressionModel, SiameseModel, EmbDirectModel, ...), found by walking
the module's dataclass fields, whose names are the parameter scopes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import flax.linen as nn
import jax.numpy as jnp

from asa_jax.models import cnnsa

_CONV_BN = (("conv_1", "bn_1"), ("conv_2", "bn_2"), ("conv_3", "bn_3"))


def _multiplier(bn_params: Mapping, bn_stats: Mapping) -> tuple[jnp.ndarray, jnp.ndarray]:
  """(m, shift) of an inference BatchNorm: y = x * m + shift, each (C,) float32.

  Computed as Flax's BatchNorm does (rsqrt(var + eps) * scale), in float32.
  """
  m = (jnp.asarray(bn_params["scale"], jnp.float32)
       * jnp.reciprocal(jnp.sqrt(jnp.asarray(bn_stats["var"], jnp.float32)
                                 + cnnsa._BN_EPSILON)))  # pylint: disable=protected-access
  shift = (jnp.asarray(bn_params["bias"], jnp.float32)
           - jnp.asarray(bn_stats["mean"], jnp.float32) * m)
  return m, shift


def fold_tower(params: Mapping, batch_stats: Mapping) -> dict:
  """Parameters of `CNNSATower(folded=True)` from a trained tower's variables.

  Args:
    params: the tower's `params` subtree (input_bn, block_i/{conv_k, bn_k}, back-end).
    batch_stats: its `batch_stats` subtree (input_bn, block_i/bn_k: mean, var).

  Returns:
    The folded tower's params: input_bn/{scale, bias} (the affine map),
    block_i/conv_k/{kernel (3, 3, C_in, C_out) float32, bias (C_out,) float32}, and
    the back-end's params unchanged.

  Raises:
    KeyError: the trees are not a CNNSA tower's (a block without conv_k / bn_k).
  """
  out = {}
  for name, sub in params.items():
    if name == "input_bn":
      m, shift = _multiplier(sub, batch_stats["input_bn"])
      out[name] = {"scale": m, "bias": shift}
    elif name.startswith("block_"):
      block = {}
      for conv, bn in _CONV_BN:
        m, shift = _multiplier(sub[bn], batch_stats[name][bn])
        kernel = jnp.asarray(sub[conv]["kernel"], jnp.float32)
        block[conv] = {"kernel": kernel * m, "bias": shift}
      out[name] = block
    else:
      out[name] = sub
  return out


def _towers(model: nn.Module) -> dict[str, Any]:
  """field name -> CNNSATower, or -> (sub-module, its own _towers) for a field that
  holds towers deeper down."""
  found = {}
  if not dataclasses.is_dataclass(model):  # e.g. a test double: nothing to fold.
    return found
  for field in dataclasses.fields(model):
    if field.name in ("parent", "name"):  # Flax's own fields, not sub-modules.
      continue
    value = getattr(model, field.name, None)
    if isinstance(value, cnnsa.CNNSATower):
      found[field.name] = value
    elif isinstance(value, nn.Module):
      inner = _towers(value)
      if inner:
        found[field.name] = (value, inner)
  return found


def _fold_tree(towers: dict, params: Mapping, stats: Mapping) -> tuple[dict, dict]:
  params, stats = dict(params), dict(stats)
  for name, tower in towers.items():
    if isinstance(tower, tuple):
      params[name], stats[name] = _fold_tree(tower[1], params[name], stats.get(name, {}))
    else:
      params[name] = fold_tower(params[name], stats[name])
      del stats[name]
    if name in stats and not stats[name]:
      del stats[name]
  return params, stats


def _fold_model(model: nn.Module, towers: dict) -> nn.Module:
  changes = {}
  for name, tower in towers.items():
    if isinstance(tower, tuple):
      changes[name] = _fold_model(tower[0], tower[1])
    else:
      changes[name] = tower.clone(folded=True)
  return model.clone(**changes)


def fold(model: nn.Module, variables: Mapping) -> tuple[nn.Module, dict]:
  """The inference (BN-folded) copy of a model and its variables.

  Every CNNSATower field of `model` (at any depth) becomes `folded=True`, its params
  come from `fold_tower` and its batch_stats are dropped; everything else is kept.
  A model without towers, towers already folded, or variables without batch_stats
  are returned unchanged. Only for train=False calls of the returned model.

  Args:
    model: an (unbound) Flax model, e.g. `asa_jax.systems.build_model(config)`.
    variables: {"params": ..., "batch_stats": ...} of that model.

  Returns:
    (folded model, variables): the variables hold "params" and, only when some
    other layer still has them, "batch_stats".

  Raises:
    KeyError: the variables do not match the model's towers.
  """
  towers = _towers(model)
  if not towers or "batch_stats" not in variables or _already_folded(towers):
    return model, dict(variables)
  params, stats = _fold_tree(towers, variables["params"], variables["batch_stats"])
  out = {k: v for k, v in variables.items() if k not in ("params", "batch_stats")}
  out["params"] = params
  if stats:
    out["batch_stats"] = stats
  return _fold_model(model, towers), out


def _already_folded(towers: dict) -> bool:
  return any(t.folded if isinstance(t, cnnsa.CNNSATower) else _already_folded(t[1])
             for t in towers.values())

