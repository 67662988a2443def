"""The alignment confidence's octave tolerance (issue 19, asa_jax/assess/confidence.py):
a passage sung an octave off is still the melody; another melody is not."""

import numpy as np
import pytest

from asa_jax.assess import confidence
from asa_jax.baselines import dtw_melody
from asa_jax.features import melody_alignment

HOP_S = 0.032
SCALE = np.array([0, 200, 400, 500, 700, 900, 1100, 1200])  # major scale, cents.


def _melody(seed: int, n_notes: int = 24, frames: int = 10) -> np.ndarray:
  """float64 (n_notes * frames,) cents: a stepwise tune on SCALE with a little
  per-frame noise (seeded)."""
  rng = np.random.default_rng(seed)
  steps = np.clip(np.cumsum(rng.choice([-2, -1, 1, 2], n_notes)), -3, 10) % len(SCALE)
  cents = np.repeat(SCALE[steps].astype(np.float64) - 900.0, frames)
  return cents + rng.normal(0.0, 10.0, cents.size)


def test_octave_distance():
  d = melody_alignment.octave_distance(np.array([0.0, 1200.0, -1250.0, 700.0, 600.0,
                                                 -2350.0]))
  np.testing.assert_allclose(d, [0.0, 0.0, 50.0, 500.0, 600.0, 50.0])


def test_dtw_cost_folds_octaves_only_when_asked():
  perf, ref = np.array([0.0, 1200.0, 1250.0]), np.zeros(3)
  # Diagonal path (weights 1 + 2 + 2 = 5): plain 0 + 2 x 600 (capped) + 2 x 600;
  # folded 0 + 0 + 2 x 50.
  plain, _ = dtw_melody.dtw_cost(perf, ref)
  folded, path = dtw_melody.dtw_cost(perf, ref, fold_octaves=True)
  assert plain == pytest.approx(2400.0 / 5)
  assert folded == pytest.approx(100.0 / 5)
  np.testing.assert_array_equal(path, [[0, 0], [1, 1], [2, 2]])


def test_a_passage_an_octave_down_is_the_same_melody():
  ref = _melody(0)
  sung = ref + np.random.default_rng(5).normal(0.0, 15.0, ref.size)
  sung[ref.size // 2:] -= 1200.0  # the second half out of range: an octave down.
  folded = confidence.costs(sung, ref, HOP_S, 0.0)
  plain = confidence.costs(sung, ref, HOP_S, 0.0, fold_octaves=False)
  ratio = lambda c: c.cost_cents / c.random_cost_cents
  assert ratio(folded) < 0.3
  assert ratio(plain) > 2 * ratio(folded)
  assert folded.match - folded.random_match > 0.3
  features = {"band_share": 1.0, "cost_ratio": ratio(folded),
              "match_gain": folded.match - folded.random_match}
  assert confidence.probability(features) >= confidence.THRESHOLD


def test_another_melody_stays_another_melody_with_octaves_folded():
  ref = _melody(0)
  other = _melody(1)
  c = confidence.costs(other, ref, HOP_S, 0.0)
  features = {"band_share": 1.0, "cost_ratio": c.cost_cents / c.random_cost_cents,
              "match_gain": c.match - c.random_match}
  assert features["cost_ratio"] > 0.6
  assert confidence.probability(features) < confidence.THRESHOLD
