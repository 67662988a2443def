"""Independent tasks on Dask, the way the feature build runs its shards.

`run_tasks` submits one Dask task per item, on a `distributed.LocalCluster` (one
thread per worker; worker processes when workers > 1, else one in-process worker
thread) or on an existing cluster (`address`, e.g. "tcp://host:8786"). A task that
raises is retried `RETRIES` times; a worker process that dies (native crash, signal,
out-of-memory kill) is restarted by its nanny and the task rescheduled, until it has
been on `ALLOWED_FAILURES` + 1 dying workers (`distributed.KilledWorker`). Every task
ends in one `on_done` call: its result, or the reason it failed, so the caller
reports failures and is never left waiting. The feature build
(input_pipeline/build.py) and the real-voice corpus (input_pipeline/corpora/real.py)
run on it.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Sequence

# A task that was on this many dying workers fails on the next death
# (distributed.scheduler.allowed-failures), so a task that kills every worker it runs
# on is given up quickly.
ALLOWED_FAILURES = 2
RETRIES = 2  # Re-runs of a task that raised an exception.


def describe(error: BaseException) -> str:
  """One line saying why a task failed (a dead worker named as such)."""
  if type(error).__name__ == "KilledWorker":
    return (f"its worker process died {ALLOWED_FAILURES + 1} times (crash, "
            f"signal or out-of-memory kill): KilledWorker: {error}")
  return f"{type(error).__name__}: {error}"


def run_tasks(fn: Callable[..., Any], tasks: Sequence[tuple], *, keys: Sequence[str],
              on_done: Callable[[int, Any, str | None], None], workers: int = 1,
              address: str = "", label: str = "tasks", noun: str = "tasks",
              fatal: tuple[type[BaseException], ...] = (),
              warm: Callable[[], Any] | None = None) -> None:
  """Runs fn(*tasks[i]) for every i on Dask; calls on_done(i, result, None) when
  task i finished and on_done(i, None, reason) when it failed after the retries.

  Args:
    fn: a module-level (picklable) function.
    tasks: the argument tuples, one per task.
    keys: unique Dask keys, one per task (shown on the dashboard).
    on_done: called in this process, in order of completion.
    workers: LocalCluster workers (ignored with `address`).
    address: an existing Dask scheduler; "" starts a LocalCluster.
    label, noun: the progress message's prefix and what a task is ("shards").
    fatal: exception types of a task that stop the run: the other tasks are
      cancelled and the exception re-raised (a dead worker is never fatal).
    warm: run once before any task: in this process before the LocalCluster's
      worker processes start (workers > 1), or on every worker of `address`.

  Raises:
    Whatever `fatal` names, from a task.
  """
  import dask  # pylint: disable=g-import-not-at-top
  import distributed  # pylint: disable=g-import-not-at-top
  workers = max(1, int(workers))
  settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
              # One task per one-thread worker: a dying worker takes down only the
              # task it was running (queued tasks wait on the scheduler).
              "distributed.scheduler.worker-saturation": 1.0}
  with dask.config.set(settings):
    cluster = None
    client = None
    try:
      if address:
        client = distributed.Client(address)
        if warm is not None:
          client.run(warm)
      else:
        if warm is not None and workers > 1:
          warm()
        cluster = distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=workers > 1,
            dashboard_address=":0")
        client = distributed.Client(cluster)
      print(f"{label}: {len(tasks)} {noun} on Dask "
            f"({address or f'LocalCluster of {workers} workers'}); dashboard "
            f"{client.dashboard_link}", file=sys.stderr)
      futures = {client.submit(fn, *args, key=key, retries=RETRIES, pure=False): i
                 for i, (args, key) in enumerate(zip(tasks, keys))}
      for future in distributed.as_completed(futures):
        i = futures[future]
        try:
          result = future.result()
        except Exception as e:  # pylint: disable=broad-except  (reported)
          if isinstance(e, fatal) and type(e).__name__ != "KilledWorker":
            client.cancel(list(futures))
            raise
          on_done(i, None, describe(e))
        else:
          on_done(i, result, None)
    finally:
      if client is not None:
        client.close()
      if cluster is not None:
        cluster.close()
