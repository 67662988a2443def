"""Siamese contrastive system of the singer-embedding study (../shared/papers,
"singer identification and embedding", section 4): one tower G embeds two clips; with
D = ||G(x1) - G(x2)||^2 (their eq. 4) the loss is

  L = 1/2 y D + 1/2 (1 - y) max(0, m - D)     (their eq. 5, m = 1)

with y = 1 for a pair of the same class. There the class is the singer; here it is
the quality class of paper 3.3 (good / poor), pairs sampled 1:1 same / different
(`input_pipeline.loader.PairLoader`). Their towers pool over time with feed-forward
attention: `configs/siamese.py` sets model.pooling = 'attention'. The clip score is
-D between the performance clip and the reference clip (the original singer, a good
class) through the same tower: the closer, the better.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from asa_jax import losses as losses_lib
from asa_jax.models.cnnsa import CNNSATower
from asa_jax.systems import base


def contrastive_losses(e1: jnp.ndarray, e2: jnp.ndarray, same: jnp.ndarray,
                       margin: float) -> jnp.ndarray:
  """Per-pair 1/2 y D + 1/2 (1 - y) max(0, m - D), D = squared Euclidean distance.

  Args:
    e1, e2: (B, D) embeddings.
    same: (B,) 1 for a same-class pair, 0 otherwise.
    margin: m.

  Returns:
    float32 (B,).
  """
  d = jnp.sum((e1.astype(jnp.float32) - e2.astype(jnp.float32)) ** 2, axis=-1)
  return 0.5 * same * d + 0.5 * (1.0 - same) * jnp.maximum(0.0, margin - d)


class SiameseModel(nn.Module):
  """One shared tower (`performance_tower`) for both clips of a pair."""
  performance_tower: CNNSATower

  def __call__(self, first: jnp.ndarray, second: jnp.ndarray, *, train: bool
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(B, C, 96, 94) clip pairs -> two (B, D) float32 embeddings (one tower call)."""
    b = first.shape[0]
    e = self.performance_tower(jnp.concatenate([first, second]), train=train)
    return e[:b], e[b:]

  def embed_performance(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    """(B, C, 96, 94) -> (B, D) float32."""
    return self.performance_tower(x, train=train)

  def score_clips(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
                  train: bool = False):
    """(performance emb, reference emb, clip score = -squared distance) for scoring."""
    p = self.performance_tower(performance, train=train)
    r = self.performance_tower(reference, train=train)
    return p, r, -jnp.sum((p - r) ** 2, axis=-1)


@dataclasses.dataclass(frozen=True)
class SiameseSystem(base.MarginSystem):
  """The siamese system; `margin` is m (config loss.margin)."""

  def build_model(self, config) -> SiameseModel:
    return SiameseModel(performance_tower=CNNSATower.from_config(config.model))

  def loss(self, out, batch, mask):
    per = contrastive_losses(out[0], out[1], batch["same"], self.margin)
    return losses_lib.masked_mean(per, mask)

  def train_metrics(self, out, batch, mask):
    """Mean squared distance of same-class and of different-class pairs."""
    d = jnp.sum((out[0] - out[1]) ** 2, axis=-1)
    same = batch["same"] * mask
    diff = (1.0 - batch["same"]) * mask
    return {"d_same": jnp.sum(d * same) / jnp.maximum(jnp.sum(same), 1.0),
            "d_different": jnp.sum(d * diff) / jnp.maximum(jnp.sum(diff), 1.0)}

  def eval_sums(self, out, batch, mask):
    return {"loss_sum": jnp.sum(
        contrastive_losses(out[0], out[1], batch["same"], self.margin) * mask)}


SYSTEMS = {"siamese": SiameseSystem(
    name="siamese", paper_name="Siamese contrastive (singer embedding)",
    group="Proposed", reference="original",
    score_label="predicted score (minus squared distance)", table_order=7,
    batch_kind="pairs", input_keys=("first", "second"), loader="PairLoader")}
