"""Training loop: epochs, validation, early stopping, checkpoints (paper 3.4).

`train_and_evaluate(config, workdir)` trains any learned system (asa_jax.systems: its
model, loss and loader; one jitted step, asa_jax.train.step) with Adam,
evaluates the validation loss after every epoch, keeps the best checkpoint by the
selection metric and stops after `config.train.patience` epochs without improvement
of it (paper 3.4: validation loss, patience 5, at most 200 epochs). With
`train.selection_metric` 'pearson' or 'spearman' the selection follows the
correlation of the validation performances' predicted scores with their labels
instead (logged next to the loss), since the validation triplet loss did not track the
test r (BUILD_NOTES.md). Running it again with the same workdir resumes where the last
checkpoint left off (same step, epoch and position inside the epoch, same dropout keys):
inside an epoch the train loader's Grain iterator state is restored from the
checkpoint, so no batch before that position is read again.
"""

import collections
import functools
import math
import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from asa_jax import config_specs
from asa_jax import host_memory
from asa_jax import systems
from asa_jax.systems import build_model
from asa_jax.evaluation import validation_calibration
from asa_jax.train import mesh as mesh_lib
from asa_jax.train.checkpoint import Checkpoints, restore_for_inference
from asa_jax.train.metrics import MetricWriter
from asa_jax.train.state import TrainState, create_train_state, make_optimizer
from asa_jax.train.step import make_steps


class BatchSource(Protocol):
  """What the loop needs from a loader (input_pipeline.loader.TripletLoader,
  ClipLoader, RankLoader or PairLoader)."""

  def epoch(self, epoch: int) -> Iterator[dict]:
    """Process-local batches: {"anchor","positive","negative"[, "mask"]} (triplet)
    or {"performance","reference","target"[, "mask"]} (regression). For the train
    split, a `grain.DatasetIterator`, whose `get_state()` / `set_state()` the loop
    checkpoints to resume inside an epoch."""

  def num_batches(self, epoch: int) -> int:
    """Number of batches `epoch(epoch)` yields."""


LoaderFactory = Callable[[str], BatchSource]
TRAIN_SPLIT = "train"
VALIDATION_SPLIT = "validation"


def _host(tree: Any) -> Any:
  """Replicated global arrays -> numpy (works across processes: reads a local copy)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)


def prepare_records(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Builds the feature records if needed and copies stats.json into the workdir.

  records_dir = config.data.records_dir or <workdir>/records. If config.data.manifest
  is set and records_dir/stats.json is missing (no or unfinished build), process 0
  runs input_pipeline.build.build_records (resumable) while the others wait.

  Returns:
    records_dir.

  Raises:
    FileNotFoundError: if records_dir/stats.json does not exist afterwards.
  """
  records_dir = config.data.records_dir or os.path.join(workdir, "records")
  stats = os.path.join(records_dir, "stats.json")
  if config.data.manifest and not os.path.exists(stats):
    if jax.process_index() == 0:
      from input_pipeline.build import build_records  # pylint: disable=g-import-not-at-top
      logging.info("building records from %s into %s", config.data.manifest, records_dir)
      report = build_records(config.data.manifest, records_dir, config)
      logging.info("%s", report.summary())
    if jax.process_count() > 1:
      multihost_utils.sync_global_devices("asa_jax:records_built")
  if not os.path.exists(stats):
    raise FileNotFoundError(
        f"{stats} not found: set config.data.manifest to build records, or "
        "config.data.records_dir to an existing records folder")
  if jax.process_index() == 0:
    shutil.copyfile(stats, os.path.join(workdir, "stats.json"))
  return records_dir


def default_loader_factory(records_dir: str, config: ml_collections.ConfigDict
                           ) -> LoaderFactory:
  """split -> this process's loader of the system (`System.make_loader`: a
  TripletLoader or ClipLoader of input_pipeline.loader)."""
  system = systems.get(config)

  def factory(split: str) -> BatchSource:
    try:
      return system.make_loader(records_dir, split, config,
                                process_index=jax.process_index(),
                                process_count=jax.process_count())
    except FileNotFoundError as e:
      if split == TRAIN_SPLIT:
        raise
      logging.warning("no %s data (%s): no validation loss, no early stopping, "
                      "no best checkpoint", split, e)
      return _EmptySource()
  return factory


