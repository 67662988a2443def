"""CNNSA tower: residual 2-D CNN front-end + BERT self-attention back-end.

Paper 3.2 (Zhang et al. 2021), after the CNNSA of Won et al. [21, 22]
(minzwon/sota-music-tagging-models, `training/model.py` `CNNSA`, `training/modules.py`
`Res_2d`): a 7-block residual CNN with 3x3 filters extracts local timbre/pitch
information, collapses the 96 frequency rows to 1 and keeps 12 time steps; a [CLS]
token is prepended and the sequence goes through BERT encoder layers; the [CLS] output
is projected to the embedding.

Shapes for the paper configuration (input (B, 5, 96, 94)):
  block  1..3 stride (2, 2):  96x94 -> 48x47 -> 24x24 -> 12x12
  block  4..7 stride (2, 1):  12x12 -> 6x12 -> 3x12 -> 2x12 -> 1x12
so the attention sequence is 1 [CLS] + 12 frames (each frame ~ 0.25 s of the 3 s clip).
"""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from asa_jax.features import constants
from asa_jax.models import conv as conv_lib

# PyTorch BatchNorm2d defaults (momentum 0.1 -> Flax 0.9), as in Won et al.
_BN_MOMENTUM = 0.9
_BN_EPSILON = 1e-5
# BERT LayerNorm epsilon and initializer range (Devlin et al. 2019).
_LN_EPSILON = 1e-12
_BERT_INIT = nn.initializers.normal(stddev=0.02)


# nn.BatchNorm recomputed in the backward pass (`ResBlock.remat_norm`); the same
# parameters and batch_stats collection under the same names.
_RematBatchNorm = nn.remat(nn.BatchNorm)


def _dtype(name: str) -> Any:
  """Maps a config dtype name ('float32' | 'bfloat16' | 'float16') to a jnp dtype."""
  try:
    return {"float32": jnp.float32, "bfloat16": jnp.bfloat16,
            "float16": jnp.float16}[name]
  except KeyError:
    raise ValueError(f"model.dtype must be float32, bfloat16 or float16; got {name!r}")


def _conv_out(size: int, stride: int) -> int:
  """Output length of a 3-tap convolution with padding 1 and `stride` (PyTorch rule)."""
  return (size + 2 - 3) // stride + 1


def output_frames(strides: Sequence[Sequence[int]],
                  height: int = constants.N_BINS,
                  width: int = constants.N_FRAMES) -> tuple[int, int]:
  """Returns the (frequency rows, time frames) left after the residual blocks."""
  for sh, sw in strides:
    height, width = _conv_out(height, sh), _conv_out(width, sw)
  return height, width


class ResBlock(nn.Module):
  """Residual block `Res_2d` of Won et al.: paper 3.2 front-end.

  out = ReLU(BN(conv3x3(ReLU(BN(conv3x3_s(x))))) + BN(conv3x3_s(x)))
  The shortcut is always a strided 3x3 conv + BN (as in `Res_2d`). Convolutions use
  padding 1 on each side (PyTorch `padding=1`) and no bias (each is followed by BN).
  `folded=True` is the inference graph: each BN is folded into its convolution
  (`asa_jax.models.fold_bn`), which then has a bias, and there is no BN.
  `remat_norm=True` recomputes each BN in the backward pass from its input, the
  convolution's output, which the backward pass keeps anyway (`nn.remat`): its
  centred and normalised values are not held from the forward pass to the backward.
  The values and gradients are those of plain BN up to floating-point order; the
  training step's temporaries fall by a quarter (BUILD_NOTES, issue 20 part 4).

  Attributes:
    features: output channels.
    strides: (frequency, time) stride of the first conv and of the shortcut.
    dtype: computation dtype (parameters stay float32).
    conv: the convolution module (`conv.conv_module`; nn.Conv = XLA's own).
    folded: BatchNorm folded into the convolutions (inference only).
    remat_norm: BatchNorm recomputed in the backward pass (memory, not values).
  """
  features: int
  strides: tuple[int, int]
  dtype: Any = jnp.float32
  conv: conv_lib.ModuleDef = nn.Conv
  folded: bool = False
  remat_norm: bool = True

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """x: (B, H, W, C_in) -> (B, H', W', features), NHWC.

    Raises:
      ValueError: train=True on a folded block (it has no batch statistics).
    """
    conv = lambda s, name: self.conv(
        self.features, (3, 3), strides=s, padding=((1, 1), (1, 1)),
        use_bias=self.folded, dtype=self.dtype, param_dtype=jnp.float32, name=name)
    if self.folded:
      if train:
        raise ValueError("a folded ResBlock is for inference only (train=False)")
      y = conv((1, 1), "conv_2")(nn.relu(conv(self.strides, "conv_1")(x)))
      return nn.relu(y + conv(self.strides, "conv_3")(x))
    norm = lambda name: (_RematBatchNorm if self.remat_norm else nn.BatchNorm)(
        use_running_average=not train, momentum=_BN_MOMENTUM, epsilon=_BN_EPSILON,
        dtype=self.dtype, param_dtype=jnp.float32, name=name)
    y = nn.relu(norm("bn_1")(conv(self.strides, "conv_1")(x)))
    y = norm("bn_2")(conv((1, 1), "conv_2")(y))
    shortcut = norm("bn_3")(conv(self.strides, "conv_3")(x))
    return nn.relu(y + shortcut)


