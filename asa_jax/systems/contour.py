"""Contour systems: Rori, Delta and hinge rank on pitch contours (issue 18).

The existing losses (Rori's reference-anchored cosine triplet margin, paper 3.2.3;
Delta's regression, 3.2.2; Lee & Nam's hinge rank) on `ContourTower` embeddings of
10 ms pitch contours instead of CNNSA embeddings of spectrogram clips. The data is a
fixed pool of clean contours (`input_pipeline.contour_pool`, built once into the
workdir); every step degrades each clean window on the device inside the jitted step
(`augment`, `input_pipeline.contour_degrade`) with exact labels:

  contour_rori        anchor = the clean window; positive / negative = two
                      degradations of it, the higher label positive; rows whose
                      labels differ by less than contour.min_label_gap get mask 0;
  contour_delta       performance = one degradation, reference = the clean window,
                      target = its label (0..100);
  contour_hinge_rank  K + 1 degradations sorted by label: the best is the positive,
                      the others the K negatives; rows whose best two labels differ
                      by less than contour.min_label_gap get mask 0.

Model selection (train.selection_metric 'pearson') scores the pool's `selection`
rows: graded MAST performances of config.contour.selection_melodies against their
references, Pearson's r of the score with the mean jury grade.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from asa_jax import losses
from asa_jax.models.contour_tower import ContourTower
from asa_jax.models.regression import RegressionModel
from asa_jax.models.triplet import TripletModel
from asa_jax.systems import base
from asa_jax.systems.hinge_rank import HingeRankSystem, RankModel
from asa_jax.systems.regression import RegressionSystem, build_head
from asa_jax.systems.triplet import TripletSystem
from input_pipeline import aligned_input
from input_pipeline import contour_degrade as cd
from input_pipeline import contour_loader
from input_pipeline import contour_pool

POOL_FILE = "contour_pool.npz"


CHANNELS = 4


def contour_channels(cents: jnp.ndarray, voiced: jnp.ndarray) -> jnp.ndarray:
  """Model input of contours: (B, T) cents and voicing -> float32 (B, 4, T).

  Channel 0: pitch minus the contour's median voiced pitch, in octaves (1200 cents).
  Channels 1, 2: sin and cos of 2 pi (pitch - median) / 100 cents, the position
  inside the semitone relative to the singer's median (intonation is a few tens of
  cents: 0.03 octaves on channel 0, a third of a turn here). Channel 3: voicing 0/1.
  Channels 0-2 are 0 where unvoiced; all are transposition-invariant.
  """
  v = voiced > 0
  med = jnp.nanmedian(jnp.where(v, cents, jnp.nan), axis=1, keepdims=True)
  med = jnp.where(jnp.isfinite(med), med, 0.0)
  rel = jnp.where(v, cents - med, 0.0)
  phase = 2.0 * jnp.pi * rel / 100.0
  vf = v.astype(jnp.float32)
  return jnp.stack([rel / 1200.0, jnp.sin(phase) * vf, jnp.cos(phase) * vf, vf],
                   axis=1).astype(jnp.float32)


def _contour(batch: dict) -> cd.Contour:
  return cd.Contour(batch["cents"].astype(jnp.float32),
                    batch["voiced"].astype(jnp.float32),
                    batch["note"].astype(jnp.int32), batch["onset"].astype(jnp.int32))


@dataclasses.dataclass(frozen=True)
class _ContourHooks:
  """Data, inputs and augmentation shared by the contour systems (a mixin before
  the loss's System class, so its hooks win), with their config.contour fields."""
  window_frames: int = contour_pool.WINDOW_FRAMES
  active_prob: float = 0.4
  min_label_gap: float = 5.0
  stack_reference: bool = False
  aligned: bool = False
  align_jitter_frames: float = 0.0
  aligned_timing: bool = True
  max_rubato_seconds: float = 0.0

  def configure(self, config):
    """The loss system's configure, then the config.contour fields."""
    return dataclasses.replace(super().configure(config),
                               **self._configure_contour(config))

  def _configure_contour(self, config) -> dict:
    c = config.contour
    return dict(window_frames=int(c.window_frames), active_prob=float(c.active_prob),
                min_label_gap=float(c.min_label_gap),
                stack_reference=bool(c.get("stack_reference", False)),
                aligned=bool(c.get("aligned", False)),
                align_jitter_frames=float(c.get("align_jitter_frames", 0.0)),
                aligned_timing=bool(c.get("aligned_timing", True)),
                max_rubato_seconds=float(c.get("max_rubato_seconds", 0.0)))

  def in_channels(self) -> int:
    """Input channels of the towers for this system's input mode."""
    if self.aligned:
      return aligned_input.CHANNELS
    return CHANNELS * (2 if self.stack_reference else 1)

  def _performance_x(self, batch: dict, r: cd.Result) -> jnp.ndarray:
    """Tower input (B, C, T) of a degradation r of the batch's clean windows."""
    return self._input_x(*self.degraded_inputs(batch["cents"], r))

  def _input_x(self, *arrays) -> jnp.ndarray:
    """Performance tower input (B, C, T) of `pair_inputs` / `degraded_inputs`
    arrays: aligned channels, or the performance's (with the reference's stacked
    when contour.stack_reference)."""
    if self.aligned:
      return aligned_input.aligned_channels(*arrays, timing=self.aligned_timing)
    perf, ref = arrays
    x = contour_channels(perf, perf > 0)
    if self.stack_reference:
      x = jnp.concatenate([x, contour_channels(ref, ref > 0)], axis=1)
    return x

  def _anchor_x(self, ref_cents: jnp.ndarray) -> jnp.ndarray:
    """Tower input (B, C, T) of the clean reference itself (the anchor)."""
    if self.aligned:
      return aligned_input.aligned_channels(*aligned_input.self_aligned(ref_cents),
                                            timing=self.aligned_timing)
    ref = contour_channels(ref_cents, ref_cents > 0)
    return jnp.concatenate([ref, ref], axis=1) if self.stack_reference else ref

  def pair_inputs(self, performance: np.ndarray, reference: np.ndarray,
                  window: int) -> tuple[np.ndarray, ...]:
    """A real pair of 10 ms cents tracks -> the window arrays `score_inputs` takes:
    aligned (ref, perf, offset) by DTW when contour.aligned, else the time-
    proportional (perf, ref) windows (float32 (K, T) each).

    Raises:
      ValueError: a track without enough voiced frames.
    """
    if self.aligned:
      return aligned_input.real_pair_windows(performance, reference, window)
    return contour_pool.pair_windows(performance, reference, window)

  def degraded_inputs(self, clean_cents, r: cd.Result) -> tuple:
    """The `score_inputs` arrays of degradations r of clean windows (B, T): with
    the exact alignment of their time map when contour.aligned."""
    if self.aligned:
      return aligned_input.from_degradation(clean_cents, r.cents, r.time_map_frames)
    return r.cents, clean_cents

  def score_inputs(self, model, variables, *arrays) -> jnp.ndarray:
    """Scores of window arrays from `pair_inputs` / `degraded_inputs`: cosine
    similarity (triplet / rank systems) or the predicted score 0..100 (Delta).
    float32 (B,)."""
    ref = arrays[0] if self.aligned else arrays[1]
    return self._score_channels(model, variables, self._input_x(*arrays),
                                self._anchor_x(ref))

  def tower(self, config) -> ContourTower:
    """The contour tower from config.model."""
    return ContourTower.from_config(config.model)

  def init_inputs(self, x):
    del x
    z = jnp.zeros((1, self.in_channels(), self.window_frames), jnp.float32)
    return tuple(z[:, None].repeat(self.negatives, axis=1) if k == "negatives" else z
                 for k in self.input_keys)

  def _degrade(self, batch: dict, key: jax.Array, train: bool) -> cd.Result:
    ids = None if train else batch.get("row_id")
    r = cd.degrade_batch(key, _contour(batch), active_prob=self.active_prob,
                         row_ids=ids, entry_errors=not self.aligned,
                         max_rubato_seconds=self.max_rubato_seconds)[1]
    if self.aligned and self.align_jitter_frames > 0:
      # The aligner on real pairs is not exact: a smooth label-neutral error of
      # the time map the towers read the performance through.
      rows = jnp.arange(r.cents.shape[0]) if ids is None else ids.astype(jnp.int32)
      t = r.cents.shape[1]
      noise = jax.vmap(lambda i: cd.smooth_noise(
          jax.random.fold_in(jax.random.fold_in(key, 99), i), t, 30))(rows)
      r = r._replace(time_map_frames=r.time_map_frames
                     + self.align_jitter_frames * noise)
    return r

  def make_loader(self, records_dir, split, config, *, process_index, process_count):
    """A ContourLoader of the pool at `records_dir` (a .npz path)."""
    return contour_loader.ContourLoader(
        contour_pool.load_pool(records_dir), split,
        global_batch_size=int(config.train.global_batch_size), seed=int(config.seed),
        process_index=process_index, process_count=process_count)

  def prepare_data(self, config, workdir: str) -> base.DataSource:
    """Builds the pool into <workdir>/contour_pool.npz when config.contour.pool is
    empty and the file is missing (process 0; the others wait), then loads it."""
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
    path = config.contour.pool or os.path.join(workdir, POOL_FILE)
    if not os.path.exists(path) and jax.process_index() == 0:
      contour_pool.build_pool(config.contour.data_dir, path,
                              selection_melodies=tuple(config.contour.selection_melodies),
                              window_frames=self.window_frames)
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("asa_jax:contour_pool_built")
    pool = contour_pool.load_pool(path)

    def factory(split):
      return self.make_loader(path, split, config, process_index=jax.process_index(),
                              process_count=jax.process_count())

    model = self.build_model(config)
    # Real graded rows only when the selection reads them (a DTW per aligned pair).
    rows = (selection_rows(self, config, pool)
            if config.train.get("selection_metric", "loss") != "loss" else None)
    return base.DataSource(factory, selection_correlation_fn(self, model, rows))


def selection_rows(system, config, pool: contour_pool.Pool):
  """The model-selection rows: (window arrays for `score_inputs`, group (S,) pair
  index per window, grade (P,) mean jury grade per pair), or None.

  Time-proportional windows come ready in the pool (`pool.selection`); aligned
  windows are made here by DTW from the graded MAST pairs of
  config.contour.selection_melodies (each against its first reference), as the
  evaluation makes them (`asa_jax.evaluation.contour_scores`).
  """
  if not system.aligned:
    sel = pool.selection
    if sel is None:
      return None
    return ((sel["sel_performance"], sel["sel_reference"]), sel["sel_group"],
            np.asarray(sel["sel_grade"], np.float64))
  melodies = tuple(config.contour.selection_melodies)
  mast_dir = os.path.join(config.contour.data_dir, "mast")
  if not melodies or not os.path.isdir(mast_dir):
    return None
  parts, group, grade = [], [], []
  for p in contour_pool.mast_pairs(mast_dir, melodies):
    if not np.isfinite(p.grade):
      continue
    try:
      arrays = system.pair_inputs(p.performance, p.references[0], system.window_frames)
    except ValueError:
      continue
    parts.append(arrays)
    group += [len(grade)] * len(arrays[0])
    grade.append(p.grade)
  if not grade:
    return None
  arrays = tuple(np.concatenate([a[i] for a in parts]) for i in range(len(parts[0])))
  return arrays, np.asarray(group, np.int32), np.asarray(grade, np.float64)


def selection_correlation_fn(system, model, rows):
  """state -> {"pearson", "spearman", "n"} of the selection rows (`selection_rows`:
  mean score over a pair's windows vs the mean jury grade); None without rows."""
  import scipy.stats  # pylint: disable=g-import-not-at-top
  if rows is None:
    return None
  arrays, group, grade = rows
  score = jax.jit(lambda v, *a: system.score_inputs(model, v, *a))

  def fn(state) -> dict:
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    s = np.concatenate([np.asarray(score(variables, *(a[i:i + 256] for a in arrays)))
                        for i in range(0, len(arrays[0]), 256)])
    per = np.bincount(group, s, len(grade)) / np.maximum(np.bincount(group, None,
                                                                     len(grade)), 1)
    out = {"pearson": float("nan"), "spearman": float("nan"), "n": float(len(grade))}
    if np.ptp(per) > 0:
      out["pearson"] = float(scipy.stats.pearsonr(per, grade)[0])
      out["spearman"] = float(scipy.stats.spearmanr(per, grade)[0])
    return out

  return fn


@dataclasses.dataclass(frozen=True)
class ContourTripletSystem(_ContourHooks, TripletSystem):
  """Rori on contours (module docstring)."""
  negatives: int = 0

  def build_model(self, config) -> TripletModel:
    return TripletModel(anchor_tower=self.tower(config),
                        performance_tower=self.tower(config))

  def augment(self, batch, rng, *, train):
    k1, k2 = jax.random.split(rng)
    r1, r2 = self._degrade(batch, k1, train), self._degrade(batch, k2, train)
    first = (r1.score >= r2.score)[:, None, None]
    x1, x2 = self._performance_x(batch, r1), self._performance_x(batch, r2)
    mask = batch.get("mask", jnp.ones_like(r1.score))
    mask = mask * (jnp.abs(r1.score - r2.score) >= self.min_label_gap)
    return {"anchor": self._anchor_x(batch["cents"]),
            "positive": jnp.where(first, x1, x2), "negative": jnp.where(first, x2, x1),
            "label_positive": jnp.maximum(r1.score, r2.score),
            "label_negative": jnp.minimum(r1.score, r2.score),
            "mask": mask.astype(jnp.float32)}

  def _score_channels(self, model, variables, p, r):
    a, e, _ = model.apply(variables, r, p, p, train=False)
    return losses.cosine_similarity(a, e)


@dataclasses.dataclass(frozen=True)
class ContourDeltaSystem(_ContourHooks, RegressionSystem):
  """Delta on contours: input = reference - performance channels (module doc)."""
  negatives: int = 0

  def build_model(self, config) -> RegressionModel:
    return RegressionModel(tower=self.tower(config), head=build_head(config),
                           delta=self.delta)

  def augment(self, batch, rng, *, train):
    r = self._degrade(batch, rng, train)
    return {"performance": self._performance_x(batch, r),
            "reference": self._anchor_x(batch["cents"]),
            "target": r.score,
            "mask": batch.get("mask", jnp.ones_like(r.score)).astype(jnp.float32)}

  def _score_channels(self, model, variables, p, r):
    return model.apply(variables, p, r, train=False)


@dataclasses.dataclass(frozen=True)
class ContourHingeRankSystem(_ContourHooks, HingeRankSystem):
  """Lee & Nam's hinge rank on contours (module docstring)."""

  def build_model(self, config) -> RankModel:
    return RankModel(anchor_tower=self.tower(config), performance_tower=self.tower(config))

  def augment(self, batch, rng, *, train):
    keys = jax.random.split(rng, self.negatives + 1)
    rs = [self._degrade(batch, k, train) for k in keys]
    scores = jnp.stack([r.score for r in rs], axis=1)  # (B, K+1)
    xs = jnp.stack([self._performance_x(batch, r) for r in rs], axis=1)
    order = jnp.argsort(-scores, axis=1)
    xs = jnp.take_along_axis(xs, order[:, :, None, None], axis=1)
    ranked = jnp.take_along_axis(scores, order, axis=1)
    mask = batch.get("mask", jnp.ones_like(ranked[:, 0]))
    mask = mask * (ranked[:, 0] - ranked[:, 1] >= self.min_label_gap)
    return {"anchor": self._anchor_x(batch["cents"]),
            "positive": xs[:, 0], "negatives": xs[:, 1:], "labels": ranked,
            "mask": mask.astype(jnp.float32)}

  def _score_channels(self, model, variables, p, r):
    a, e, _ = model.apply(variables, r, p, p[:, None], train=False)
    return losses.cosine_similarity(a, e)


SYSTEMS = {
    "contour_rori": ContourTripletSystem(
        name="contour_rori", paper_name="Contour Rori", group="Contour",
        reference="original", score_label="predicted score (cosine similarity)",
        table_order=20, batch_kind="triplet", loader="ContourLoader",
        input_keys=("anchor", "positive", "negative")),
    "contour_delta": ContourDeltaSystem(
        name="contour_delta", paper_name="Contour Delta", group="Contour",
        reference="original", table_order=21, delta=True, loader="ContourLoader",
        input_keys=("performance", "reference")),
    "contour_hinge_rank": ContourHingeRankSystem(
        name="contour_hinge_rank", paper_name="Contour hinge rank", group="Contour",
        reference="original", score_label="predicted score (cosine similarity)",
        table_order=22, batch_kind="triplet", loader="ContourLoader",
        input_keys=("anchor", "positive", "negatives")),
}