class _EmptySource:
  """A split without data: zero batches."""

  def epoch(self, epoch: int) -> Iterator[dict]:
    del epoch
    return iter(())

  def num_batches(self, epoch: int) -> int:
    del epoch
    return 0


def _placed(iterator: Any, mesh, size: int = 2) -> Iterator[tuple[dict, dict]]:
  """(global batch, iterator state after that batch) pairs, `size` batches placed on
  the mesh ahead (`mesh.prefetch_to_mesh`): the state saved with a checkpoint is the
  one of the last batch trained, not of the batches already prefetched."""
  states = collections.deque()

  def drawn():
    for batch in iterator:
      states.append(iterator.get_state())
      yield batch

  for batch in mesh_lib.prefetch_to_mesh(drawn(), mesh, size):
    yield batch, states.popleft()


class _CompiledAhead:
  """A jitted step, compiled before its first call for each batch shape.

  Between the compilation and the call, the compiler's freed heap goes back to the
  OS (`host_memory.release`). When jit compiles inside the first call, that heap is
  still held while the step's own buffers are allocated. The paper tower's first step
  at batch 32 then peaked at 3.44 GiB of RSS, against 2.6 for the later steps
  (BUILD_NOTES, "Training memory under 2.5 GiB").
  """

  def __init__(self, fn):
    self._fn = fn
    self._compiled: dict = {}

  def __call__(self, state, batch: dict):
    key = tuple(sorted((k, v.shape, v.dtype) for k, v in batch.items()))
    compiled = self._compiled.get(key)
    if compiled is None:
      # jit caches the compilation: a second run in this process does not recompile.
      compiled = self._compiled[key] = self._fn.lower(state, batch).compile()
      host_memory.release()
    return compiled(state, batch)


def _pad_batch(batch: dict, rows: int) -> dict:
  """Pads a short process-local batch with zero rows and mask 0 (validation tails)."""
  keys = sorted(k for k in batch if k != "mask")
  n = batch[keys[0]].shape[0]
  mask = np.asarray(batch.get("mask", np.ones((n,), np.float32)), np.float32)
  out = {k: np.asarray(batch[k], np.float32) for k in keys}
  if n > rows:
    raise ValueError(f"batch has {n} rows; expected at most {rows} per process")
  if n < rows:
    pad = lambda x: np.concatenate([x, np.zeros((rows - n,) + x.shape[1:], x.dtype)])
    out = {k: pad(v) for k, v in out.items()}
    mask = pad(mask)
  out["mask"] = mask
  return out


_INIT_CACHE: dict = {}


def init_state(config: ml_collections.ConfigDict, mesh, *,
               keep_executable: bool = True) -> tuple[Any, TrainState]:
  """(model, replicated TrainState) initialised from config.seed under jit.

  The jitted initialiser is cached per (model, optimizer settings, input shape, mesh)
  so repeated runs in one process (resume, tests) compile it once. With
  keep_executable=False its compiled executable is dropped after the call, since a
  training process initialises once (the RSS this saves was 0.1 GiB in one
  measurement and nothing in another: BUILD_NOTES, "Resume tests"); the next call
  compiles the initialiser again, but not the train step.
  """
  model = build_model(config)
  key = (model, systems.get(config), config.train.optimizer,
         float(config.train.learning_rate), len(config.features.channels), mesh)
  if key not in _INIT_CACHE:
    # One optimizer per key: `clear_cache()` below also empties jax's tracing cache,
    # and a retraced initialiser that built a new one would return a state of
    # another pytree structure, so the train step would be traced and compiled
    # again in the next run in this process (BUILD_NOTES, "Resume tests").
    _INIT_CACHE[key] = jax.jit(
        functools.partial(create_train_state, model, config,
                          tx=make_optimizer(config)),
        out_shardings=mesh_lib.replicated(mesh))
  state = _INIT_CACHE[key](np.int32(config.seed))
  if not keep_executable:
    _INIT_CACHE[key].clear_cache()
  return model, state


