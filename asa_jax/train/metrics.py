"""Metric sinks: stdout (absl logging), <workdir>/metrics.jsonl, TensorBoard events.

Only process 0 writes; other processes get a writer whose methods do nothing.
"""

import json
import math
import os

import jax
import numpy as np
from absl import logging


class MetricWriter:
  """Writes scalar metric dicts per step.

  Args:
    workdir: run directory (metrics.jsonl and tensorboard/ go there).
    enabled: write anything at all (default: jax.process_index() == 0).
  """

  def __init__(self, workdir: str, enabled: bool | None = None):
    self.enabled = jax.process_index() == 0 if enabled is None else enabled
    self._jsonl = None
    self._tb = None
    if self.enabled:
      os.makedirs(workdir, exist_ok=True)
      self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
      try:
        from tensorboardX import SummaryWriter
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      except ImportError:  # pragma: no cover - tensorboardX is a dependency.
        logging.warning("tensorboardX missing: no TensorBoard events")

  def write(self, step: int, scalars: dict, *, prefix: str = "train",
            echo: bool = False) -> None:
    """Appends {"step", "split", **scalars} to metrics.jsonl and TensorBoard.

    Args:
      step: optimizer step the values belong to.
      scalars: name -> number (numpy scalars ok; nan written as null).
      prefix: 'train' | 'validation' | ...
      echo: also log a line to stdout.
    """
    if not self.enabled:
      return
    clean = {k: float(np.asarray(v)) for k, v in scalars.items()}
    row = {"step": int(step), "split": prefix}
    row.update({k: (None if math.isnan(v) else v) for k, v in clean.items()})
    self._jsonl.write(json.dumps(row) + "\n")
    if self._tb is not None:
      for k, v in clean.items():
        self._tb.add_scalar(f"{prefix}/{k}", v, int(step))
    if echo:
      logging.info("step %d %s: %s", step, prefix,
                   ", ".join(f"{k}={v:.5g}" for k, v in clean.items()))

  def flush(self) -> None:
    """Flushes metrics.jsonl and the TensorBoard writer (process 0 only)."""
    if self.enabled:
      self._jsonl.flush()
      if self._tb is not None:
        self._tb.flush()

  def close(self) -> None:
    """Closes the files (process 0 only); further writes are errors."""
    if self.enabled:
      self._jsonl.close()
      if self._tb is not None:
        self._tb.close()
