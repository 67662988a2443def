"""The contour systems' evaluation (issue 18): the degradation ranking through the
exact time map and through the DTW of real pairs, on a synthetic pool."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax import systems
from asa_jax.evaluation import contour_scores
from configs import contour as contour_configs
from input_pipeline import aligned_input
from input_pipeline import contour_pool
from tests import contour_worker

FRAMES = 320


def _oracle(system):
  """The system with a score that needs no training: minus the mean |pitch
  deviation| of the aligned input (what a perfect pitch-only tower would learn)."""

  class Oracle(type(system)):
    def score_inputs(self, model, variables, *arrays):
      x = aligned_input.aligned_channels(*arrays, timing=False)
      both = x[:, 2] * x[:, 3]
      return -(jnp.abs(x[:, 0]) * both).sum(1) / jnp.maximum(both.sum(1), 1.0)

  return Oracle(**{f.name: getattr(system, f.name) for f in dataclasses.fields(system)})


@pytest.fixture(scope="module")
def pool():
  b = contour_worker.synthetic_batch(6, FRAMES, seed=21)
  return contour_pool.Pool(**b, source=np.array(["synthetic"] * 6),
                           group=np.array([f"g{i}" for i in range(6)]),
                           split=np.array(["test"] * 6))


def test_degradation_ranking_reads_the_alignment_of_each_degradation(pool):
  c = contour_configs.get_config("contour_rori", "small", file="test")
  c.contour.window_frames = FRAMES
  system = _oracle(systems.get(c))
  exact = contour_scores.degradation_ranking(system, None, None, pool, versions=6)
  assert exact["sources"] == 6 and exact["versions"] == 6
  # Pitch errors are most of the label: the oracle ranks them well through the
  # exact time map, and still above chance through the DTW of real pairs.
  assert exact["mean_spearman_per_source"] > 0.5
  dtw = contour_scores.degradation_ranking(system, None, None, pool, versions=6,
                                           dtw=True)
  assert dtw["sources"] >= 5
  assert 0.2 < dtw["mean_spearman_per_source"] <= exact["mean_spearman_per_source"] + 0.2


def test_score_pair_is_the_median_over_references_and_nan_when_unusable():
  c = contour_configs.get_config("contour_rori", "small", file="test")
  system = _oracle(systems.get(c))
  scorer = contour_scores.pair_scorer(system, None, None)
  ref = np.concatenate([np.full(60, 6000.0), np.full(60, 6200.0), np.full(60, 6400.0)])
  sharp = np.where(np.arange(180) >= 60, ref + 50.0, ref)
  assert contour_scores.score_pair(scorer, ref, [ref], 640) > contour_scores.score_pair(
      scorer, sharp, [ref], 640)
  assert np.isnan(contour_scores.score_pair(scorer, np.zeros(200), [ref], 640))
