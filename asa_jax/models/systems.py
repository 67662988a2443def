"""Every learned system of Table 2 from its config: `build_model(config)`.

  rori, racc   TripletModel (paper 3.2.3): returns (a, p, n) embeddings;
               clip score = cosine(performance embedding, anchor embedding).
  direct       RegressionModel(delta=False) (3.2.1): returns predicted scores.
  delta        RegressionModel(delta=True) (3.2.2): returns predicted scores.
  embdirect    EmbDirectModel (3.2.4): returns predicted scores.
Every model has `embed_performance(x, *, train=False)` and `score_clips(performance,
reference, *, train=False) -> (performance embedding, anchor embedding or (B, 0),
clip score)`, which asa_jax.evaluation.scoring uses.
"""

import ml_collections

from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.embdirect import EmbDirectModel
from asa_jax.models.regression import RegressionModel, ScoreHead
from asa_jax.models.triplet import TripletModel

TRIPLET_SYSTEMS = ("rori", "racc")
REGRESSION_SYSTEMS = ("direct", "delta", "embdirect")


def system_kind(config: ml_collections.ConfigDict) -> str:
  """'triplet' or 'regression' for config.system.

  Raises:
    ValueError: config.system is not a learned system.
  """
  system = config.system
  if system in TRIPLET_SYSTEMS:
    return "triplet"
  if system in REGRESSION_SYSTEMS:
    return "regression"
  raise ValueError(f"config.system={system!r} is not a learned system; use one of "
                   f"{TRIPLET_SYSTEMS + REGRESSION_SYSTEMS}")


def build_head(config: ml_collections.ConfigDict) -> ScoreHead:
  """ScoreHead from config.model.head_hidden and config.model.score_scale."""
  return ScoreHead(hidden=tuple(int(h) for h in config.model.head_hidden),
                   score_scale=float(config.model.score_scale))


def build_model(config: ml_collections.ConfigDict):
  """The Flax module of config.system (see module doc); towers from config.model.

  Raises:
    ValueError: config.system is not a learned system.
  """
  kind = system_kind(config)
  tower = lambda: CNNSATower.from_config(config.model)
  if kind == "triplet":
    return TripletModel(anchor_tower=tower(), performance_tower=tower())
  if config.system == "embdirect":
    return EmbDirectModel(performance_tower=tower(), head=build_head(config))
  return RegressionModel(tower=tower(), head=build_head(config),
                         delta=config.system == "delta")
