"""Orbax checkpoints: 'latest' (resume) and 'best' (lowest validation loss).

Layout: <workdir>/checkpoints/latest/save_<n>/{state,meta[,data]} and
<workdir>/checkpoints/best/save_<n>/{state,meta}. `data` (a save inside an epoch
only) is the Grain iterator state of the train loader, written by Grain's own Orbax
handler (`grain.checkpoint`, one `process_<i>-of-<n>.json` per process): a resume
continues the epoch at its next batch. `state` is the TrainState pytree
(params, batch_stats, opt_state, step, rng); `meta` is JSON: {"step" (training
step), "epoch" (epoch to run next / in progress), "batch_in_epoch" (batches of that
epoch already trained), "best_val_loss" (validation loss at the best epoch),
"best_selection" (best value of the selection metric, lower = better: the loss or
minus the correlation), "bad_epochs" (patience counter), "stopped"
(early-stopped or finished), "val_loss", "train_loss"}.

<n> is a save serial number, not the training step (that is meta["step"]): it only
increases, one per save of that kind, so every save writes a new directory and none
deletes one first. This makes the checkpoints survive a kill (kill -9, preemption) at
any instant: Orbax writes a save into `save_<n>.orbax-checkpoint-tmp`, commits it with
an atomic rename to `save_<n>`, and only then removes the older `save_<n-1>`
(max_to_keep=1). A restart therefore finds the old or the new checkpoint, never none.
(Naming directories by training step instead forces a delete-then-save whenever the
same step is saved again -- e.g. 'best' when a resumed run replays to the epoch end
where it saved 'best' before it was killed -- and a kill in between lost it.)
Restoring reads the newest committed `save_<n>`; leftover `*.orbax-checkpoint-tmp`
directories of a killed save are ignored, and removed before this process's first
save. Checkpoints written by older versions (directories named by the training step,
`<step>/`) are still read; the next save of that kind replaces them.
"""

import functools
import json
import os
from typing import Any

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from asa_jax.systems import build_model
from asa_jax.train import mesh as mesh_lib
from asa_jax.train.state import create_train_state

STEP_PREFIX = "save"  # Orbax step directories: save_<serial>.


def _name_format():
  """Writes save_<n>; reads save_<n> and the older layout's plain <step>."""
  write = ocp.step.standard_name_format(step_prefix=STEP_PREFIX)
  return ocp.step.composite_name_format(
      write, [write, ocp.step.standard_name_format()])


def _manager(directory: str) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(directory),
      options=ocp.CheckpointManagerOptions(
          max_to_keep=1, create=True, enable_async_checkpointing=False,
          step_name_format=_name_format()),
      item_names=("state", "meta", "data"))


class _IteratorState:
  """A Grain iterator's state captured earlier, in the shape Grain's Orbax handler
  saves (`get_state()` -> bytes): the loop records the state after each batch it
  draws, and saves the one of the last batch trained, not of the batches already
  prefetched."""

  def __init__(self, state: dict):
    self._state = state

  def get_state(self) -> bytes:
    return json.dumps(self._state, indent=1).encode()


