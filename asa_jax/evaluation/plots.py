"""Scatter plot of predicted vs human scores (one colour per song, r in the title).

Uses matplotlib's Agg backend (no display needed); the PNG is written atomically.
"""

from __future__ import annotations

import io
import math
import os
from typing import Iterable, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position

from asa_jax import atomic
from asa_jax.evaluation import pearson as pearson_lib  # pylint: disable=g-import-not-at-top,wrong-import-position


def _fmt(corr) -> str:
  return "undefined" if corr.r is None else f"{corr.r:.3f}"


def plot_scatter(path: str | os.PathLike, scores: Iterable, correlations: Mapping,
                 *, system: str = "", dpi: int = 120,
                 ylabel: str = "predicted score") -> None:
  """Writes a PNG: x = human score, y = predicted score, one colour per song.

  Args:
    path: output .png path.
    scores: performance scores unpacking as (song_id, performance_id, predicted,
      human); those with human None are not drawn (they have no x).
    correlations: `pearson.correlate(...)` result of the same scores; the title
      shows the Mix r and n, the legend each song's r and n.
    system: system name for the title.
    dpi: resolution.
    ylabel: y axis label (cosine similarity for triplet systems, score units for
      regression systems, the measure for baselines).
  """
  by_song: dict[str, tuple[list[float], list[float]]] = {}
  for song_id, _, predicted, human in scores:
    if human is None or (isinstance(human, float) and math.isnan(human)):
      continue
    xs, ys = by_song.setdefault(str(song_id), ([], []))
    xs.append(float(human))
    ys.append(float(predicted))
  fig, ax = plt.subplots(figsize=(6.0, 4.5))
  try:
    cmap = plt.get_cmap("tab10" if len(by_song) <= 10 else "tab20")
    for i, song in enumerate(sorted(by_song, key=pearson_lib.natural_key)):
      xs, ys = by_song[song]
      corr = correlations["per_song"].get(song)
      label = song if corr is None else f"{song} (r={_fmt(corr)}, n={corr.n})"
      ax.scatter(xs, ys, s=24, color=cmap(i % cmap.N), label=label, alpha=0.85)
    mix = correlations[pearson_lib.MIX]
    ax.set_title(f"{system + ': ' if system else ''}Mix r={_fmt(mix)} (n={mix.n})")
    ax.set_xlabel("human score (mean of judges)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if by_song:
      ax.legend(fontsize="small", loc="best")
  except BaseException:
    plt.close(fig)
    raise
  save_png(fig, path, dpi)


def save_png(fig, path: str | os.PathLike, dpi: int) -> None:
  """Lays out, renders and closes a matplotlib figure; writes the PNG atomically."""
  try:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
  finally:
    plt.close(fig)
  atomic.write_bytes(path, buf.getvalue())
