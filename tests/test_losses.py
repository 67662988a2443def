"""Triplet margin loss with cosine similarity (paper 3.2.3) against hand computations."""

import numpy as np
import pytest

from asa_jax import losses

# Three 2-D triplets whose cosines are easy by hand:
#  1: a=(1,0) p=(1,1) n=(0,1): cos(a,p)=1/sqrt2=0.70710678, cos(a,n)=0
#     loss = max(0, 0 - 0.70710678 + 1) = 0.29289322
#  2: a=(1,0) p=(2,0) n=(-1,0): cos(a,p)=1, cos(a,n)=-1 -> max(0, -1 - 1 + 1) = 0
#  3: a=(0,3) p=(0,-1) n=(0,5): cos(a,p)=-1, cos(a,n)=1 -> max(0, 1 + 1 + 1) = 3
A = np.array([[1., 0.], [1., 0.], [0., 3.]], np.float32)
P = np.array([[1., 1.], [2., 0.], [0., -1.]], np.float32)
N = np.array([[0., 1.], [-1., 0.], [0., 5.]], np.float32)


def test_cosine_similarity_by_hand():
  np.testing.assert_allclose(losses.cosine_similarity(A, P),
                             [0.70710678, 1.0, -1.0], atol=1e-6)
  np.testing.assert_allclose(losses.cosine_similarity(A, N), [0.0, -1.0, 1.0],
                             atol=1e-6)


def test_cosine_of_zero_vector_is_zero_not_nan():
  out = losses.cosine_similarity(np.zeros((1, 4), np.float32),
                                 np.ones((1, 4), np.float32))
  assert np.isfinite(out).all() and float(out[0]) == 0.0


def test_triplet_margin_loss_by_hand():
  # Mean of (0.29289322, 0, 3) = 1.09763107.
  loss = losses.triplet_margin_loss(A, P, N, margin=1.0)
  assert float(loss) == pytest.approx(1.09763107, abs=1e-6)
  np.testing.assert_allclose(losses.triplet_losses(A, P, N, 1.0),
                             [0.29289322, 0.0, 3.0], atol=1e-6)


def test_triplet_margin_loss_mask_and_margin():
  # Mask out triplet 3: (0.29289322 + 0) / 2 = 0.14644661.
  loss = losses.triplet_margin_loss(A, P, N, margin=1.0,
                                    mask=np.array([1., 1., 0.], np.float32))
  assert float(loss) == pytest.approx(0.14644661, abs=1e-6)
  # Margin 0.5: triplet 1 -> max(0, -0.70710678 + 0.5) = 0; triplet 3 -> 2.5.
  np.testing.assert_allclose(losses.triplet_losses(A, P, N, 0.5), [0.0, 0.0, 2.5],
                             atol=1e-6)
  # An all-zero mask gives 0, not nan.
  assert float(losses.triplet_margin_loss(A, P, N, 1.0, mask=np.zeros(3))) == 0.0


def test_loss_rewards_positive_closer_than_negative():
  """The standard sign: swapping positive and negative must raise the loss."""
  good = losses.triplet_margin_loss(A[:1], P[:1], N[:1], margin=1.0)
  bad = losses.triplet_margin_loss(A[:1], N[:1], P[:1], margin=1.0)
  assert float(good) < float(bad)
  assert float(bad) == pytest.approx(1.70710678, abs=1e-6)


def test_masked_mean_by_hand():
  values = np.array([3.0, 5.0, 100.0], np.float32)
  # One real row: its value (a mask sum of 1 is not padded up to anything).
  assert float(losses.masked_mean(values, np.array([1.0, 0.0, 0.0]))) == pytest.approx(3.0)
  assert float(losses.masked_mean(values, np.array([1.0, 1.0, 0.0]))) == pytest.approx(4.0)
  # Fractional weights: sum(w v) / sum(w) once the weights sum to at least 1.
  assert float(losses.masked_mean(values, np.array([0.5, 1.5, 0.0]))) == pytest.approx(
      (1.5 + 7.5) / 2.0)
  assert float(losses.masked_mean(values, np.zeros(3))) == 0.0  # All padding.
