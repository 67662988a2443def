"""The `System` interface: what the loop, state, steps and evaluation need from a
learned system, and nothing that names one.

A system is a frozen dataclass. Each system module registers one instance per system
name with its table metadata; `asa_jax.systems.get(config)` returns that instance
`configure`d with the config's hyperparameters (hashable, so jitted steps are cached
per system). It provides:
  * its model (`build_model`) and the dummy inputs of `init`;
  * `loss` / `train_metrics` / `eval_sums` on the model's output for a batch;
  * its loader (triplets or scored clips) for a records split;
  * optimizer labels of frozen parameters, and an `init_from` hook that fills a fresh
    train state from elsewhere before training (EmbDirect loads Rori's tower);
  * its table metadata (paper name, Table 2 group, reference used, score axis);
  * `augment`, the batch the model sees made on the device inside the jitted steps
    (identity by default; the contour systems degrade clean contours there), and
    `prepare_data`, a data source of its own instead of feature records (None by
    default).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp


class DataSource(NamedTuple):
  """A system's own data (`System.prepare_data`) instead of feature records.

  Attributes:
    loader_factory: split name ('train' | 'validation') -> the process's batch
      source (`asa_jax.train.loop.BatchSource`).
    correlation_fn: train state -> {"pearson", "spearman", "n"} on real validation
      rows (for train.selection_metric 'pearson' / 'spearman'), or None.
  """
  loader_factory: Callable[[str], Any]
  correlation_fn: Callable[[Any], dict] | None = None


@dataclasses.dataclass(frozen=True)
class System:
  """Base of every learned system; subclasses override the hooks.

  Attributes:
    name: config.system.
    paper_name: Table 2 "Configuration" label (e.g. "Rori").
    group: Table 2 row group ("Baseline" | "Proposed").
    reference: "original" | "accompaniment" (config.data.reference) or None when the
      system scores a performance without a reference.
    score_label: axis label of its performance scores (plots).
    table_order: position among the learned systems in Table 2 (paper order).
    batch_kind: "triplet" (anchor/positive/negative), "clips" (scored clips) or
      "pairs" (clip pairs with a same-class label).
    input_keys: batch keys of the model's positional inputs, in order.
    loader: the input_pipeline.loader class that makes its batches.
  """
  name: str
  paper_name: str = ""
  group: str = "Proposed"
  reference: str | None = "original"
  score_label: str = "predicted score (0..100)"
  table_order: int = 99
  batch_kind: str = "clips"
  input_keys: tuple[str, ...] = ("performance", "reference")
  loader: str = "ClipLoader"

  def configure(self, config) -> "System":
    """This system with the hyperparameters of `config` (dataclasses.replace)."""
    del config
    return self

  def build_model(self, config) -> Any:
    """The Flax module (towers from config.model)."""
    raise NotImplementedError

  def model_inputs(self, batch: dict) -> tuple:
    """The model's positional inputs taken from a batch (float32 (B, C, 96, 94))."""
    return tuple(batch[k] for k in self.input_keys)

  def init_inputs(self, x: jnp.ndarray) -> tuple:
    """Dummy inputs for `model.init`, given one zero clip batch x (1, C, 96, 94)."""
    return (x,) * len(self.input_keys)

  def loss(self, out: Any, batch: dict, mask: jnp.ndarray) -> jnp.ndarray:
    """Scalar float32 training loss of the model output (mask-weighted mean)."""
    raise NotImplementedError

  def train_metrics(self, out: Any, batch: dict, mask: jnp.ndarray) -> dict:
    """Scalar float32 measurements of a train step beside loss / grad_norm / lr."""
    return {}

  def eval_sums(self, out: Any, batch: dict, mask: jnp.ndarray) -> dict:
    """Masked SUMS on a validation batch: "loss_sum" and "<name>_sum" entries; the
    loop divides each by the summed mask ("count")."""
    raise NotImplementedError

  def make_loader(self, records_dir: str, split: str, config, *, process_index: int,
                  process_count: int) -> Any:
    """This process's loader of a records split (input_pipeline.loader.<loader>).

    Raises:
      FileNotFoundError: the split has no records.
    """
    from input_pipeline import loader as loader_lib  # pylint: disable=g-import-not-at-top
    return getattr(loader_lib, self.loader)(
        records_dir, split, config, process_index=process_index,
        process_count=process_count)

  def augment(self, batch: dict, rng: jax.Array, *, train: bool) -> dict:
    """The batch the model sees, computed on the device inside the jitted train /
    eval step (before `model_inputs`, `loss` and the mask). Identity by default.

    Args:
      batch: the global batch as the loader made it.
      rng: train: fold_in(fold_in(state.rng, step), AUGMENT_FOLD) (new each step);
        eval: a fixed key (the same validation batches every epoch).
      train: train or eval step.
    """
    del rng, train
    return batch

  def prepare_data(self, config, workdir: str) -> DataSource | None:
    """This system's own data source, or None to train on feature records
    (`asa_jax.train.loop.prepare_records`). Called once per run on every process."""
    del config, workdir
    return None

  def frozen_labels(self) -> Callable[[Any], Any] | None:
    """params -> prefix tree of "train" / "frozen" labels, or None (all trained)."""
    return None

  def suite_overrides(self, root: str, suite) -> list[str]:
    """Config overrides of this system's job in a Table 2 suite trained under `root`
    (`asa_jax.experiments.pipeline.plan_jobs`), e.g. where a system it starts from
    is trained. `suite` is the suite's ConfigDict (configs/table2.py)."""
    del root, suite
    return []

  def init_from(self, state: Any, config, workdir: str, *,
                restore: Callable[[Any, str], tuple[Any, dict]]) -> Any:
    """A fresh train state, possibly filled from elsewhere, before step 0.

    Args:
      state: the freshly initialised, replicated train state.
      config: the run config.
      workdir: the run's workdir.
      restore: `asa_jax.train.checkpoint.restore_for_inference` (config, workdir) ->
        (model, variables), for systems that start from another trained system.
    """
    del config, workdir, restore
    return state


@dataclasses.dataclass(frozen=True)
class MarginSystem(System):
  """A system with a loss margin (config loss.margin) that compares with
  config.data.reference: the triplet, hinge-rank and siamese systems."""
  margin: float = 1.0

  def configure(self, config) -> "MarginSystem":
    """margin = config.loss.margin; reference = config.data.reference."""
    return dataclasses.replace(self, margin=float(config.loss.margin),
                               reference=str(config.data.reference))
