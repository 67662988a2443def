"""Direct and Delta: regression of the human score (paper 3.2.1, 3.2.2).

Direct scores the performance clip alone; Delta scores the difference reference -
performance of the clip features. One CNNSA tower + a 3-layer ReLU head. Loss: mean
squared error between predicted and human clip scores, both divided by
config.model.score_scale (100: the loss is in (score / 100)^2 units).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from asa_jax import losses as losses_lib
from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.regression import RegressionModel, ScoreHead
from asa_jax.systems import base


def build_head(config) -> ScoreHead:
  """ScoreHead from config.model.head_hidden and config.model.score_scale."""
  return ScoreHead(hidden=tuple(int(h) for h in config.model.head_hidden),
                   score_scale=float(config.model.score_scale))


@dataclasses.dataclass(frozen=True)
class RegressionSystem(base.System):
  """A clip-score regression system; `score_scale` divides scores in the loss."""
  score_scale: float = 100.0
  delta: bool = False

  def configure(self, config) -> "RegressionSystem":
    """score_scale = config.model.score_scale; a Delta-style system's reference is
    config.data.reference."""
    return dataclasses.replace(
        self, score_scale=float(config.model.score_scale),
        reference=str(config.data.reference) if self.delta else None)

  def build_model(self, config) -> RegressionModel:
    return RegressionModel(tower=CNNSATower.from_config(config.model),
                           head=build_head(config), delta=self.delta)

  def _err(self, pred, batch):
    return (pred - batch["target"]) / self.score_scale

  def loss(self, out, batch, mask):
    err = self._err(out, batch)
    return losses_lib.masked_mean(err * err, mask)

  def train_metrics(self, out, batch, mask):
    """mae (mean absolute error, score units), pred_mean (score units)."""
    total = jnp.maximum(jnp.sum(mask), 1.0)
    return {"mae": jnp.sum(jnp.abs(out - batch["target"]) * mask) / total,
            "pred_mean": jnp.sum(out * mask) / total}

  def eval_sums(self, out, batch, mask):
    err = out - batch["target"]
    return {"loss_sum": jnp.sum((err / self.score_scale) ** 2 * mask),
            "mae_sum": jnp.sum(jnp.abs(err) * mask)}


SYSTEMS = {
    "direct": RegressionSystem(name="direct", paper_name="Direct", group="Baseline",
                               reference=None, table_order=0, delta=False),
    "delta": RegressionSystem(name="delta", paper_name="Delta", group="Proposed",
                              reference="original", table_order=1, delta=True),
}
