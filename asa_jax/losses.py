"""Triplet margin loss with cosine similarity (paper 3.2.3)."""

import jax.numpy as jnp

# Guards the norms of all-zero embeddings (cosine of a zero vector is 0, not nan).
_EPS = 1e-8


def cosine_similarity(x: jnp.ndarray, y: jnp.ndarray) -> jnp.ndarray:
  """Row-wise cosine similarity x.y / (|x| |y|) (paper 3.2.3, D = -cosine).

  Args:
    x, y: (B, D) embeddings (any float dtype; computed in float32).

  Returns:
    (B,) float32 in [-1, 1]; 0 for a row where either vector is all zeros.
  """
  x = x.astype(jnp.float32)
  y = y.astype(jnp.float32)
  dot = jnp.sum(x * y, axis=-1)
  norms = jnp.linalg.norm(x, axis=-1) * jnp.linalg.norm(y, axis=-1)
  return dot / jnp.maximum(norms, _EPS)


def triplet_losses(a: jnp.ndarray, p: jnp.ndarray, n: jnp.ndarray,
                   margin: float) -> jnp.ndarray:
  """Per-triplet losses max(0, cos(a, n) - cos(a, p) + margin): (B,) float32."""
  return jnp.maximum(cosine_similarity(a, n) - cosine_similarity(a, p) + margin, 0.0)


def triplet_margin_loss(a: jnp.ndarray, p: jnp.ndarray, n: jnp.ndarray,
                        margin: float, mask: jnp.ndarray | None = None) -> jnp.ndarray:
  """Triplet margin loss with cosine similarity (paper 3.2.3, margin alpha, 3.4).

  L = mean_i max(0, cos(a_i, n_i) - cos(a_i, p_i) + margin), i.e. the loss is zero
  once the positive (good) clip is closer to the reference than the negative (poor)
  clip by at least `margin` in cosine similarity.

  Note on the paper's sign: section 3.2.3 writes L = max{D(a,n) - D(a,p) + alpha, 0}
  with D(x, y) = -cos(x, y). Taken literally that is max{cos(a,p) - cos(a,n) + alpha,
  0}, which is minimised by making the NEGATIVE close to the anchor, contradicting the
  stated objective ("good singings are closer to reference while poor singings are
  further away"). We use the standard triplet form L = max{D(a,p) - D(a,n) + alpha, 0}
  (as in PyTorch TripletMarginWithDistanceLoss), which is what the objective describes.

  Args:
    a, p, n: (B, D) anchor (reference), positive (good), negative (poor) embeddings.
    margin: alpha (paper 3.4: 1.0).
    mask: optional (B,) weights (1 = real triplet, 0 = padding); the result is the
      mask-weighted mean (0 when the mask sums to 0).

  Returns:
    Scalar float32 loss.
  """
  losses = triplet_losses(a, p, n, margin)
  if mask is None:
    return jnp.mean(losses)
  return masked_mean(losses, mask)


def masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
  """Mask-weighted mean of per-row values (B,) with weights mask (B,) (1 = real row,
  0 = padding); 0 when the mask sums to 0. Scalar float32."""
  mask = mask.astype(jnp.float32)
  return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)
