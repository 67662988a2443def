"""Seshadri & Lerch (2021): regression regularised by a weighted contrastive loss.

Seshadri & Lerch, "Improving music performance assessment with contrastive
learning" (ISMIR 2021), in ../shared/papers, section 3.2. The tower embeds the
performance clip (as Direct, paper 3.2.1 of Zhang et al.); the head regresses the
score. Ratings in [0, 1] (here score / 100) are binned into C classes
X = min(floor(rating * C), C - 1); for two clips i, j with embedding distance D
(Euclidean):

  L_C(i, j) = 1/2 Y D^2 + 1/2 (1 - Y) max(0, m - D)^2,  Y = [X_i == X_j],
  m = |X_i - X_j| * s                                     (their eq. 2-3)

averaged over every pair of clips in the batch (they sample random pairs per batch;
all pairs is deterministic and a superset). Training (config contrastive.stage):
  * 'joint': L = L_MSE + w L_C (their joint training);
  * 'encoder': L = L_C (step 1 of their two-step training);
  * 'head': step 2: the encoder of the workdir contrastive.encoder_workdir is
    loaded and frozen (running statistics, no gradient, zero updates) and only the
    head trains on L_MSE.
L_MSE is Direct's ((prediction - score) / score_scale)^2. C = 5 and w = 1 follow
the paper; s = 1 is our choice (the paper names s but its value is not in the text
we have). Clip score: the head's prediction.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.regression import RegressionModel
from asa_jax.systems import regression

STAGES = ("joint", "encoder", "head")


def weighted_contrastive_loss(e: jnp.ndarray, scores: jnp.ndarray, mask: jnp.ndarray,
                              *, classes: int, margin: float,
                              score_scale: float = 100.0) -> jnp.ndarray:
  """Mean weighted contrastive loss over all pairs i < j of real rows.

  Args:
    e: (B, D) embeddings.
    scores: (B,) ratings in score units (0..score_scale).
    mask: (B,) 1 = real row.
    classes: C, the number of rating bins.
    margin: s, the margin per class of distance.
    score_scale: ratings / score_scale lie in [0, 1].

  Returns:
    float32 scalar (0 when fewer than 2 real rows).
  """
  e = e.astype(jnp.float32)
  x = jnp.clip(jnp.floor(scores / score_scale * classes), 0, classes - 1)
  d2 = jnp.sum((e[:, None, :] - e[None, :, :]) ** 2, axis=-1)
  d = jnp.sqrt(d2 + 1e-12)  # Finite gradient at D = 0.
  same = (x[:, None] == x[None, :]).astype(jnp.float32)
  m = jnp.abs(x[:, None] - x[None, :]) * margin
  per = 0.5 * same * d2 + 0.5 * (1.0 - same) * jnp.maximum(0.0, m - d) ** 2
  b = e.shape[0]
  pairs = jnp.triu(jnp.ones((b, b), jnp.float32), k=1) * mask[:, None] * mask[None, :]
  return jnp.sum(per * pairs) / jnp.maximum(jnp.sum(pairs), 1.0)


class EmbeddingRegressionModel(RegressionModel):
  """RegressionModel (same parameters) returning (prediction, embedding).

  Attributes:
    frozen_tower: run the tower with running statistics and stop its gradient
      (the 'head' stage).
  """
  frozen_tower: bool = False

  def __call__(self, performance: jnp.ndarray, reference: jnp.ndarray, *,
               train: bool) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(B, C, 96, 94) clips -> ((B,) predicted scores, (B, D) embeddings)."""
    x = self.model_input(performance, reference)
    if self.frozen_tower:
      e = jax.lax.stop_gradient(self.tower(x, train=False))
    else:
      e = self.tower(x, train=train)
    return self.head(e), e


@dataclasses.dataclass(frozen=True)
class ContrastiveRegressionSystem(regression.RegressionSystem):
  """Seshadri & Lerch's system; see the module doc for the fields."""
  stage: str = "joint"
  weight: float = 1.0
  classes: int = 5
  contrastive_margin: float = 1.0

  def configure(self, config) -> "ContrastiveRegressionSystem":
    """Reads model.score_scale and contrastive.{stage, weight, classes, margin}.

    Raises:
      ValueError: unknown contrastive.stage or classes < 2.
    """
    c = config.contrastive
    if c.stage not in STAGES:
      raise ValueError(f"contrastive.stage must be one of {STAGES}, not {c.stage!r}")
    if int(c.classes) < 2:
      raise ValueError(f"contrastive.classes must be >= 2, got {c.classes}")
    return dataclasses.replace(
        self, score_scale=float(config.model.score_scale), stage=str(c.stage),
        weight=float(c.weight), classes=int(c.classes),
        contrastive_margin=float(c.margin))

  def build_model(self, config) -> EmbeddingRegressionModel:
    return EmbeddingRegressionModel(tower=CNNSATower.from_config(config.model),
                                    head=regression.build_head(config), delta=False,
                                    frozen_tower=self.stage == "head")

  def _contrastive(self, e, batch, mask):
    return weighted_contrastive_loss(e, batch["target"], mask, classes=self.classes,
                                     margin=self.contrastive_margin,
                                     score_scale=self.score_scale)

  def loss(self, out, batch, mask):
    pred, e = out
    mse = super().loss(pred, batch, mask)
    if self.stage == "encoder":
      return self._contrastive(e, batch, mask)
    if self.stage == "head":
      return mse
    return mse + self.weight * self._contrastive(e, batch, mask)

  def train_metrics(self, out, batch, mask):
    """Direct's mae and pred_mean, plus mse and contrastive (the two loss terms)."""
    pred, e = out
    return {**super().train_metrics(pred, batch, mask),
            "mse": super().loss(pred, batch, mask),
            "contrastive": self._contrastive(e, batch, mask)}

  def eval_sums(self, out, batch, mask):
    pred, e = out
    sums = super().eval_sums(pred, batch, mask)
    if self.stage != "head":
      # The contrastive term is a batch mean: weight it by the batch's rows.
      c = self._contrastive(e, batch, mask) * jnp.sum(mask)
      sums["loss_sum"] = (c if self.stage == "encoder"
                          else sums["loss_sum"] + self.weight * c)
    return sums

  def frozen_labels(self):
    """The 'head' stage trains the head only."""
    if self.stage != "head":
      return None
    return lambda params: {k: "frozen" if k == "tower" else "train" for k in params}

  def init_from(self, state: Any, config, workdir, *, restore):
    """'head' stage: the tower (params and statistics) of the 'encoder' run in
    contrastive.encoder_workdir.

    Raises:
      ValueError: no contrastive.encoder_workdir in the 'head' stage.
      FileNotFoundError: no checkpoint there.
    """
    del workdir
    if self.stage != "head":
      return state
    encoder_dir = config.contrastive.encoder_workdir
    if not encoder_dir:
      raise ValueError("contrastive.stage='head' needs contrastive.encoder_workdir "
                       "(a run of the same config with contrastive.stage='encoder')")
    encoder_config = config.copy_and_resolve_references()
    encoder_config.contrastive.stage = "encoder"
    _, variables = restore(encoder_config, encoder_dir)
    params = dict(state.params, tower=variables["params"]["tower"])
    stats = dict(state.batch_stats, tower=variables["batch_stats"]["tower"])
    return state.replace(params=params, batch_stats=stats)


SYSTEMS = {"contrastive_regression": ContrastiveRegressionSystem(
    name="contrastive_regression", paper_name="Weighted contrastive (Seshadri & Lerch)",
    group="Proposed", reference=None, table_order=6, delta=False)}
