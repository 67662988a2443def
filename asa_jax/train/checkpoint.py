"""Orbax checkpoints: 'latest' (resume) and 'best' (lowest validation loss).

Layout: <workdir>/checkpoints/latest/<step>/{state,meta} and
<workdir>/checkpoints/best/<step>/{state,meta}; each keeps one step. `state` is the
TrainState pytree (params, batch_stats, opt_state, step, rng); `meta` is JSON:
{"step", "epoch" (epoch to run next / in progress), "batch_in_epoch" (batches of that
epoch already trained), "best_val_loss", "bad_epochs" (patience counter), "stopped"
(early-stopped or finished), "val_loss"}.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(max_to_keep=1, create=True,
                                           enable_async_checkpointing=False),
      item_names=("state", "meta"))


class Checkpoints:
  """The 'latest' and 'best' checkpoint managers of one workdir."""

  def __init__(self, workdir: str):
    self.latest = _manager(os.path.join(workdir, "checkpoints", "latest"))
    self.best = _manager(os.path.join(workdir, "checkpoints", "best"))

  @staticmethod
  def _save(mngr: ocp.CheckpointManager, state: Any, meta: dict) -> None:
    step = int(meta["step"])
    if step in mngr.all_steps():  # Re-save (e.g. end of epoch after a step save).
      mngr.delete(step)
    mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                            meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()

  def save_latest(self, state: Any, meta: dict) -> None:
    """Saves the resume checkpoint (all processes must call)."""
    self._save(self.latest, state, meta)

  def save_best(self, state: Any, meta: dict) -> None:
    """Saves the best-validation checkpoint (all processes must call)."""
    self._save(self.best, state, meta)

  @staticmethod
  def _restore(mngr: ocp.CheckpointManager, target: Any
               ) -> tuple[Any, dict] | None:
    step = mngr.latest_step()
    if step is None:
      return None
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), target)
    out = mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    return out["state"], dict(out["meta"])

  def restore_latest(self, target: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the latest checkpoint, or None. `target` gives structure +
    shardings (arrays or jax.ShapeDtypeStruct with .sharding)."""
    return self._restore(self.latest, target)

  def restore_best(self, target: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the best checkpoint, or None."""
    return self._restore(self.best, target)

  def close(self) -> None:
    """Waits for pending saves and closes both Orbax managers."""
    self.latest.close()
    self.best.close()
