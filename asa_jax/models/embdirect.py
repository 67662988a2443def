"""EmbDirect: frozen Rori performance tower + score head (paper 3.2.4).

"for a given clip, we take the Rori model pre-trained in previous section and output
the clip embedding of 128 dimension. In this system, we train three fully connected
layers with ReLU activation to regress and match the labelled score" (3.2.4). No
reference is used at inference.

The tower's parameters live under `performance_tower` (the same name as in
TripletModel, so a Rori checkpoint's subtree drops in); the tower always runs with
train=False (running BatchNorm statistics, no dropout) behind stop_gradient, and the
optimizer leaves it unchanged (asa_jax.train.state.make_optimizer), so its params and
batch_stats stay bit-identical through training.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.regression import ScoreHead

FROZEN_COLLECTION = "performance_tower"


class EmbDirectModel(nn.Module):
  """Frozen performance tower (`performance_tower`) + trainable ScoreHead (`head`)."""
  performance_tower: CNNSATower
  head: ScoreHead

  def embed_performance(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    """(B, C, 96, 94) performance clips -> (B, D) float32 frozen Rori embeddings.

    `train` is ignored: the frozen tower always uses running statistics, no dropout.
    """
    del train
    return jax.lax.stop_gradient(self.performance_tower(x, train=False))

  def __call__(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
               train: bool) -> jnp.ndarray:
    """(B, C, 96, 94) clips -> (B,) float32 predicted scores (reference ignored)."""
    del reference, train
    return self.head(self.embed_performance(performance))

  def score_clips(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
                  train: bool = False
                  ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(frozen embedding (B, D), empty anchor (B, 0), predicted score (B,))."""
    del reference, train
    e = self.embed_performance(performance)
    return e, jnp.zeros((e.shape[0], 0), jnp.float32), self.head(e)
