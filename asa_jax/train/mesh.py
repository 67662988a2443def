"""Device mesh and shardings: data parallelism over every device of every process."""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh() -> Mesh:
  """A 1-D mesh ('data',) over all devices of all processes (jax.devices() order)."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis split over 'data'; other axes replicated."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Fully replicated sharding (parameters, optimizer state, scalars)."""
  return NamedSharding(mesh, P())


def local_batch_size(global_batch_size: int) -> int:
  """Rows of each global batch that this process feeds.

  Raises:
    ValueError: if the global batch does not split evenly over the devices.
  """
  if global_batch_size % jax.device_count():
    raise ValueError(f"global batch {global_batch_size} is not divisible by the "
                     f"{jax.device_count()} devices")
  return global_batch_size // jax.process_count()


def to_global(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Process-local numpy batch (rows [p*L, (p+1)*L) of the global batch) -> global arrays.

  Each value's leading axis is the local batch L; the global arrays have leading axis
  L * process_count, sharded over 'data'.
  """
  sharding = batch_sharding(mesh)
  n = jax.process_count()
  return {k: jax.make_array_from_process_local_data(
              sharding, np.asarray(v), (v.shape[0] * n,) + tuple(v.shape[1:]))
          for k, v in batch.items()}


def prefetch_to_mesh(batches, mesh: Mesh, size: int = 2):
  """Yields `to_global(batch)` for each process-local batch, `size` batches ahead.

  The next batches' host-to-device copies are issued before the caller's step on the
  current one runs (jax dispatch is asynchronous), so the copy overlaps the step, as
  in flax.jax_utils.prefetch_to_device. At most `size` device batches are alive.

  Args:
    batches: iterable of process-local numpy batches (dicts).
    mesh: the mesh of `to_global`.
    size: batches placed ahead (>= 1).

  Raises:
    ValueError: size < 1.
  """
  import collections  # pylint: disable=g-import-not-at-top
  import itertools  # pylint: disable=g-import-not-at-top
  if size < 1:
    raise ValueError(f"prefetch size must be >= 1, got {size}")
  it = iter(batches)
  queue = collections.deque(to_global(b, mesh) for b in itertools.islice(it, size))
  while queue:
    yield queue.popleft()
    for b in itertools.islice(it, 1):
      queue.append(to_global(b, mesh))