class Checkpoints:
  """The 'latest' and 'best' checkpoint managers of one workdir.

  Each kind is saved under an increasing serial number (`save_<n>`), initialised
  from the newest committed one when this object is created: every process of a
  multi-process run creates it before the first save, so all agree on the numbers
  without reading the directory again. Opening a workdir only to restore (e.g.
  `restore_for_inference` while training runs) removes nothing: uncommitted dirs are
  cleaned up only before this object's first save.
  """

  def __init__(self, workdir: str):
    root = os.path.join(os.path.abspath(workdir), "checkpoints")
    self.latest = _manager(os.path.join(root, "latest"))
    self.best = _manager(os.path.join(root, "best"))
    self._serial = {"latest": self.latest.latest_step() or 0,
                    "best": self.best.latest_step() or 0}
    self._cleaned = False

  def _remove_uncommitted(self) -> None:
    """Removes `*.orbax-checkpoint-tmp` dirs left by a killed save (process 0; the
    other processes wait for it at the start of the Orbax save that follows)."""
    self._cleaned = True
    if jax.process_index() != 0:
      return
    for mngr in (self.latest, self.best):
      for tmp in ocp.path.step.all_temporary_paths(mngr.directory):
        logging.info("removing uncommitted checkpoint %s", tmp.get())
        tmp.get().rmtree(missing_ok=True)

  def _save(self, kind: str, state: Any, meta: dict,
            data_state: dict | None = None) -> None:
    if not self._cleaned:
      self._remove_uncommitted()
    mngr = getattr(self, kind)
    serial = self._serial[kind] + 1
    items = dict(state=ocp.args.StandardSave(state),
                 meta=ocp.args.JsonSave(dict(meta)))
    if data_state is not None:
      items["data"] = grain.checkpoint.CheckpointSave(_IteratorState(data_state))
    # A new directory every time: the previous save stays until this one is
    # committed (atomic rename), then max_to_keep=1 removes it.
    saved = mngr.save(serial, args=ocp.args.Composite(**items))
    if not saved:
      raise RuntimeError(f"Orbax skipped the save of {kind} checkpoint {serial} "
                         f"(step {meta['step']}) in {mngr.directory}")
    mngr.wait_until_finished()
    self._serial[kind] = serial

  def save_latest(self, state: Any, meta: dict,
                  data_state: dict | None = None) -> None:
    """Saves the resume checkpoint (all processes must call). Atomic: until it is
    committed, the previous 'latest' stays in place.

    Args:
      state: the TrainState.
      meta: JSON-serialisable loop state (module doc).
      data_state: inside an epoch, this process's train iterator state after the
        last batch trained (`grain.DatasetIterator.get_state()`); None at an epoch
        end.
    """
    self._save("latest", state, meta, data_state)

  def save_best(self, state: Any, meta: dict) -> None:
    """Saves the best-validation checkpoint (all processes must call). Atomic: until
    it is committed, the previous 'best' stays in place."""
    self._save("best", state, meta)

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
    """(state, meta) of the newest committed 'latest' checkpoint, or None. `target`
    gives structure + shardings (arrays or jax.ShapeDtypeStruct with .sharding);
    meta["step"] is the training step."""
    return self._restore(self.latest, target)

  def restore_data(self, iterator: grain.DatasetIterator) -> bool:
    """Sets `iterator` (the train loader's iterator of the checkpoint's epoch) to
    the state saved in the newest 'latest' checkpoint, through Grain's Orbax handler.

    Returns:
      False when that checkpoint holds no iterator state (an epoch-end save, or one
      written before iterator states were saved); True otherwise.
    """
    step = self.latest.latest_step()
    if step is None:
      return False
    path = _name_format().find_step(self.latest.directory, step).path
    if not (path / "data").exists():
      return False
    self.latest.restore(step, args=ocp.args.Composite(
        data=grain.checkpoint.CheckpointRestore(iterator)))
    return True

  def restore_best(self, target: Any) -> tuple[Any, dict] | None:
    """(state, meta) of the newest committed 'best' checkpoint, or None."""
    return self._restore(self.best, target)

  def close(self) -> None:
    """Waits for pending saves and closes both Orbax managers."""
    self.latest.close()
    self.best.close()


def restore_for_inference(config: ml_collections.ConfigDict, workdir: str
                          ) -> tuple[Any, dict]:
  """(model, {"params", "batch_stats"}) from the best checkpoint, else the latest.

  Works for every learned system (the model is asa_jax.systems.build_model(config));
  an EmbDirect checkpoint holds its frozen tower, so the Rori workdir is not read.

  Raises:
    FileNotFoundError: if the workdir has no checkpoint.
  """
  mesh = mesh_lib.make_mesh()
  model = build_model(config)
  abstract = jax.eval_shape(functools.partial(create_train_state, model, config),
                            np.int32(0))
  repl = mesh_lib.replicated(mesh)
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl),
                        abstract)
  ckpts = Checkpoints(os.path.abspath(workdir))
  try:
    restored = ckpts.restore_best(target) or ckpts.restore_latest(target)
  finally:
    ckpts.close()
  if restored is None:
    raise FileNotFoundError(f"no checkpoint under {workdir}/checkpoints")
  state, meta = restored
  logging.info("restored step %d from %s", meta["step"], workdir)
  return model, {"params": state.params, "batch_stats": state.batch_stats}
