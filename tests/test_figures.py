"""Tests for asa_jax.evaluation.figures: PCA (Figure 6) and ablation bars (Figure 7)."""

import numpy as np
import pytest

from asa_jax import ablations
from asa_jax.evaluation import bootstrap
from asa_jax.evaluation import figures
from asa_jax.evaluation import pearson

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
  data = path.read_bytes()
  return len(data) > 1000 and data[:8] == PNG_MAGIC


def _pixels(path):
  """The decoded PNG: float (H, W, 3) RGB in [0, 1]."""
  import matplotlib.image as mpimg  # pylint: disable=g-import-not-at-top
  assert _is_png(path)
  return mpimg.imread(str(path))[..., :3]


def _count_colour(pixels, rgba, tol=0.02):
  """Pixels within `tol` of an (opaque) colour."""
  return int(np.all(np.abs(pixels - np.asarray(rgba)[:3]) < tol, axis=-1).sum())


def test_pca_project_matches_numpy_eigendecomposition():
  rng = np.random.default_rng(0)
  # Anisotropic cloud: variances 25, 4, 1, ... along random orthogonal axes.
  q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
  x = (rng.normal(size=(200, 6)) * [5, 2, 1, 0.5, 0.2, 0.1]) @ q.T + 3.0
  proj, ratio = figures.pca_project(x, 2)
  centred = x - x.mean(0)
  evals, evecs = np.linalg.eigh(np.cov(centred, rowvar=False))
  order = np.argsort(evals)[::-1]
  expected = centred @ evecs[:, order[:2]]
  for k in range(2):  # Same axes up to sign.
    sign = np.sign(np.dot(proj[:, k], expected[:, k]))
    np.testing.assert_allclose(proj[:, k], sign * expected[:, k], atol=1e-8)
  np.testing.assert_allclose(ratio, evals[order[:2]] / evals.sum(), rtol=1e-8)
  assert proj.mean(0) == pytest.approx([0, 0], abs=1e-9)
  # Deterministic sign: largest loading positive, so a sign flip of x flips nothing.
  proj2, _ = figures.pca_project(-x, 2)
  np.testing.assert_allclose(np.abs(proj2), np.abs(proj), atol=1e-8)


def test_pca_project_rank_deficient_and_errors():
  x = np.array([[1.0, 2.0, 3.0]] * 4)  # One point repeated: rank 0.
  proj, ratio = figures.pca_project(x, 2)
  assert proj.shape == (4, 2) and np.all(proj == 0) and np.all(ratio == 0)
  with pytest.raises(ValueError, match="k=4"):
    figures.pca_project(x, 4)
  with pytest.raises(ValueError, match="non-empty"):
    figures.pca_project(np.zeros((0, 3)), 2)


def test_score_alpha_maps_min_to_faint_and_max_to_opaque():
  alpha = figures.score_alpha(np.array([20.0, 60.0, 100.0]))
  np.testing.assert_allclose(alpha, [figures.ALPHA_MIN,
                                     (1 + figures.ALPHA_MIN) / 2, 1.0])
  assert np.all(figures.score_alpha(np.array([5.0, 5.0])) == 1.0)


def test_figure6_png_from_fake_embeddings(tmp_path):
  rng = np.random.default_rng(1)
  songs = np.repeat(["song1", "song2", "song3"], 20)
  emb = rng.normal(size=(60, 8)) + np.repeat(np.eye(8)[:3] * 4, 20, axis=0)
  human = rng.uniform(0, 100, size=60)
  human[:5] = np.nan  # unscored clips are not drawn
  path = tmp_path / "figure6.png"
  proj = figures.plot_embeddings_pca(path, emb, songs, human, system="rori")
  pixels = _pixels(path)
  assert pixels.shape == (600, 720, 3)  # 6 x 5 in at 120 dpi.
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  tab10 = plt.get_cmap("tab10")
  for i in range(3):  # Each song's points (and legend marker) in its colour.
    assert _count_colour(pixels, tab10(i)) > 20, i
  assert _count_colour(pixels, tab10(3)) == 0  # No fourth song.
  assert proj.shape == (55, 2)
  np.testing.assert_allclose(proj, figures.pca_project(emb[5:], 2)[0])
  with pytest.raises(ValueError, match="no clip has a human score"):
    figures.plot_embeddings_pca(tmp_path / "x.png", emb[:3], songs[:3],
                                [np.nan] * 3)


def _corr(r, lo, hi, n=9):
  return pearson.Correlation(r, n, None, bootstrap.Interval(lo, hi, 100))


def test_figure7_png_with_cis_and_undefined_bars(tmp_path):
  rows = {}
  for i, name in enumerate(ablations.FIGURE7_ROWS):
    r = 0.2 + 0.15 * i
    rows[name] = {"per_song": {"song1": _corr(r, r - 0.2, r + 0.1),
                               "song2": _corr(-r, -r - 0.1, -r + 0.3)},
                  "mix": _corr(r / 2, r / 2 - 0.1, r / 2 + 0.1, 18)}
  rows["rori_spec"]["per_song"]["song2"] = pearson.Correlation(None, 2, "n=2 < 3")
  rows["unrelated"] = rows["rori"]
  path = tmp_path / "figure7.png"
  figures.plot_ablation(path, rows)
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  viridis = plt.get_cmap("viridis")
  n = len(ablations.FIGURE7_ROWS)
  pixels = _pixels(path)
  assert pixels.shape == (504, 720, 3)  # max(6, 1.1 x 3 groups + 2) x 4.2 in, 120 dpi.
  colours = [viridis(i / max(1, n - 1) * 0.85) for i in range(n)]
  bars = [_count_colour(pixels, c) for c in colours]
  assert all(b > 30 for b in bars), bars  # Every row has its bars.
  figures.plot_ablation(tmp_path / "two.png", {k: rows[k] for k in ("rori", "rori_spec")})
  two = _pixels(tmp_path / "two.png")
  drawn = [viridis(i * 0.85) for i in range(2)]  # Two rows: the two ends.
  assert all(_count_colour(two, c) > 30 for c in drawn)
  # The middle rows' colours of the full figure are absent.
  assert n == 4 and all(_count_colour(two, c) == 0 for c in colours[1:3])
  with pytest.raises(ValueError, match="none of the ablation rows"):
    figures.plot_ablation(tmp_path / "none.png", {"direct": rows["rori"]})