class BertLayer(nn.Module):
  """One post-LayerNorm BERT encoder layer (Devlin et al. 2019; paper 3.2 back-end).

  x -> LN(x + Dropout(MHSA(x))) -> LN(h + Dropout(W2 GELU(W1 h))); GELU is the exact
  (erf) form used by BERT; attention probabilities also get dropout.
  """
  hidden: int
  heads: int
  mlp: int
  dropout: float
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """x: (B, T, hidden) -> (B, T, hidden)."""
    det = not train
    h = nn.MultiHeadDotProductAttention(
        num_heads=self.heads, qkv_features=self.hidden, out_features=self.hidden,
        dropout_rate=self.dropout, deterministic=det, kernel_init=_BERT_INIT,
        dtype=self.dtype, param_dtype=jnp.float32, name="attention")(x, x)
    h = nn.Dropout(self.dropout, deterministic=det)(h)
    x = nn.LayerNorm(epsilon=_LN_EPSILON, dtype=self.dtype, name="ln_attention")(x + h)
    h = nn.Dense(self.mlp, kernel_init=_BERT_INIT, dtype=self.dtype, name="mlp_in")(x)
    h = nn.gelu(h, approximate=False)
    h = nn.Dense(self.hidden, kernel_init=_BERT_INIT, dtype=self.dtype, name="mlp_out")(h)
    h = nn.Dropout(self.dropout, deterministic=det)(h)
    return nn.LayerNorm(epsilon=_LN_EPSILON, dtype=self.dtype, name="ln_mlp")(x + h)


POOLINGS = ("bert", "attention", "mean", "max")


