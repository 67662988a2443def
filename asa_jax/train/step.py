"""The one jitted train step and eval step of every learned system (paper 3.4).

The system (`asa_jax.systems.get(config)`) supplies the model inputs, the loss, and
the measurements; the steps do the rest the same way for all: dropout key folded with
the step, BatchNorm statistics updated, the optimizer applied, the state donated.
`make_steps(config, ...)` jits both for the config's system (cached per system and
shardings).
"""

import functools

import jax
import jax.numpy as jnp
import optax

from asa_jax import systems
from asa_jax.systems import System
from asa_jax.train.state import TrainState

# Key streams beside dropout: the step's augmentation key is
# fold_in(fold_in(state.rng, step), AUGMENT_FOLD); eval batches use a fixed key.
AUGMENT_FOLD = 1
EVAL_AUGMENT_SEED = 0


def _mask(system: System, batch: dict) -> jnp.ndarray:
  mask = batch.get("mask")
  if mask is None:
    mask = jnp.ones(batch[system.input_keys[0]].shape[:1], jnp.float32)
  return mask.astype(jnp.float32)


def train_step(state: TrainState, batch: dict, *, system: System
               ) -> tuple[TrainState, dict]:
  """One optimizer update on a global batch.

  Args:
    state: replicated TrainState.
    batch: the system's inputs (`system.input_keys`: (B, C, 96, 94) float32), its
      targets (e.g. "target": (B,) human scores for regression systems), optional
      "mask": (B,) (1 = real row, 0 = padding).
    system: the learned system (static).

  Returns:
    (new state, metrics): scalar float32 loss, grad_norm, learning_rate (the
    optimizer's base rate) and the system's `train_metrics`.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)
  batch = system.augment(batch, jax.random.fold_in(dropout_rng, AUGMENT_FOLD),
                         train=True)
  mask = _mask(system, batch)

  def loss_fn(params):
    out, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        *system.model_inputs(batch), train=True, rngs={"dropout": dropout_rng},
        mutable=["batch_stats"])
    return system.loss(out, batch, mask), (
        updates.get("batch_stats", state.batch_stats), out)

  (loss, (batch_stats, out)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  hp = getattr(state.opt_state, "hyperparams", None)
  metrics = {
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "learning_rate": jnp.asarray(hp["learning_rate"] if hp else jnp.nan, jnp.float32),
      **system.train_metrics(out, batch, mask),
  }
  return new_state, metrics


def eval_step(state: TrainState, batch: dict, *, system: System) -> dict:
  """Masked SUMS on a validation batch (running BatchNorm statistics, no dropout).

  Returns:
    {"loss_sum", "count", <the system's other "<name>_sum">} float32 scalars, to be
    summed over batches and divided by "count" (triplet systems: cos_ap_sum,
    cos_an_sum; regression systems: mae_sum).
  """
  batch = system.augment(batch, jax.random.PRNGKey(EVAL_AUGMENT_SEED), train=False)
  mask = _mask(system, batch)
  out = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                       *system.model_inputs(batch), train=False)
  return {**system.eval_sums(out, batch, mask), "count": jnp.sum(mask)}


# XLA CPU's default scheduler orders the step's ops for concurrency on its thread pool
# and keeps more activations live to do so. The memory-minimising one cut the paper
# tower's step at batch 32 from 1.38 to 1.19 GiB of temporaries, with the same loss
# and step time (BUILD_NOTES, "Training memory under 2.5 GiB").
_CPU_TRAIN_OPTIONS = {"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}


def train_compiler_options(sharding) -> dict | None:
  """XLA compiler options of the train step on `sharding`'s devices: the CPU
  backend's memory-minimising scheduler there, None (XLA's defaults) elsewhere."""
  platforms = {d.platform for d in sharding.device_set}
  return dict(_CPU_TRAIN_OPTIONS) if platforms == {"cpu"} else None


@functools.lru_cache(maxsize=None)
def make_train_step(system: System, state_sharding, batch_sharding, metric_sharding):
  """jit(train_step) donating the state; shardings from asa_jax.train.mesh.

  Cached, so repeated runs in one process (tests, resume) reuse the compilation.
  On CPU it is compiled with `train_compiler_options`.
  """
  return jax.jit(functools.partial(train_step, system=system),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, metric_sharding),
                 donate_argnums=(0,),
                 compiler_options=train_compiler_options(state_sharding))


@functools.lru_cache(maxsize=None)
def make_eval_step(system: System, state_sharding, batch_sharding, metric_sharding):
  """jit(eval_step)."""
  return jax.jit(functools.partial(eval_step, system=system),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=metric_sharding)


def make_steps(config, state_sharding, batch_sharding, metric_sharding):
  """(train_fn, eval_fn) of config's system (`asa_jax.systems.get`).

  Raises:
    ValueError: config.system is not a learned system.
  """
  system = systems.get(config)
  shardings = (state_sharding, batch_sharding, metric_sharding)
  return make_train_step(system, *shardings), make_eval_step(system, *shardings)
