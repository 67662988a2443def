"""Rori and Racc: triplet networks with a cosine triplet-margin loss (paper 3.2.3).

Anchor = the reference clip (Rori: the original singer's vocal; Racc: the
accompaniment) through its own tower; positive / negative = the better / worse
performance clip through one shared tower. Loss: mean over triplets of
max(0, cos(a, n) - cos(a, p) + alpha) (`asa_jax.losses`). Clip score = cos(p, a).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from asa_jax import losses
from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.triplet import TripletModel
from asa_jax.systems import base


@dataclasses.dataclass(frozen=True)
class TripletSystem(base.MarginSystem):
  """A triplet system; `margin` is alpha (paper 3.4: 1.0)."""

  def build_model(self, config) -> TripletModel:
    tower = lambda: CNNSATower.from_config(config.model)
    return TripletModel(anchor_tower=tower(), performance_tower=tower())

  def loss(self, out, batch, mask):
    a, p, n = out
    return losses.triplet_margin_loss(a, p, n, self.margin, mask)

  def train_metrics(self, out, batch, mask):
    """active_fraction (share of triplets with loss > 0), mean cos_ap and cos_an."""
    a, p, n = out
    total = jnp.maximum(jnp.sum(mask), 1.0)
    per = losses.triplet_losses(a, p, n, self.margin)
    return {"active_fraction": jnp.sum((per > 0) * mask) / total,
            "cos_ap": jnp.sum(losses.cosine_similarity(a, p) * mask) / total,
            "cos_an": jnp.sum(losses.cosine_similarity(a, n) * mask) / total}

  def eval_sums(self, out, batch, mask):
    a, p, n = out
    return {"loss_sum": jnp.sum(losses.triplet_losses(a, p, n, self.margin) * mask),
            "cos_ap_sum": jnp.sum(losses.cosine_similarity(a, p) * mask),
            "cos_an_sum": jnp.sum(losses.cosine_similarity(a, n) * mask)}


def _triplet(name: str, paper_name: str, reference: str, order: int) -> TripletSystem:
  return TripletSystem(name=name, paper_name=paper_name, group="Proposed",
                       reference=reference,
                       score_label="predicted score (cosine similarity)",
                       table_order=order, batch_kind="triplet", loader="TripletLoader",
                       input_keys=("anchor", "positive", "negative"))


SYSTEMS = {"rori": _triplet("rori", "Rori", "original", 2),
           "racc": _triplet("racc", "Racc", "accompaniment", 3)}
