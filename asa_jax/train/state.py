"""Train state: parameters, BatchNorm statistics, Adam state, step and base RNG."""

from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax.training import train_state

from asa_jax import systems
from asa_jax.features import constants


class TrainState(train_state.TrainState):
  """flax TrainState + `batch_stats` (BatchNorm running averages) + `rng` (base key).

  The dropout key of step s is fold_in(rng, s), so a resumed run draws the same
  dropout masks as an uninterrupted one.
  """
  batch_stats: Any = None
  rng: jax.Array = None


_OPTIMIZERS = {"adam": optax.adam, "sgd": optax.sgd}


def make_optimizer(config: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """config.train.optimizer with config.train.learning_rate, optax defaults otherwise.

  Parameters that the system labels "frozen" (`System.frozen_labels`; EmbDirect's
  tower, paper 3.2.4) get optax.set_to_zero() through optax.multi_transform (zero
  updates, no optimizer state).

  'adam' is the paper's (3.4, lr 1e-6). 'sgd' exists for equality tests: Adam divides
  each gradient by its running RMS, which turns rounding noise in a near-zero gradient
  into a whole learning-rate step, so runs that differ only in summation order (N
  devices, N processes) diverge element-wise under Adam but not under SGD.
  Wrapped in optax.inject_hyperparams so the learning rate is logged from the state.

  Raises:
    ValueError: for an unknown config.train.optimizer.
  """
  name = config.train.optimizer
  if name not in _OPTIMIZERS:
    raise ValueError(f"config.train.optimizer={name!r}: use one of {sorted(_OPTIMIZERS)}")
  base = _OPTIMIZERS[name]
  labels = systems.get(config).frozen_labels()
  if labels is not None:
    def with_frozen(learning_rate):
      return optax.multi_transform(
          {"train": base(learning_rate), "frozen": optax.set_to_zero()}, labels)
    return optax.inject_hyperparams(with_frozen)(
        learning_rate=config.train.learning_rate)
  return optax.inject_hyperparams(base)(learning_rate=config.train.learning_rate)


def input_shape(config: ml_collections.ConfigDict, batch: int = 1) -> tuple[int, ...]:
  """(batch, C, 96, 94) with C = len(config.features.channels)."""
  return (batch, len(config.features.channels), constants.N_BINS, constants.N_FRAMES)


def create_train_state(model: flax.linen.Module, config: ml_collections.ConfigDict,
                       seed: int | jax.Array, *,
                       tx: optax.GradientTransformation | None = None) -> TrainState:
  """Initialises parameters (float32) and optimizer state for `model`.

  Parameters are drawn with an 'rbg' key (XLA RngBitGenerator): on CPU, compiling
  ~100 threefry initialisers took 10-15 s even for a tiny model, rbg ~1 s. Dropout
  uses a threefry key (`rng`, raw uint32 (2,)), whose values do not depend on how the
  batch is sharded, so 1 device and N devices draw the same masks.
  Call under jax.jit (with out_shardings) for speed and placement; see loop.py.

  Args:
    model: the model of config.system (asa_jax.systems.build_model).
    config: the run config.
    seed: integer seed (config.seed).
    tx: the optimizer; None = `make_optimizer(config)`. A caller that traces this
      more than once passes the same one: the state's static fields (apply_fn, tx)
      are then equal, so a jitted step taking the state is not traced again.
  """
  init_key = jax.random.key(seed, impl="rbg")
  x = jnp.zeros(input_shape(config), jnp.float32)
  variables = model.init(init_key, *systems.get(config).init_inputs(x), train=False)
  return TrainState.create(apply_fn=model.apply, params=variables["params"],
                           tx=make_optimizer(config) if tx is None else tx,
                           batch_stats=variables.get("batch_stats", {}),
                           rng=jax.random.fold_in(jax.random.PRNGKey(seed), 1)
                           ).replace(step=jnp.zeros((), jnp.int32))