def initial_meta() -> dict:
  """The training status a run starts from (saved beside every checkpoint); also
  what a tool writing a checkpoint of an untrained state (tests, benchmarks) saves."""
  return {"step": 0, "epoch": 0, "batch_in_epoch": 0, "best_val_loss": None,
          "best_selection": None, "bad_epochs": 0, "stopped": False,
          "val_loss": None, "train_loss": None}


SELECTION_METRICS = ("loss", "pearson", "spearman")


def validation_correlation_fn(config: ml_collections.ConfigDict, records_dir: str
                              ) -> Callable[[TrainState], dict]:
  """state -> {"pearson", "spearman", "n"} of the validation performances.

  Every validation performance is scored as the evaluation scores it
  (asa_jax.evaluation.scoring.score_performances: mean clip cosine for triplet
  systems, mean predicted score for regression systems) and its predicted scores are
  correlated with the labels over all validation performances pooled (scipy.stats
  pearsonr / spearmanr). nan where fewer than 3 labelled performances or constant
  scores.
  """
  import scipy.stats  # pylint: disable=g-import-not-at-top
  from asa_jax.evaluation import scoring  # pylint: disable=g-import-not-at-top
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  model = build_model(config)
  stats = records_lib.load_stats(records_dir)

  def fn(state: TrainState) -> dict:
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    scores = scoring.score_performances(model, variables, records_dir, stats, config,
                                        split=VALIDATION_SPLIT)
    pairs = np.array([(s.predicted, s.human) for s in scores
                      if s.human is not None and np.isfinite(s.human)], np.float64)
    out = {"pearson": math.nan, "spearman": math.nan, "n": float(len(pairs))}
    if len(pairs) >= 3 and np.ptp(pairs[:, 0]) > 0 and np.ptp(pairs[:, 1]) > 0:
      out["pearson"] = float(scipy.stats.pearsonr(pairs[:, 0], pairs[:, 1])[0])
      out["spearman"] = float(scipy.stats.spearmanr(pairs[:, 0], pairs[:, 1])[0])
    return out

  return fn


