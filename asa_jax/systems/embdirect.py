"""EmbDirect: a trained Rori's performance tower, frozen, + a score head (paper 3.2.4).

"we take the Rori model pre-trained in previous section and output the clip embedding"
(3.2.4). Before step 0, `EmbDirectSystem.init_from` puts the performance tower params
and BatchNorm statistics of the Rori checkpoint in config.embdirect.rori_workdir into
the fresh train state (`install_frozen_tower`); the Rori model is rebuilt from
config.embdirect.rori_config (a config spec "path/to/config.py[:variant words]", like
train.py's --config). The optimizer gives the tower zero updates (`frozen_labels`), and
the model stops its gradient. Loss and metrics: as Direct (MSE on clip scores).
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from absl import logging

from asa_jax import config_specs as specs
from asa_jax.models.cnnsa import CNNSATower
from asa_jax.models.embdirect import FROZEN_COLLECTION, EmbDirectModel
from asa_jax.systems import regression
from asa_jax.systems import triplet

Restore = Callable[[ml_collections.ConfigDict, str], tuple[Any, dict]]


def rori_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The Rori config named by config.embdirect.rori_config, checked against config.

  Raises:
    ValueError: not set, not a triplet system, or its tower (model fields other than
      dropout, or the number of input channels) differs from config's.
  """
  spec = config.embdirect.rori_config
  if not spec:
    raise ValueError("config.embdirect.rori_config is empty: name the Rori config, "
                     "e.g. 'configs/rori.py:demo'")
  r = specs.load_config(spec)
  if r.system not in triplet.SYSTEMS:
    raise ValueError(f"embdirect.rori_config {spec!r} is system {r.system!r}, "
                     "not a triplet system")
  mine = CNNSATower.from_config(config.model, dropout=0.0)
  theirs = CNNSATower.from_config(r.model, dropout=0.0)
  if mine != theirs or len(r.features.channels) != len(config.features.channels):
    raise ValueError(
        f"EmbDirect's tower does not match the Rori config {spec!r}: "
        f"{mine} / {len(config.features.channels)} channels vs "
        f"{theirs} / {len(r.features.channels)} channels; copy its model fields")
  return r


def load_rori_tower(config: ml_collections.ConfigDict, restore: Restore
                    ) -> tuple[Any, Any]:
  """(params, batch_stats) of the Rori performance tower (replicated jax arrays).

  Raises:
    ValueError: config.embdirect.rori_workdir empty, or a config mismatch
      (see `rori_config`).
    FileNotFoundError: the workdir or its checkpoint is missing.
  """
  workdir = config.embdirect.rori_workdir
  if not workdir:
    raise ValueError("config.embdirect.rori_workdir is empty: EmbDirect needs a "
                     "trained Rori workdir (--config.embdirect.rori_workdir=...)")
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise FileNotFoundError(
        f"embdirect.rori_workdir {workdir!r} has no checkpoints/ folder: train Rori "
        f"there first ({config.embdirect.rori_config})")
  r = rori_config(config)
  try:
    _, variables = restore(r, workdir)
  except FileNotFoundError as e:
    raise FileNotFoundError(f"EmbDirect: no Rori checkpoint in {workdir}: {e}") from e
  return (variables["params"]["performance_tower"],
          variables["batch_stats"]["performance_tower"])


def _check_same_shapes(name: str, got: Any, want: Any, workdir: str) -> None:
  shapes = lambda t: jax.tree.map(lambda x: (tuple(x.shape), str(x.dtype)), t)
  if jax.tree.structure(got) != jax.tree.structure(want) or shapes(got) != shapes(want):
    raise ValueError(f"the Rori performance tower {name} in {workdir} do not match "
                     "EmbDirect's tower shapes (check embdirect.rori_config)")


def install_frozen_tower(state: Any, config: ml_collections.ConfigDict,
                         restore: Restore, workdir: str | None = None) -> Any:
  """A copy of an EmbDirect TrainState whose `performance_tower` params and
  batch_stats are the trained Rori's (paper 3.2.4).

  Args:
    state: freshly initialised EmbDirect TrainState (replicated).
    config: the EmbDirect config (embdirect.rori_workdir, embdirect.rori_config).
    restore: (config, workdir) -> (model, variables) of a trained system
      (`asa_jax.train.checkpoint.restore_for_inference`).
    workdir: EmbDirect's workdir; if given, a warning is logged when its stats.json
      differs from the Rori workdir's (the tower would see differently normalised
      inputs than it was trained on).

  Raises:
    ValueError, FileNotFoundError: see `load_rori_tower`; shape mismatch.
  """
  params, batch_stats = load_rori_tower(config, restore)
  rori_dir = config.embdirect.rori_workdir
  _check_same_shapes("params", params, state.params[FROZEN_COLLECTION], rori_dir)
  _check_same_shapes("batch_stats", batch_stats, state.batch_stats[FROZEN_COLLECTION],
                     rori_dir)
  if workdir:
    mine = os.path.join(workdir, "stats.json")
    theirs = os.path.join(rori_dir, "stats.json")
    if os.path.exists(mine) and os.path.exists(theirs) and not filecmp.cmp(
        mine, theirs, shallow=False):
      logging.warning("EmbDirect stats.json differs from the Rori workdir's %s: the "
                      "frozen tower sees other normalisation than in training", theirs)
  new_params = dict(state.params)
  new_params[FROZEN_COLLECTION] = params
  new_stats = dict(state.batch_stats)
  new_stats[FROZEN_COLLECTION] = batch_stats
  logging.info("EmbDirect: frozen Rori performance tower from %s (%d parameters)",
               rori_dir, sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))
  return state.replace(params=new_params, batch_stats=new_stats)


def _frozen_labels(params: Any) -> dict:
  return {k: "frozen" if k == FROZEN_COLLECTION else "train" for k in params}


@dataclasses.dataclass(frozen=True)
class EmbDirectSystem(regression.RegressionSystem):
  """EmbDirect: Direct's loss on the frozen Rori tower's embedding."""

  def build_model(self, config) -> EmbDirectModel:
    return EmbDirectModel(performance_tower=CNNSATower.from_config(config.model),
                          head=regression.build_head(config))

  def frozen_labels(self):
    """The `performance_tower` subtree is "frozen" (optax.set_to_zero)."""
    return _frozen_labels

  def suite_overrides(self, root, suite):
    """The suite's Rori: trained in ROOT/rori with the suite's rori spec."""
    return [f"embdirect.rori_workdir={os.path.join(root, 'rori')}",
            f"embdirect.rori_config={suite.rori_spec}"]

  def init_from(self, state, config, workdir, *, restore):
    """Installs the trained Rori's performance tower (`install_frozen_tower`)."""
    return install_frozen_tower(state, config, restore, workdir)


SYSTEMS = {"embdirect": EmbDirectSystem(name="embdirect", paper_name="EmbDirect",
                                         group="Proposed", reference=None,
                                         table_order=4, delta=False)}
