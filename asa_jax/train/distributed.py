"""Multi-process start-up: `jax.distributed.initialize` when the environment asks for it."""

import os

import jax
from absl import logging


def maybe_initialize(coordinator_address: str | None = None,
                     num_processes: int | None = None,
                     process_id: int | None = None) -> bool:
  """Initialises the JAX distributed runtime if several processes are requested.

  Arguments default to the environment variables JAX_COORDINATOR_ADDRESS
  ("host:port"), JAX_NUM_PROCESSES and JAX_PROCESS_ID. Nothing happens (returns False)
  when num_processes is unset or 1. On CPU the cross-process collectives use gloo
  (jax 0.10 default `jax_cpu_collectives_implementation='gloo'`, set explicitly).
  Must run before any other JAX call.

  Returns:
    True if jax.distributed.initialize was called.

  Raises:
    ValueError: if several processes are requested without an address or process id.
  """
  coordinator_address = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
    num_processes = int(os.environ["JAX_NUM_PROCESSES"])
  if process_id is None and os.environ.get("JAX_PROCESS_ID"):
    process_id = int(os.environ["JAX_PROCESS_ID"])
  if not num_processes or num_processes <= 1:
    return False
  if coordinator_address is None or process_id is None:
    raise ValueError("multi-process run needs JAX_COORDINATOR_ADDRESS and JAX_PROCESS_ID "
                     f"(got address={coordinator_address!r}, process_id={process_id!r})")
  if (os.environ.get("JAX_PLATFORMS", "") or "cpu").startswith("cpu"):
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  logging.info("jax.distributed.initialize(%s, num_processes=%d, process_id=%d)",
               coordinator_address, num_processes, process_id)
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id)
  return True
