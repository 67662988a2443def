"""Score regression: the Direct (paper 3.2.1) and Delta (paper 3.2.2) systems.

Direct: "the five-channel audio representation is fed into the schematic CNN + self
attention model ..., with 3 fully connected layers at the end to output a score"
(3.2.1, Figure 2). No reference is used.
Delta: the same network on the reference representation minus the performance
representation: "Given the audio representation, we subtract it from the audio
representation of reference clip" (3.2.2, Figure 3). Order: reference - performance,
taken on the normalised model inputs (both clips standardised per channel with the
training statistics; a key-shifted performance when data.key_align = 'shift').

Target scaling: the head's last layer predicts score / score_scale (score_scale = 100,
human scores are 0..100, paper 3.3), and the model returns that times score_scale,
i.e. a prediction in score units. The training loss (asa_jax.train.step) is the MSE in
score / score_scale units, so its size does not depend on the score range.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp

from asa_jax.models.cnnsa import CNNSATower

# Initial output of the head's last layer (in score / score_scale units): 0.5 starts
# every prediction near the middle of the 0..100 score range.
_HEAD_BIAS_INIT = 0.5


class ScoreHead(nn.Module):
  """3 fully connected layers, Dense(h1)-ReLU-Dense(h2)-ReLU-Dense(1) (3.2.1, 3.2.4).

  Attributes:
    hidden: widths of the hidden layers (config.model.head_hidden; 2 entries give
      the paper's 3 layers).
    score_scale: the last layer predicts score / score_scale.
  """
  hidden: Sequence[int] = (128, 64)
  score_scale: float = 100.0

  @nn.compact
  def __call__(self, e: jnp.ndarray) -> jnp.ndarray:
    """(B, D) float embeddings -> (B,) float32 predicted scores in score units."""
    x = e.astype(jnp.float32)
    for i, width in enumerate(self.hidden):
      x = nn.relu(nn.Dense(int(width), name=f"dense_{i + 1}")(x))
    y = nn.Dense(1, bias_init=nn.initializers.constant(_HEAD_BIAS_INIT),
                 name=f"dense_{len(self.hidden) + 1}")(x)[:, 0]
    return y * self.score_scale


class RegressionModel(nn.Module):
  """CNNSA tower + ScoreHead on the performance (Direct) or reference - performance
  (Delta). Parameter collections: `tower`, `head`.

  Attributes:
    tower: the CNNSA tower (paper 3.2).
    head: the score head.
    delta: False = Direct (input = performance), True = Delta (input = reference -
      performance).
  """
  tower: CNNSATower
  head: ScoreHead
  delta: bool = False

  def model_input(self, performance: jnp.ndarray, reference: jnp.ndarray
                  ) -> jnp.ndarray:
    """The tower input: performance (Direct) or reference - performance (Delta).

    Args:
      performance, reference: (B, C, 96, 94) float32 normalised features.

    Raises:
      ValueError: Delta with clips of different shapes.
    """
    if not self.delta:
      return performance
    if performance.shape != reference.shape:
      raise ValueError("Delta needs performance and reference of one shape; got "
                       f"{performance.shape} and {reference.shape}")
    return reference - performance

  def __call__(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
               train: bool) -> jnp.ndarray:
    """Predicted clip scores.

    Args:
      performance, reference: (B, C, 96, 94) float32 (Direct ignores reference).
      train: batch statistics and dropout on/off.

    Returns:
      (B,) float32 predicted scores in score units (0..100 scale).
    """
    return self.head(self.tower(self.model_input(performance, reference), train=train))

  def embed_performance(self, x: jnp.ndarray, *, train: bool = False) -> jnp.ndarray:
    """The tower's embedding of a model input: (B, C, 96, 94) -> (B, D) float32.

    For Direct x is a performance clip; for Delta it is reference - performance.
    """
    return self.tower(x, train=train)

  def score_clips(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
                  train: bool = False
                  ) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(tower embedding (B, D), empty anchor (B, 0), predicted score (B,)).

    The uniform scoring interface (asa_jax.evaluation.scoring); no anchor tower.
    """
    e = self.tower(self.model_input(performance, reference), train=train)
    return e, jnp.zeros((e.shape[0], 0), jnp.float32), self.head(e)