class TimePooling(nn.Module):
  """Pools (B, T, D) frames over time to (B, D): 'attention' | 'mean' | 'max'.

  'attention' is the feed-forward attention of Raffel & Ellis (2016), as used by the
  singer-embedding study in ../shared/papers: sigma = softmax_t(w^T tanh(x_t) + b),
  output = sum_t sigma_t x_t (a learned (D,) vector w and scalar b).
  """
  kind: str
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (B, T, D) -> (B, D).

    Raises:
      ValueError: unknown kind.
    """
    if self.kind == "mean":
      return jnp.mean(x, axis=1)
    if self.kind == "max":
      return jnp.max(x, axis=1)
    if self.kind != "attention":
      raise ValueError(f"TimePooling kind must be attention, mean or max; got "
                       f"{self.kind!r}")
    logits = nn.Dense(1, dtype=self.dtype, name="score")(jnp.tanh(x))[..., 0]  # (B, T)
    sigma = jax.nn.softmax(logits.astype(jnp.float32), axis=1).astype(x.dtype)
    return jnp.einsum("bt,btd->bd", sigma, x)


class FoldedNorm(nn.Module):
  """A BatchNorm at inference folded to a per-channel affine map: x * scale + bias.

  The input BN of the tower sits before a zero-padded convolution, so it cannot be
  folded into that convolution's weights exactly (the padding would see the shift);
  `asa_jax.models.fold_bn` gives its scale and bias.
  """
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    """x: (..., C) -> (..., C) in `dtype`."""
    c = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
    return x * scale.astype(self.dtype) + bias.astype(self.dtype)


class CNNSATower(nn.Module):
  """CNN + self-attention embedding tower (paper 3.2; Won et al. CNNSA).

  Attributes mirror config.model (see `from_config`). Parameters are float32; the
  computation runs in `dtype` (config.model.dtype); the embedding is returned as
  float32. `conv` is the convolution module of the residual blocks, chosen by
  config.model.conv_impl (`conv.conv_module`); it does not change the parameters.
  `pooling` is the back-end over time: 'bert' (the paper's: [CLS] + BERT
  self-attention layers + pooler) or a `TimePooling` ('attention', 'mean', 'max') of
  the projected frames, without the BERT layers. `folded=True` is the BN-free
  inference graph whose parameters `asa_jax.models.fold_bn.fold_tower` makes from the
  trained ones (same embeddings within float32 rounding; train=False only).
  `remat_norm` (config.model.remat_norm) is `ResBlock.remat_norm`.
  """
  conv_channels: tuple[int, ...] = (128, 128, 256, 256, 256, 256, 256)
  conv_strides: tuple[tuple[int, int], ...] = (
      (2, 2), (2, 2), (2, 2), (2, 1), (2, 1), (2, 1), (2, 1))
  attention_layers: int = 2
  attention_hidden: int = 256
  attention_heads: int = 8
  attention_mlp: int = 1024
  dropout: float = 0.1
  embedding_dim: int = 128
  dtype: Any = jnp.float32
  conv: conv_lib.ModuleDef = nn.Conv
  pooling: str = "bert"
  folded: bool = False
  remat_norm: bool = True

  @classmethod
  def from_config(cls, model_config: ml_collections.ConfigDict, **kwargs) -> "CNNSATower":
    """Builds a tower from `config.model` (configs/base.py); kwargs override fields.

    Raises:
      ValueError: unknown model.conv_impl, model.dtype or model.pooling.
    """
    m = model_config
    if m.pooling not in POOLINGS:
      raise ValueError(f"model.pooling must be one of {POOLINGS}, not {m.pooling!r}")
    fields = dict(
        conv_channels=tuple(int(c) for c in m.conv_channels),
        conv_strides=tuple((int(a), int(b)) for a, b in m.conv_strides),
        attention_layers=int(m.attention_layers),
        attention_hidden=int(m.attention_hidden),
        attention_heads=int(m.attention_heads),
        attention_mlp=int(m.attention_mlp),
        dropout=float(m.dropout),
        embedding_dim=int(m.embedding_dim),
        dtype=_dtype(m.dtype),
        conv=conv_lib.conv_module(m.conv_impl),
        remat_norm=bool(m.get("remat_norm", True)),
        pooling=str(m.pooling))
    fields.update(kwargs)
    return cls(**fields)

  @nn.compact
  def __call__(self, x: jnp.ndarray, *, train: bool) -> jnp.ndarray:
    """Embeds clips.

    Args:
      x: (B, C, 96, 94) float features (channels first, as the records store them).
      train: batch statistics + dropout (True) or running statistics, no dropout.

    Returns:
      (B, embedding_dim) float32 embeddings.

    Raises:
      ValueError: if the input is not (B, C, 96, 94), if conv_channels and
        conv_strides differ in length, or if the blocks do not reduce the frequency
        axis to exactly 1 row.
    """
    if x.ndim != 4 or x.shape[2:] != (constants.N_BINS, constants.N_FRAMES):
      raise ValueError(f"CNNSATower expects (B, C, {constants.N_BINS}, "
                       f"{constants.N_FRAMES}) input; got {x.shape}")
    if len(self.conv_channels) != len(self.conv_strides):
      raise ValueError("conv_channels and conv_strides must have the same length; got "
                       f"{len(self.conv_channels)} and {len(self.conv_strides)}")
    rows, frames = output_frames(self.conv_strides)
    if rows != 1:
      raise ValueError(f"conv_strides leave {rows} frequency rows; need exactly 1")

    x = jnp.transpose(x, (0, 2, 3, 1)).astype(self.dtype)  # NCHW -> NHWC.
    # Input BatchNorm over the feature channels (Won et al. `spec_bn`).
    if self.folded:
      x = FoldedNorm(dtype=self.dtype, name="input_bn")(x)
    else:
      x = nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM,
                       epsilon=_BN_EPSILON, dtype=self.dtype, param_dtype=jnp.float32,
                       name="input_bn")(x)
    for i, (features, strides) in enumerate(zip(self.conv_channels, self.conv_strides)):
      x = ResBlock(features, tuple(strides), dtype=self.dtype, conv=self.conv,
                   remat_norm=self.remat_norm,
                   folded=self.folded, name=f"block_{i + 1}")(x, train=train)
    assert x.shape[1:3] == (1, frames), x.shape
    x = x[:, 0]  # (B, frames, channels): squeeze the frequency axis.

    # Back-end: project to the attention width, then pool over time.
    batch = x.shape[0]
    x = nn.Dense(self.attention_hidden, dtype=self.dtype, name="frame_projection")(x)
    if self.pooling != "bert":
      h = TimePooling(self.pooling, dtype=self.dtype, name="time_pooling")(x)
      h = nn.Dropout(self.dropout, deterministic=not train)(h)
      h = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(h)
      return h.astype(jnp.float32)
    # BERT: prepend [CLS], add positions, self-attention layers, [CLS] pooler.
    cls = self.param("cls_token", _BERT_INIT, (1, 1, self.attention_hidden), jnp.float32)
    x = jnp.concatenate(
        [jnp.broadcast_to(cls.astype(self.dtype), (batch, 1, self.attention_hidden)), x],
        axis=1)
    pos = self.param("position_embedding", _BERT_INIT,
                     (1, frames + 1, self.attention_hidden), jnp.float32)
    x = x + pos.astype(self.dtype)
    x = nn.LayerNorm(epsilon=_LN_EPSILON, dtype=self.dtype, name="embedding_ln")(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    for i in range(self.attention_layers):
      x = BertLayer(self.attention_hidden, self.attention_heads, self.attention_mlp,
                    self.dropout, dtype=self.dtype, name=f"bert_{i + 1}")(x, train=train)
    # [CLS] output -> BERT pooler (dense + tanh) -> dropout -> embedding projection.
    h = jnp.tanh(nn.Dense(self.attention_hidden, dtype=self.dtype, name="pooler")(x[:, 0]))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    h = nn.Dense(self.embedding_dim, dtype=self.dtype, name="embedding")(h)
    return h.astype(jnp.float32)
