"""Triplet network: reference (anchor) tower + shared performance tower (paper 3.2.3).

"All three towers have the same architecture, but the two towers of positive and
negative singing clips enabled weight-sharing while the reference tower doesn't"
(paper 3.2.3, Figure 4). The final assessment of a clip is the cosine similarity of
`embed_performance(clip)` and `embed_anchor(reference clip)`.

BatchNorm decision: the shared performance tower is called ONCE per step on the
positive and negative clips together (interleaved p0, n0, p1, n1, ...), so in training
the batch statistics of its BatchNorm layers span good and poor clips together (2B
clips) and the running averages are updated once per step. This matches the clips
the tower sees at scoring time (a mix of good and poor performances) and avoids
normalising good and poor clips with separate statistics, which would let the
network read the class off the batch statistics. Interleaving keeps every device's
positive and negative rows on that device when the batch is sharded.
"""

import flax.linen as nn
import jax.numpy as jnp

from asa_jax import losses
from asa_jax.models.cnnsa import CNNSATower


class TripletModel(nn.Module):
  """Anchor tower (own parameters) + performance tower shared by positive and negative.

  Attributes:
    anchor_tower: tower for reference clips (param collection `anchor_tower`).
    performance_tower: tower for performance clips (`performance_tower`).
  """
  anchor_tower: CNNSATower
  performance_tower: CNNSATower

  def __call__(self, anchor: jnp.ndarray, positive: jnp.ndarray, negative: jnp.ndarray,
               *, train: bool) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """Embeds a triplet batch (paper 3.2.3).

    Args:
      anchor, positive, negative: (B, C, 96, 94) float32 features: reference clip,
        good performance clip, poor performance clip.
      train: batch statistics and dropout on/off.

    Returns:
      (a, p, n), each (B, embedding_dim) float32.

    Raises:
      ValueError: if the three inputs do not have the same shape.
    """
    if not anchor.shape == positive.shape == negative.shape:
      raise ValueError("anchor, positive and negative must have the same shape; got "
                       f"{anchor.shape}, {positive.shape}, {negative.shape}")
    b = anchor.shape[0]
    a = self.anchor_tower(anchor, train=train)
    pn = jnp.stack([positive, negative], axis=1).reshape((2 * b,) + positive.shape[1:])
    e = self.performance_tower(pn, train=train).reshape(b, 2, -1)
    return a, e[:, 0], e[:, 1]

  def embed_anchor(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    """(B, C, 96, 94) reference clips -> (B, embedding_dim) float32."""
    return self.anchor_tower(x, train=train)

  def embed_performance(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    """(B, C, 96, 94) performance clips -> (B, embedding_dim) float32."""
    return self.performance_tower(x, train=train)

  def score_clips(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
                  train: bool = False
                  ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(performance emb (B, D), anchor emb (B, D), clip score (B,)) for scoring.

    The clip score is the cosine similarity of the two embeddings (paper 3.2.3).
    """
    p = self.performance_tower(performance, train=train)
    a = self.anchor_tower(reference, train=train)
    return p, a, losses.cosine_similarity(p, a)
