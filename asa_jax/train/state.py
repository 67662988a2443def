"""Train state: parameters, BatchNorm statistics, Adam state, step and base RNG."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from asa_jax.features import constants


class TrainState(train_state.TrainState):
  """flax TrainState + `batch_stats` (BatchNorm running averages) + `rng` (base key).

  The dropout key of step s is fold_in(rng, s), so a resumed run draws the same
  dropout masks as an uninterrupted one.
  """
  batch_stats: Any = None
  rng: jax.Array = None


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Adam with config.train.learning_rate (paper 3.4: 1e-6), optax defaults otherwise.

  Wrapped in optax.inject_hyperparams so the learning rate is logged from the state.
  """
  return optax.inject_hyperparams(optax.adam)(learning_rate=config.train.learning_rate)


def input_shape(config: ml_collections.ConfigDict, batch: int = 1) -> tuple[int, ...]:
  """(batch, C, 96, 94) with C = len(config.features.channels)."""
  return (batch, len(config.features.channels), constants.N_BINS, constants.N_FRAMES)


def create_train_state(model: flax.linen.Module, config: ml_collections.ConfigDict,
                       seed: int | jax.Array) -> TrainState:
  """Initialises parameters (float32) and optimizer state for `model`.

  Parameters are drawn with an 'rbg' key (XLA RngBitGenerator): on CPU, compiling
  ~100 threefry initialisers took 10-15 s even for a tiny model, rbg ~1 s. Dropout
  uses a threefry key (`rng`, raw uint32 (2,)), whose values do not depend on how the
  batch is sharded, so 1 device and N devices draw the same masks.
  Call under jax.jit (with out_shardings) for speed and placement; see loop.py.

  Args:
    model: a TripletModel.
    config: the run config.
    seed: integer seed (config.seed).
  """
  init_key = jax.random.key(seed, impl="rbg")
  x = jnp.zeros(input_shape(config), jnp.float32)
  variables = model.init(init_key, x, x, x, train=False)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=make_optimizer(config),
                           batch_stats=variables.get("batch_stats", {}),
                           rng=jax.random.fold_in(jax.random.PRNGKey(seed), 1)
                           ).replace(step=jnp.zeros((), jnp.int32))
