"""Runs a short fake-data training; used in-process and as a subprocess by
tests/test_distributed.py (several devices / several processes).

Usage: python tests/train_worker.py WORKDIR OUT.npz
Multi-process: set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID.
Several CPU devices: XLA_FLAGS=--xla_force_host_platform_device_count=N.
"""

import os
import sys

if __name__ == "__main__":
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  from asa_jax.train.distributed import maybe_initialize
  maybe_initialize()

import jax  # pylint: disable=g-import-not-at-top
import numpy as np
from flax import traverse_util

from asa_jax.train import loop, restore_for_inference, train_and_evaluate
from tests import fake_loader

STEPS = 3


def run(workdir: str) -> dict[str, np.ndarray]:
  """Trains the tiny config for 3 steps (= 1 epoch + validation) on the fake global
  batches, each process feeding its rows; returns the 'best' variables + losses."""
  c = fake_loader.tiny_config()
  c.train.max_steps = STEPS
  # SGD keeps the comparison well conditioned (see asa_jax.train.state.make_optimizer);
  # lr 0.1 moves the parameters enough that a wrong shard would show.
  c.train.optimizer = "sgd"
  c.train.learning_rate = 0.1
  out = train_and_evaluate(c, workdir, loader_factory=fake_loader.factory(
      c, num_batches=STEPS, process_index=jax.process_index(),
      process_count=jax.process_count()))
  _, variables = restore_for_inference(c, workdir)
  flat = traverse_util.flatten_dict(loop._host(variables), sep="/")
  flat["train_loss"] = np.float32(out["train_loss"])
  flat["val_loss"] = np.float32(out["val_loss"])
  flat["step"] = np.int32(out["step"])
  flat["devices"] = np.int32(jax.device_count())
  flat["processes"] = np.int32(jax.process_count())
  return flat


if __name__ == "__main__":
  result = run(sys.argv[1])
  if jax.process_index() == 0:
    np.savez(sys.argv[2], **result)
