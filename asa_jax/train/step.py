"""The jitted train and eval steps (paper 3.2.3 loss, 3.4 optimiser).

Triplet systems (rori, racc): triplet margin loss with cosine similarity (3.2.3).
Regression systems (direct 3.2.1, delta 3.2.2, embdirect 3.2.4): mean squared error
between predicted and human clip scores, both divided by config.model.score_scale
(100: the loss is in (score / 100)^2 units). `make_steps(config, ...)` picks the pair.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from asa_jax import losses
from asa_jax.train.state import TrainState


def train_step(state: TrainState, batch: dict, *, margin: float
               ) -> tuple[TrainState, dict]:
  """One Adam update on a global batch of triplets.

  Args:
    state: replicated TrainState.
    batch: {"anchor","positive","negative"}: (B, C, 96, 94) float32, optional
      "mask": (B,) (1 = real triplet).
    margin: triplet margin alpha.

  Returns:
    (new state, metrics) with scalar float32 metrics: loss, grad_norm, learning_rate
    (Adam's base rate; constant schedule), active_fraction (share of triplets with
    loss > 0), cos_ap, cos_an (mean cosine similarities).
  """
  mask = batch.get("mask")
  if mask is None:
    mask = jnp.ones(batch["anchor"].shape[:1], jnp.float32)
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    (a, p, n), updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        batch["anchor"], batch["positive"], batch["negative"], train=True,
        rngs={"dropout": dropout_rng}, mutable=["batch_stats"])
    loss = losses.triplet_margin_loss(a, p, n, margin, mask)
    return loss, (updates["batch_stats"], a, p, n)

  (loss, (batch_stats, a, p, n)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  total = jnp.maximum(jnp.sum(mask), 1.0)
  per = losses.triplet_losses(a, p, n, margin)
  hp = getattr(state.opt_state, "hyperparams", None)
  metrics = {
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "learning_rate": jnp.asarray(hp["learning_rate"] if hp else jnp.nan, jnp.float32),
      "active_fraction": jnp.sum((per > 0) * mask) / total,
      "cos_ap": jnp.sum(losses.cosine_similarity(a, p) * mask) / total,
      "cos_an": jnp.sum(losses.cosine_similarity(a, n) * mask) / total,
  }
  return new_state, metrics


def eval_step(state: TrainState, batch: dict, *, margin: float) -> dict:
  """Masked loss SUMS on a validation batch (running BatchNorm statistics, no dropout).

  Returns:
    {"loss_sum", "count", "cos_ap_sum", "cos_an_sum"} float32 scalars, to be summed
    over batches and divided by "count".
  """
  mask = batch.get("mask")
  if mask is None:
    mask = jnp.ones(batch["anchor"].shape[:1], jnp.float32)
  mask = mask.astype(jnp.float32)
  a, p, n = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                           batch["anchor"], batch["positive"], batch["negative"],
                           train=False)
  return {"loss_sum": jnp.sum(losses.triplet_losses(a, p, n, margin) * mask),
          "count": jnp.sum(mask),
          "cos_ap_sum": jnp.sum(losses.cosine_similarity(a, p) * mask),
          "cos_an_sum": jnp.sum(losses.cosine_similarity(a, n) * mask)}


@functools.lru_cache(maxsize=None)
def make_train_step(margin: float, state_sharding, batch_sharding, metric_sharding):
  """jit(train_step) donating the state; shardings from asa_jax.train.mesh.

  Cached, so repeated runs in one process (tests, resume) reuse the compilation.
  """
  return jax.jit(functools.partial(train_step, margin=margin),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, metric_sharding),
                 donate_argnums=(0,))


@functools.lru_cache(maxsize=None)
def make_eval_step(margin: float, state_sharding, batch_sharding, metric_sharding):
  """jit(eval_step)."""
  return jax.jit(functools.partial(eval_step, margin=margin),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=metric_sharding)


def _mask(batch: dict, key: str) -> jnp.ndarray:
  mask = batch.get("mask")
  if mask is None:
    mask = jnp.ones(batch[key].shape[:1], jnp.float32)
  return mask.astype(jnp.float32)


def regression_train_step(state: TrainState, batch: dict, *, score_scale: float
                          ) -> tuple[TrainState, dict]:
  """One optimizer update on a global batch of scored clips (MSE regression).

  Args:
    state: replicated TrainState of a regression model (predictions in score units).
    batch: {"performance","reference"}: (B, C, 96, 94) float32, "target": (B,) human
      scores (score units, 0..100), optional "mask": (B,) (1 = real clip).
    score_scale: loss = masked mean of ((prediction - target) / score_scale)^2.

  Returns:
    (new state, metrics): scalar float32 loss, grad_norm, learning_rate, mae (mean
    absolute error, score units), pred_mean (mean prediction, score units).
  """
  mask = _mask(batch, "performance")
  total = jnp.maximum(jnp.sum(mask), 1.0)
  dropout_rng = jax.random.fold_in(state.rng, state.step)

  def loss_fn(params):
    pred, updates = state.apply_fn(
        {"params": params, "batch_stats": state.batch_stats},
        batch["performance"], batch["reference"], train=True,
        rngs={"dropout": dropout_rng}, mutable=["batch_stats"])
    err = (pred - batch["target"]) / score_scale
    return jnp.sum(err * err * mask) / total, (
        updates.get("batch_stats", state.batch_stats), pred)

  (loss, (batch_stats, pred)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  hp = getattr(state.opt_state, "hyperparams", None)
  metrics = {
      "loss": loss,
      "grad_norm": optax.tree.norm(grads),
      "learning_rate": jnp.asarray(hp["learning_rate"] if hp else jnp.nan, jnp.float32),
      "mae": jnp.sum(jnp.abs(pred - batch["target"]) * mask) / total,
      "pred_mean": jnp.sum(pred * mask) / total,
  }
  return new_state, metrics


def regression_eval_step(state: TrainState, batch: dict, *, score_scale: float
                         ) -> dict:
  """Masked SUMS on a validation batch of scored clips (running BatchNorm stats).

  Returns:
    {"loss_sum" (squared error / score_scale^2), "count", "mae_sum" (score units)}
    float32 scalars, to be summed over batches and divided by "count".
  """
  mask = _mask(batch, "performance")
  pred = state.apply_fn({"params": state.params, "batch_stats": state.batch_stats},
                        batch["performance"], batch["reference"], train=False)
  err = pred - batch["target"]
  return {"loss_sum": jnp.sum((err / score_scale) ** 2 * mask),
          "count": jnp.sum(mask),
          "mae_sum": jnp.sum(jnp.abs(err) * mask)}


@functools.lru_cache(maxsize=None)
def make_regression_train_step(score_scale: float, state_sharding, batch_sharding,
                               metric_sharding):
  """jit(regression_train_step) donating the state."""
  return jax.jit(functools.partial(regression_train_step, score_scale=score_scale),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=(state_sharding, metric_sharding),
                 donate_argnums=(0,))


@functools.lru_cache(maxsize=None)
def make_regression_eval_step(score_scale: float, state_sharding, batch_sharding,
                              metric_sharding):
  """jit(regression_eval_step)."""
  return jax.jit(functools.partial(regression_eval_step, score_scale=score_scale),
                 in_shardings=(state_sharding, batch_sharding),
                 out_shardings=metric_sharding)


def make_steps(config, state_sharding, batch_sharding, metric_sharding):
  """(train_fn, eval_fn) for config.system: triplet steps with config.loss.margin,
  regression steps with config.model.score_scale.

  Raises:
    ValueError: config.system is not a learned system.
  """
  from asa_jax.models import system_kind  # pylint: disable=g-import-not-at-top
  shardings = (state_sharding, batch_sharding, metric_sharding)
  if system_kind(config) == "triplet":
    margin = float(config.loss.margin)
    return make_train_step(margin, *shardings), make_eval_step(margin, *shardings)
  scale = float(config.model.score_scale)
  return (make_regression_train_step(scale, *shardings),
          make_regression_eval_step(scale, *shardings))
