"""Lee & Nam (2019): a triplet network trained with a hinge rank loss over K negatives.

Lee & Nam, "Learning a joint embedding space of monophonic and mixed music signals
for singing voice" (ISMIR 2019), in ../shared/papers: the anchor tower embeds the
reference clip, one shared tower the performance clips; for a positive (the better
performance) and K negatives (worse performances of the same song, at the same
reference position):

  L = sum_k max(0, alpha - S(a, p) + S(a, n_k)),  S = cosine similarity,

averaged over rows; K = 4 and alpha = 0.1 by default (their grid search; config
loss.negatives and loss.margin). Rows come from `input_pipeline.loader.RankLoader`.
The clip score is cos(p, a), as Rori's. Not implemented: their "hard" negatives (the
top K of 20 sampled) and the optional classification pre-training of the tower.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from asa_jax import losses
from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.triplet import TripletModel
from asa_jax.systems import base


def hinge_rank_losses(a: jnp.ndarray, p: jnp.ndarray, n: jnp.ndarray,
                      margin: float) -> jnp.ndarray:
  """Per-row hinge rank loss sum_k max(0, margin - cos(a, p) + cos(a, n_k)).

  Args:
    a, p: (B, D) anchor and positive embeddings.
    n: (B, K, D) negative embeddings.
    margin: alpha.

  Returns:
    float32 (B,).
  """
  s_ap = losses.cosine_similarity(a, p)  # (B,)
  s_an = losses.cosine_similarity(a[:, None, :], n)  # (B, K)
  return jnp.sum(jnp.maximum(0.0, margin - s_ap[:, None] + s_an), axis=1)


class RankModel(TripletModel):
  """TripletModel (same towers and parameter names) taking K negatives per row."""

  def __call__(self, anchor: jnp.ndarray, positive: jnp.ndarray,
               negatives: jnp.ndarray, *, train: bool
               ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(B, C, 96, 94) anchor and positive, (B, K, C, 96, 94) negatives ->
    (a (B, D), p (B, D), n (B, K, D)) float32 embeddings.

    Raises:
      ValueError: negatives not (B, K, *positive.shape[1:]).
    """
    if negatives.shape[0] != positive.shape[0] or negatives.shape[2:] != positive.shape[1:]:
      raise ValueError(f"negatives must be (B, K, C, 96, 94) for positives "
                       f"{positive.shape}; got {negatives.shape}")
    b, k = negatives.shape[:2]
    a = self.anchor_tower(anchor, train=train)
    pn = jnp.concatenate([positive[:, None], negatives], axis=1).reshape(
        (b * (k + 1),) + positive.shape[1:])
    e = self.performance_tower(pn, train=train).reshape(b, k + 1, -1)
    return a, e[:, 0], e[:, 1:]


@dataclasses.dataclass(frozen=True)
class HingeRankSystem(base.MarginSystem):
  """Lee & Nam's system; margin = alpha, negatives = K."""
  margin: float = 0.1
  negatives: int = 4

  def configure(self, config) -> "HingeRankSystem":
    """MarginSystem's margin and reference; negatives = config.loss.negatives."""
    return dataclasses.replace(super().configure(config),
                               negatives=int(config.loss.negatives))

  def build_model(self, config) -> RankModel:
    tower = lambda: CNNSATower.from_config(config.model)
    return RankModel(anchor_tower=tower(), performance_tower=tower())

  def init_inputs(self, x):
    return x, x, x[:, None].repeat(self.negatives, axis=1)

  def loss(self, out, batch, mask):
    a, p, n = out
    per = hinge_rank_losses(a, p, n, self.margin)
    return losses.masked_mean(per, mask)

  def train_metrics(self, out, batch, mask):
    """active_fraction (rows with loss > 0), mean cos_ap and cos_an (over k)."""
    a, p, n = out
    total = jnp.maximum(jnp.sum(mask), 1.0)
    per = hinge_rank_losses(a, p, n, self.margin)
    cos_an = jnp.mean(losses.cosine_similarity(a[:, None, :], n), axis=1)
    return {"active_fraction": jnp.sum((per > 0) * mask) / total,
            "cos_ap": jnp.sum(losses.cosine_similarity(a, p) * mask) / total,
            "cos_an": jnp.sum(cos_an * mask) / total}

  def eval_sums(self, out, batch, mask):
    a, p, n = out
    cos_an = jnp.mean(losses.cosine_similarity(a[:, None, :], n), axis=1)
    return {"loss_sum": jnp.sum(hinge_rank_losses(a, p, n, self.margin) * mask),
            "cos_ap_sum": jnp.sum(losses.cosine_similarity(a, p) * mask),
            "cos_an_sum": jnp.sum(cos_an * mask)}


SYSTEMS = {"hinge_rank": HingeRankSystem(
    name="hinge_rank", paper_name="Hinge rank (Lee & Nam)", group="Proposed",
    reference="original", score_label="predicted score (cosine similarity)",
    table_order=5, batch_kind="triplet", loader="RankLoader",
    input_keys=("anchor", "positive", "negatives"))}
