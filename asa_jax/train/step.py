"""The jitted train and eval steps (paper 3.2.3 loss, 3.4 optimiser)."""

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
