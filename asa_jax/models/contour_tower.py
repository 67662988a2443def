"""A 1-D CNN + self-attention tower on pitch contours (issue 18, section 2).

The CNNSA idea of `asa_jax.models.cnnsa` (paper 3.2, after Won et al.) on a contour
instead of a spectrogram: residual 1-D convolution blocks (kernel 5, stride 2) read
local pitch shape (note steps, scoops, vibrato) and shorten the sequence 2x per
block; a learned position embedding and BERT encoder layers (`cnnsa.BertLayer`)
relate notes across the window; attention pooling over time (`cnnsa.TimePooling`,
Raffel & Ellis 2016) and a dense layer give the embedding.

Input: (B, C, T) float32 contour channels at 10 ms frames (C = 4: pitch relative to
the contour's voiced median in octaves, its position inside the semitone as sin/cos,
voicing; see `asa_jax.systems.contour.contour_channels`). Output: (B, embedding_dim) float32.
With T = 640 and 3 blocks the attention sequence is 80 steps of 80 ms.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from asa_jax.models.cnnsa import BertLayer, TimePooling

_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5
_INIT = nn.initializers.normal(stddev=0.02)


class ResBlock1d(nn.Module):
  """1-D residual block: ReLU(BN(conv5(ReLU(BN(conv5_s(x))))) + BN(conv1_s(x))).

  Attributes:
    features: output channels.
    stride: time stride of the first conv and the shortcut.
  """
  features: int
  stride: int = 2

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """x: (B, T, C_in) -> (B, ceil(T / stride), features)."""
    norm = lambda name: nn.BatchNorm(use_running_average=not train,
                                     momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON,
                                     name=name)
    y = nn.Conv(self.features, (5,), strides=(self.stride,), padding="SAME",
                use_bias=False, name="conv_1")(x)
    y = nn.relu(norm("bn_1")(y))
    y = norm("bn_2")(nn.Conv(self.features, (5,), padding="SAME", use_bias=False,
                             name="conv_2")(y))
    s = norm("bn_3")(nn.Conv(self.features, (1,), strides=(self.stride,),
                             use_bias=False, name="conv_3")(x))
    return nn.relu(y + s)


class ContourTower(nn.Module):
  """Contour embedding tower (module docstring); attributes mirror config.model."""
  conv_channels: tuple[int, ...] = (32, 64, 64)
  attention_layers: int = 1
  attention_hidden: int = 64
  attention_heads: int = 4
  attention_mlp: int = 128
  dropout: float = 0.1
  embedding_dim: int = 64

  @classmethod
  def from_config(cls, m: ml_collections.ConfigDict) -> "ContourTower":
    """Builds the tower from config.model (configs/contour_rori.py)."""
    return cls(conv_channels=tuple(int(c) for c in m.conv_channels),
               attention_layers=int(m.attention_layers),
               attention_hidden=int(m.attention_hidden),
               attention_heads=int(m.attention_heads),
               attention_mlp=int(m.attention_mlp), dropout=float(m.dropout),
               embedding_dim=int(m.embedding_dim))

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """Embeds contours.

    Args:
      x: (B, C, T) float32 contour channels.
      train: batch statistics + dropout (True) or running statistics, no dropout.

    Returns:
      (B, embedding_dim) float32.

    Raises:
      ValueError: x is not 3-D.
    """
    if x.ndim != 3:
      raise ValueError(f"ContourTower expects (B, C, T) contours; got {x.shape}")
    h = jnp.transpose(x, (0, 2, 1)).astype(jnp.float32)  # (B, T, C)
    for i, f in enumerate(self.conv_channels):
      h = ResBlock1d(int(f), name=f"block_{i + 1}")(h, train=train)
    h = nn.Dense(self.attention_hidden, name="frame_projection")(h)
    pos = self.param("position_embedding", _INIT, (1, h.shape[1], self.attention_hidden))
    h = nn.LayerNorm(name="embedding_ln")(h + pos)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    for i in range(self.attention_layers):
      h = BertLayer(self.attention_hidden, self.attention_heads, self.attention_mlp,
                    self.dropout, name=f"bert_{i + 1}")(h, train=train)
    h = TimePooling("attention", name="time_pooling")(h)
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(self.embedding_dim, name="embedding")(h).astype(jnp.float32)
