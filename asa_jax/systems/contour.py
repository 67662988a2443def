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

  def configure(self, config):
    """The loss system's configure, then the config.contour fields."""
    return dataclasses.replace(super().configure(config),
                               **self._configure_contour(config))

  def _configure_contour(self, config) -> dict:
    c = config.contour
    return dict(window_frames=int(c.window_frames), active_prob=float(c.active_prob),
                min_label_gap=float(c.min_label_gap),
                stack_reference=bool(c.get("stack_reference", False)))

  def _with_reference(self, x: jnp.ndarray, ref: jnp.ndarray) -> jnp.ndarray:
    """x (B, 4, T) -> (B, 8, T) with the reference's channels stacked when
    contour.stack_reference (the performance tower sees the reference; time-
    proportional, unaligned); x unchanged otherwise."""
    return jnp.concatenate([x, ref], axis=1) if self.stack_reference else x

  def tower(self, config) -> ContourTower:
    """The contour tower from config.model."""
    return ContourTower.from_config(config.model)

  def init_inputs(self, x):
    del x
    z = jnp.zeros((1, CHANNELS * (2 if self.stack_reference else 1),
                   self.window_frames), jnp.float32)
    return tuple(z[:, None].repeat(self.negatives, axis=1) if k == "negatives" else z
                 for k in self.input_keys)

  def _degrade(self, batch: dict, key: jax.Array, train: bool) -> cd.Result:
    ids = None if train else batch.get("row_id")
    return cd.degrade_batch(key, _contour(batch), active_prob=self.active_prob,
                            row_ids=ids)[1]

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
    return base.DataSource(factory, selection_correlation_fn(self, model, pool))

  def score_pairs(self, model, variables, performance: jnp.ndarray,
                  reference: jnp.ndarray) -> jnp.ndarray:
    """Scores of performance windows against reference windows, both (B, T) cents
    (0 = unvoiced): cosine similarity (triplet / rank systems) or the predicted
    score 0..100 (Delta). float32 (B,)."""
    p = contour_channels(performance, performance > 0)
    r = contour_channels(reference, reference > 0)
    return self._score_inputs(model, variables, p, r)


def selection_correlation_fn(system, model, pool: contour_pool.Pool):
  """state -> {"pearson", "spearman", "n"} of the pool's selection rows (mean score
  over a pair's windows vs the mean jury grade); None without selection rows."""
  import scipy.stats  # pylint: disable=g-import-not-at-top
  sel = pool.selection
  if sel is None:
    return None
  score = jax.jit(lambda v, p, r: system.score_pairs(model, v, p, r))
  perf, ref = sel["sel_performance"], sel["sel_reference"]
  group, grade = sel["sel_group"], np.asarray(sel["sel_grade"], np.float64)

  def fn(state) -> dict:
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    s = np.concatenate([np.asarray(score(variables, perf[i:i + 256], ref[i:i + 256]))
                        for i in range(0, len(perf), 256)])
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
    x1 = contour_channels(r1.cents, r1.voiced)
    x2 = contour_channels(r2.cents, r2.voiced)
    mask = batch.get("mask", jnp.ones_like(r1.score))
    mask = mask * (jnp.abs(r1.score - r2.score) >= self.min_label_gap)
    ref = contour_channels(batch["cents"], batch["voiced"])
    x1, x2 = self._with_reference(x1, ref), self._with_reference(x2, ref)
    return {"anchor": self._with_reference(ref, ref),
            "positive": jnp.where(first, x1, x2), "negative": jnp.where(first, x2, x1),
            "label_positive": jnp.maximum(r1.score, r2.score),
            "label_negative": jnp.minimum(r1.score, r2.score),
            "mask": mask.astype(jnp.float32)}

  def _score_inputs(self, model, variables, p, r):
    p, r = self._with_reference(p, r), self._with_reference(r, r)
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
    return {"performance": contour_channels(r.cents, r.voiced),
            "reference": contour_channels(batch["cents"], batch["voiced"]),
            "target": r.score,
            "mask": batch.get("mask", jnp.ones_like(r.score)).astype(jnp.float32)}

  def _score_inputs(self, model, variables, p, r):
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
    xs = jnp.stack([contour_channels(r.cents, r.voiced) for r in rs], axis=1)
    order = jnp.argsort(-scores, axis=1)
    xs = jnp.take_along_axis(xs, order[:, :, None, None], axis=1)
    ranked = jnp.take_along_axis(scores, order, axis=1)
    mask = batch.get("mask", jnp.ones_like(ranked[:, 0]))
    mask = mask * (ranked[:, 0] - ranked[:, 1] >= self.min_label_gap)
    return {"anchor": contour_channels(batch["cents"], batch["voiced"]),
            "positive": xs[:, 0], "negatives": xs[:, 1:], "labels": ranked,
            "mask": mask.astype(jnp.float32)}

  def _score_inputs(self, model, variables, p, r):
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
