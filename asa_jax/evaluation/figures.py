"""The paper's Figure 6 (PCA of clip embeddings) and Figure 7 (channel ablation).

Figure 6 (paper 4.4): every 3 s test clip's performance-tower embedding of a triplet
system (Rori in the paper), projected on its first two principal components; one
colour per song; transparency by the performance's human score (higher score =
more opaque, i.e. darker), so that "higher scored performances tend to cluster".
Alpha maps the human score linearly from the lowest to the highest score among the
plotted clips onto [ALPHA_MIN, 1]. Clips without a human score are not drawn (their
count is in the title).

Figure 7 (paper 4.5): Pearson's r of the four channel sets (Spec, Spec+f0,
Spec+f0+chroma, all 5) as grouped bars: one group per song plus Mix, one bar per
channel set, with the bootstrap 95% CI as error bars. An undefined r has no bar
("n/a" is written at its place).

matplotlib Agg backend; PNGs are written atomically.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from asa_jax import ablations  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.evaluation import pearson as pearson_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.evaluation import plots  # pylint: disable=g-import-not-at-top,wrong-import-position

ALPHA_MIN = 0.12


def pca_project(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
  """Projects rows of x on their first k principal components (numpy SVD).

  Args:
    x: float (N, D) embeddings, N >= 1.
    k: number of components (<= D).

  Returns:
    (projection float64 (N, k), explained variance ratio float64 (k,)). Component
    signs are fixed so that the largest-magnitude loading of each is positive
    (deterministic output). Components beyond the rank are all zero.

  Raises:
    ValueError: x not 2-D, empty, or k > D.
  """
  x = np.asarray(x, np.float64)
  if x.ndim != 2 or x.shape[0] == 0:
    raise ValueError(f"x must be a non-empty (N, D) array, got shape {x.shape}")
  if k > x.shape[1]:
    raise ValueError(f"k={k} > D={x.shape[1]}")
  centred = x - x.mean(axis=0, keepdims=True)
  _, s, vt = np.linalg.svd(centred, full_matrices=False)
  comps = np.zeros((k, x.shape[1]))
  m = min(k, vt.shape[0])
  comps[:m] = vt[:m]
  for i in range(m):
    j = int(np.argmax(np.abs(comps[i])))
    if comps[i, j] < 0:
      comps[i] = -comps[i]
  var = s ** 2
  total = float(var.sum())
  ratio = np.zeros(k)
  if total > 0:
    ratio[:m] = var[:m] / total
  return centred @ comps.T, ratio


def score_alpha(human: np.ndarray) -> np.ndarray:
  """Alpha in [ALPHA_MIN, 1], linear in the human score (min -> ALPHA_MIN, max -> 1).

  All-equal scores give alpha 1. `human` float (N,) without nan.
  """
  human = np.asarray(human, np.float64)
  lo, hi = float(human.min()), float(human.max())
  if hi <= lo:
    return np.ones_like(human)
  return ALPHA_MIN + (1.0 - ALPHA_MIN) * (human - lo) / (hi - lo)


def plot_embeddings_pca(path: str | os.PathLike, embeddings: np.ndarray,
                        song_ids: Sequence[str], human: Sequence[float], *,
                        system: str = "", dpi: int = 120) -> np.ndarray:
  """Writes Figure 6 (paper 4.4) and returns the 2-D projection of the drawn clips.

  Args:
    path: output .png.
    embeddings: float (N, D) performance-tower clip embeddings.
    song_ids: N song ids (colour).
    human: N human scores of the clips' performances (nan = none: not drawn).
    system: system name for the title.
    dpi: resolution.

  Returns:
    float64 (M, 2): PCA projection of the M clips that have a human score (PCA is
    fitted on those M clips).

  Raises:
    ValueError: lengths differ, or no clip has a human score.
  """
  embeddings = np.asarray(embeddings, np.float64)
  human = np.asarray(human, np.float64).reshape(-1)
  song_ids = np.asarray([str(s) for s in song_ids])
  if not len(embeddings) == len(song_ids) == len(human):
    raise ValueError(f"{len(embeddings)} embeddings, {len(song_ids)} song ids, "
                     f"{len(human)} human scores")
  keep = np.isfinite(human)
  if not keep.any():
    raise ValueError("no clip has a human score: nothing to draw")
  proj, ratio = pca_project(embeddings[keep], 2)
  songs_kept, human_kept = song_ids[keep], human[keep]
  alpha = score_alpha(human_kept)
  songs = sorted(set(songs_kept.tolist()), key=pearson_lib.natural_key)
  cmap = plt.get_cmap("tab10" if len(songs) <= 10 else "tab20")
  fig, ax = plt.subplots(figsize=(6.0, 5.0))
  for i, song in enumerate(songs):
    sel = songs_kept == song
    colours = np.tile(np.asarray(cmap(i % cmap.N)), (int(sel.sum()), 1))
    colours[:, 3] = alpha[sel]
    ax.scatter(proj[sel, 0], proj[sel, 1], s=14, c=colours, edgecolors="none",
               label=song)
  dropped = int((~keep).sum())
  ax.set_title(f"{system + ': ' if system else ''}PCA of {int(keep.sum())} clip "
               "embeddings" + (f" ({dropped} unscored not drawn)" if dropped else ""),
               fontsize="medium")
  ax.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}% var.)")
  ax.set_ylabel(f"PC2 ({100 * ratio[1]:.1f}% var.)")
  leg = ax.legend(fontsize="small", loc="best", title="song (opaque = high score)",
                  title_fontsize="small")
  for handle in leg.legend_handles:
    handle.set_alpha(1.0)
  ax.grid(True, alpha=0.3)
  plots.save_png(fig, path, dpi)
  return proj


def plot_ablation(path: str | os.PathLike, correlations: Mapping[str, Mapping], *,
                  rows: Sequence[str] = ablations.FIGURE7_ROWS,
                  labels: Mapping[str, str] | None = None, dpi: int = 120) -> None:
  """Writes Figure 7 (paper 4.5): grouped bars of r per song and Mix, with CIs.

  Args:
    path: output .png.
    correlations: system -> `pearson.correlate(...)` result; the `rows` present in it
      are drawn (in `rows` order), others are ignored.
    rows: system names of the channel sets.
    labels: system -> bar label (default ablations.FIGURE7_LABELS, else the name).
    dpi: resolution.

  Raises:
    ValueError: none of `rows` is in `correlations`.
  """
  labels = {**ablations.FIGURE7_LABELS, **(labels or {})}
  present = [r for r in rows if r in correlations]
  if not present:
    raise ValueError(f"none of the ablation rows {list(rows)} was evaluated")
  songs = sorted({s for r in present for s in correlations[r]["per_song"]},
                 key=pearson_lib.natural_key)
  groups = [*songs, "Mix"]
  width = 0.8 / len(present)
  x = np.arange(len(groups))
  fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(groups) + 2), 4.2))
  cmap = plt.get_cmap("viridis")
  for i, row in enumerate(present):
    result = correlations[row]
    corrs = [result["per_song"].get(s) for s in songs] + [result[pearson_lib.MIX]]
    pos = x - 0.4 + width * (i + 0.5)
    colour = cmap(i / max(1, len(present) - 1) * 0.85)
    for xp, corr in zip(pos, corrs):
      if corr is None or corr.r is None:
        ax.text(xp, 0.0, "n/a", rotation=90, ha="center", va="bottom",
                fontsize="x-small")
        continue
      err = None
      if corr.ci is not None and corr.ci.low is not None:
        err = [[max(0.0, corr.r - corr.ci.low)], [max(0.0, corr.ci.high - corr.r)]]
      ax.bar(xp, corr.r, width, color=colour, yerr=err, capsize=2,
             error_kw={"elinewidth": 0.8})
    ax.bar(0, 0, 0, color=colour, label=labels.get(row, row))  # Legend entry.
  ax.axhline(0.0, color="black", linewidth=0.6)
  ax.set_xticks(x, groups)
  ax.set_ylim(-1.0, 1.0)
  ax.set_ylabel("Pearson's r with human score")
  ax.set_title("Input representation ablation (Rori; error bars: 95% bootstrap CI)",
               fontsize="medium")
  ax.legend(fontsize="small", loc="best", ncol=min(4, len(present)))
  ax.grid(True, axis="y", alpha=0.3)
  plots.save_png(fig, path, dpi)