def evaluate(eval_fn, state: TrainState, loader: BatchSource, mesh,
             local_rows: int) -> dict:
  """Masked means over loader.epoch(0) (fixed pairing / order) of the eval step's sums.

  Returns {"loss", <each other "<name>_sum" as "<name>">, "count"}: triplet systems
  {"loss", "cos_ap", "cos_an", "count"}, regression {"loss", "mae", "count"};
  without validation rows the result is {"loss": nan, "count": 0.0}.
  """
  sums = None
  for batch in loader.epoch(0):
    out = eval_fn(state, mesh_lib.to_global(_pad_batch(batch, local_rows), mesh))
    sums = out if sums is None else jax.tree.map(jnp.add, sums, out)
  if sums is None:
    return {"loss": math.nan, "count": 0.0}
  s = _host(sums)
  count = float(s["count"])
  div = lambda v: float(v) / count if count else math.nan
  return {**{k[:-len("_sum")]: div(v) for k, v in s.items() if k.endswith("_sum")},
          "count": count}


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       loader_factory: LoaderFactory | None = None) -> dict:
  """Trains (or resumes training) config.system; paper 3.2.x losses, 3.4 schedule.

  A fresh run first calls the system's `init_from` hook (EmbDirect, 3.2.4: loads the
  frozen performance tower from config.embdirect.rori_workdir); a resumed run takes
  everything from its own checkpoint.

  Args:
    config: run config (configs/base.py fields).
    workdir: run directory: checkpoints/, metrics.jsonl, tensorboard/, stats.json,
      config.json (the run's config) and, after training on feature records,
      calibration.json (raw score -> 0..100 map fitted on the validation split;
      asa_jax/evaluation/validation_calibration.py).
    loader_factory: split name ('train' | 'validation') -> batch source with
      `.epoch(e)` and `.num_batches(e)` yielding process-local batches. Default:
      build/read records (`prepare_records`) and the system's loader
      (`System.make_loader`).

  Returns:
    {"step", "epoch", "train_loss", "val_loss", "best_val_loss", "stopped_early"}
    (losses None where not computed).

  Raises:
    ValueError: global batch not divisible by the device count, or an epoch with no
      training batches.
  """
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  selection = config.train.selection_metric
  if selection not in SELECTION_METRICS:
    raise ValueError(f"train.selection_metric must be one of {SELECTION_METRICS}, "
                     f"not {selection!r}")
  correlation_fn = None
  records_dir = None
  if jax.process_index() == 0:
    config_specs.save_workdir_config(config, workdir)
  source = None
  if loader_factory is None:
    source = systems.get(config).prepare_data(config, workdir)
  if source is not None:  # The system's own data (e.g. a contour pool).
    loader_factory = source.loader_factory
    if selection != "loss":
      if source.correlation_fn is None:
        raise ValueError(f"train.selection_metric {selection!r}: system "
                         f"{config.system!r} has no validation correlation")
      correlation_fn = source.correlation_fn
  elif loader_factory is None:
    records_dir = prepare_records(config, workdir)
    loader_factory = default_loader_factory(records_dir, config)
    if selection != "loss":
      correlation_fn = validation_correlation_fn(config, records_dir)
  elif selection != "loss":
    raise ValueError(f"train.selection_metric {selection!r} scores the validation "
                     "records; it cannot be used with a custom loader_factory")
  mesh = mesh_lib.make_mesh()
  local_rows = mesh_lib.local_batch_size(config.train.global_batch_size)
  logging.info("process %d/%d, %d local / %d global devices, local batch %d",
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count(), local_rows)

  train_loader = loader_factory(TRAIN_SPLIT)
  val_loader = loader_factory(VALIDATION_SPLIT)
  _, state = init_state(config, mesh, keep_executable=False)
  host_memory.release()  # The initialiser's compilation.
  ckpts = Checkpoints(workdir)
  meta = initial_meta()
  restored = ckpts.restore_latest(state)
  if restored is not None:
    state, meta = restored
    logging.info("resumed from step %d (epoch %d, batch %d)", meta["step"],
                 meta["epoch"], meta["batch_in_epoch"])
  else:
    # A system may start from another trained one (EmbDirect: Rori's tower).
    try:
      state = systems.get(config).init_from(state, config, workdir,
                                            restore=restore_for_inference)
    except Exception:
      ckpts.close()
      raise

  def result() -> dict:
    if records_dir is not None:  # Feature records: fit the score calibration.
      validation_calibration.calibrate_workdir(config, workdir, records_dir,
                                               step=meta["step"])
    return {"step": meta["step"], "epoch": meta["epoch"],
            "train_loss": meta["train_loss"], "val_loss": meta["val_loss"],
            "best_val_loss": meta["best_val_loss"], "stopped_early": meta["stopped"]}

  if meta["stopped"]:
    logging.info("run in %s already early-stopped at step %d", workdir, meta["step"])
    ckpts.close()
    return result()

  repl = mesh_lib.replicated(mesh)
  bshard = mesh_lib.batch_sharding(mesh)
  train_fn, eval_fn = make_steps(config, repl, bshard, repl)
  train_fn = _CompiledAhead(train_fn)
  writer = MetricWriter(workdir)
  max_steps = int(config.train.max_steps)
  ckpt_every = int(config.train.checkpoint_every_steps)
  log_every = max(1, int(config.train.log_every_steps))
  patience = int(config.train.patience)
  show_bar = bool(config.train.progress_bar) and jax.process_index() == 0

  step = int(meta["step"])
  pending: list[tuple[int, dict]] = []

  def flush(keep_last: bool) -> None:
    """Fetches and writes queued step metrics (all but the newest if keep_last)."""
    nonlocal pending
    todo, pending = (pending[:-1], pending[-1:]) if keep_last else (pending, [])
    if not todo:
      return
    values = _host([m for _, m in todo])
    for (s, _), v in zip(todo, values):
      writer.write(s, v, echo=not show_bar and s == todo[-1][0])
    meta["train_loss"] = float(values[-1]["loss"])
    if bar is not None:
      bar.set_postfix(loss=f"{meta['train_loss']:.4f}", step=todo[-1][0])

  bar = None
  for epoch in range(int(meta["epoch"]), int(config.train.max_epochs)):
    if max_steps and step >= max_steps:
      break
    skip = int(meta["batch_in_epoch"]) if epoch == meta["epoch"] else 0
    n_batches = train_loader.num_batches(epoch)
    if n_batches <= 0:
      raise ValueError(f"epoch {epoch}: the train split yields no batches (global "
                       f"batch {config.train.global_batch_size})")
    if show_bar:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      bar = tqdm(total=n_batches, initial=skip, desc=f"epoch {epoch}", leave=False)
    done = skip
    batches = train_loader.epoch(epoch)
    data_state = None
    if skip and not ckpts.restore_data(batches):
      # A checkpoint from before iterator states were saved: read up to the spot.
      logging.warning("checkpoint without loader state: reading %d batches to "
                      "resume epoch %d", skip, epoch)
      for _ in range(skip):
        next(batches)
    # The next batches go to the devices while the current step runs.
    for i, (batch, data_state) in enumerate(_placed(batches, mesh), start=skip):
      state, metrics = train_fn(state, batch)
      step += 1
      done = i + 1
      pending.append((step, metrics))
      if len(pending) > log_every:
        flush(keep_last=True)
      if bar is not None:
        bar.update(1)
      if max_steps and step >= max_steps:
        break
      if ckpt_every and step % ckpt_every == 0 and done < n_batches:
        flush(keep_last=False)
        meta.update(step=step, epoch=epoch, batch_in_epoch=done)
        ckpts.save_latest(state, meta, data_state)
    flush(keep_last=False)
    if bar is not None:
      bar.close()
      bar = None
    if done < n_batches:  # max_steps reached inside the epoch.
      meta.update(step=step, epoch=epoch, batch_in_epoch=done)
      ckpts.save_latest(state, meta, data_state)
      break

    val = evaluate(eval_fn, state, val_loader, mesh, local_rows)
    if correlation_fn is not None:
      val.update(correlation_fn(state))
    writer.write(step, {**val, "epoch": epoch}, prefix="validation", echo=True)
    meta.update(step=step, epoch=epoch + 1, batch_in_epoch=0,
                val_loss=None if math.isnan(val["loss"]) else val["loss"])
    # Lower is better: the loss, or minus the correlation.
    value = val["loss"] if selection == "loss" else -val[selection]
    if not math.isnan(value):
      best = meta.get("best_selection")
      if best is None and selection == "loss":  # Checkpoints from before the field.
        best = meta["best_val_loss"]
      if best is None or value < best:
        meta.update(best_selection=value, best_val_loss=val["loss"], bad_epochs=0)
        ckpts.save_best(state, meta)
      else:
        meta["bad_epochs"] += 1
    elif correlation_fn is not None:  # Undefined correlation: no improvement.
      meta["bad_epochs"] += 1
    if meta["bad_epochs"] >= patience and not meta["stopped"]:
      meta["stopped"] = True
      logging.info("early stopping at epoch %d: no improvement of the validation %s "
                   "for %d epochs", epoch, selection, meta["bad_epochs"])
    ckpts.save_latest(state, meta)
    writer.flush()
    # The first validation compiled its steps: that heap is not kept under the next
    # epoch's train steps.
    host_memory.release()
    if meta["stopped"]:
      break
  writer.close()
  ckpts.close()
  return result()
