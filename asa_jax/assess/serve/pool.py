"""The bounded queue in front of a fixed number of scoring worker processes.

Each worker is a process (multiprocessing, spawn) running `worker.main`, so a worker
that dies (killed, out of memory, a crash in native code) is replaced without
stopping the service. One asyncio task per worker slot takes jobs from the queue in
order and sends them to its process:
  - the queue holds at most `queue_size` waiting jobs; a job over that is refused
    (`ServiceError` 503 with Retry-After);
  - every job has a deadline (`timeout_s` from submission, queue time included):
    past it, the job is answered 504 and its worker is killed and replaced;
  - `cancel` (the client disconnected) drops a waiting job, freeing its queue place,
    or kills and replaces the worker running it, freeing the worker;
  - a worker that dies mid-job is replaced; the job is answered 500 with its id,
    which the log names with the worker's pid and exit code.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import math
import multiprocessing
import time

from asa_jax.assess.serve import http_errors as errors_lib
from asa_jax.assess.serve import scorer as scorer_lib
from asa_jax.assess.serve import worker as worker_lib

log = logging.getLogger("asa_jax.serve")
RESTART_BACKOFF_S = (1.0, 5.0, 30.0)  # waits before restarting a worker that
# failed to start, by consecutive failures (then the last one).


@dataclasses.dataclass(eq=False)
class Job:
  """One request's work for a worker (`WorkerPool.submit`)."""
  id: str
  kind: str
  payload: dict
  deadline: float  # loop.time() seconds.
  future: asyncio.Future
  cancelled: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
  submitted: float = dataclasses.field(default_factory=time.monotonic)

  def finish(self, value=None, *, error: errors_lib.ServiceError | None = None):
    """Resolves the job's future with value, or fails it with error; a job already
    finished (answered, timed out or cancelled) is left as it is."""
    if not self.future.done():
      if error is None:
        self.future.set_result(value)
      else:
        self.future.set_exception(error)
        # Retrieved here: nobody awaits a job whose client left.
        self.future.add_done_callback(lambda f: f.exception())


class _Slot:
  """One worker process and the pipe to it."""

  def __init__(self, index: int, spec: scorer_lib.ScorerSpec, max_seconds: float):
    self.index, self.spec, self.max_seconds = index, spec, max_seconds
    self.process = self.conn = None
    self.info: dict = {}

  @property
  def alive(self) -> bool:
    return self.process is not None and self.process.is_alive()

  @property
  def pid(self) -> int | None:
    return None if self.process is None else self.process.pid

  async def start(self, executor, timeout_s: float) -> dict:
    """Spawns the process and waits for its ("ready", info).

    Raises:
      scorer_lib.ScorerUnavailable: the worker could not load the scorer.
      TimeoutError: no answer within timeout_s (the process is killed).
    """
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    self.process = ctx.Process(target=worker_lib.main, name=f"asa-serve-worker-{self.index}",
                               args=(child, self.spec, self.max_seconds), daemon=True)
    self.process.start()
    child.close()  # so that the parent's recv sees EOF when the worker dies.
    self.conn = parent
    loop = asyncio.get_running_loop()
    try:
      kind, info = await asyncio.wait_for(loop.run_in_executor(executor, parent.recv),
                                          timeout_s)
    except (EOFError, OSError) as e:
      self.kill()
      raise scorer_lib.ScorerUnavailable(
          f"worker exited while starting (exit code {self.process.exitcode})") from e
    except asyncio.TimeoutError as e:
      self.kill()
      raise TimeoutError(f"worker not ready within {timeout_s:g} s") from e
    if kind != "ready":
      self.kill()
      raise scorer_lib.ScorerUnavailable(info)
    self.info = info
    log.info("worker %d ready: pid %d, %s", self.index, info["pid"], info["system"])
    return info

  def kill(self) -> None:
    """SIGKILLs the process (if running) and closes the pipe."""
    if self.process is not None:
      if self.process.is_alive():
        self.process.kill()
      self.process.join(5)
    if self.conn is not None:
      self.conn.close()
      self.conn = None


class WorkerPool:
  """`workers` scoring processes behind a queue of `queue_size` (module doc)."""

  def __init__(self, spec: scorer_lib.ScorerSpec, *, workers: int = 1,
               queue_size: int = 32, timeout_s: float = 120.0,
               max_seconds: float = 600.0, start_timeout_s: float = 900.0):
    if workers < 1 or queue_size < 0:
      raise ValueError("need workers >= 1 and queue_size >= 0")
    self.spec, self.timeout_s, self.queue_size = spec, timeout_s, queue_size
    self.start_timeout_s = start_timeout_s
    self._slots = [_Slot(i, spec, max_seconds) for i in range(workers)]
    self._waiting: collections.deque[Job] = collections.deque()
    self._wake: asyncio.Condition | None = None
    self._tasks: list[asyncio.Task] = []
    self._executor = concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="asa-serve-pipe")
    self._job_seconds = 5.0  # running mean of a job's worker time (Retry-After).
    self.info: dict = {}  # the first ready worker's: system, fingerprint.
    self.ready = False
    self.failure: str | None = None
    self.counts = collections.Counter()

  # --- life cycle ---------------------------------------------------------------

  async def start(self) -> None:
    """Starts every worker (in parallel) and their slot tasks; `ready` after.

    Raises:
      scorer_lib.ScorerUnavailable / TimeoutError: a worker could not start
        (`failure` holds the message; the other workers are stopped).
    """
    self._wake = asyncio.Condition()
    try:
      infos = await asyncio.gather(*(s.start(self._executor, self.start_timeout_s)
                                     for s in self._slots))
    except Exception as e:
      self.failure = str(e)
      for s in self._slots:
        s.kill()
      raise
    self.info = infos[0]
    self._tasks = [asyncio.create_task(self._serve(s)) for s in self._slots]
    self.ready = True

  async def close(self) -> None:
    """Stops the slot tasks and the worker processes; fails waiting jobs (503)."""
    self.ready = False
    for t in self._tasks:
      t.cancel()
    await asyncio.gather(*self._tasks, return_exceptions=True)
    for job in self._waiting:
      job.finish(error=errors_lib.ServiceError(503, "the service is stopping"))
    self._waiting.clear()
    for s in self._slots:
      s.kill()
    self._executor.shutdown(wait=False, cancel_futures=True)

  def worker_pids(self) -> list[int]:
    """Pids of the live worker processes."""
    return [s.pid for s in self._slots if s.alive]

  # --- jobs -------------------------------------------------------------------------

  def retry_after(self) -> int:
    """Seconds after which the queue has likely room again (Retry-After)."""
    per_slot = (len(self._waiting) + 1) / len(self._slots)
    return max(1, math.ceil(per_slot * self._job_seconds))

  async def submit(self, job_id: str, kind: str, payload: dict) -> Job:
    """Queues a job; await `job.future` for its result.

    Raises:
      ServiceError: 503 + Retry-After when the service is not ready or the queue
        holds queue_size jobs.
    """
    if not self.ready:
      raise errors_lib.ServiceError(503, "the service is warming up",
                                    {"Retry-After": "10"})
    if len(self._waiting) >= self.queue_size:
      self.counts["rejected"] += 1
      raise errors_lib.ServiceError(
          503, f"the queue is full ({self.queue_size} waiting, --queue)",
          {"Retry-After": str(self.retry_after())})
    loop = asyncio.get_running_loop()
    job = Job(job_id, kind, payload, loop.time() + self.timeout_s, loop.create_future())
    async with self._wake:
      self._waiting.append(job)
      self._wake.notify()
    return job

  def cancel(self, job: Job) -> None:
    """The client is gone: frees the job's queue place or its worker (module doc)."""
    job.cancelled.set()
    try:
      self._waiting.remove(job)
      log.info("request %s: client disconnected while queued", job.id)
    except ValueError:
      pass  # running (its slot kills the worker) or done.

  def queued(self) -> int:
    """Jobs waiting for a worker."""
    return len(self._waiting)

  def expire(self, job: Job) -> bool:
    """Answers a job still waiting past its deadline with 504; False if it is not
    waiting (running or done)."""
    try:
      self._waiting.remove(job)
    except ValueError:
      return False
    job.finish(error=self.timed_out())
    return True

  async def _next_job(self) -> Job:
    async with self._wake:
      await self._wake.wait_for(lambda: bool(self._waiting))
      return self._waiting.popleft()

  async def _restart(self, slot: _Slot) -> None:
    """Starts a new process in the slot, retrying with backoff until it is ready."""
    slot.kill()
    for attempt in range(1_000_000):
      try:
        await slot.start(self._executor, self.start_timeout_s)
        self.counts["restarts"] += 1
        return
      except (scorer_lib.ScorerUnavailable, TimeoutError) as e:
        wait = RESTART_BACKOFF_S[min(attempt, len(RESTART_BACKOFF_S) - 1)]
        log.error("worker %d failed to restart (%s); again in %g s", slot.index, e,
                  wait)
        await asyncio.sleep(wait)

  async def _serve(self, slot: _Slot) -> None:
    """The slot's loop: one job at a time on its worker process."""
    loop = asyncio.get_running_loop()
    while True:
      if not slot.alive:
        await self._restart(slot)
      job = await self._next_job()
      if job.cancelled.is_set() or job.future.done():
        continue
      if not slot.alive:  # died while idle: the job waits for the new worker.
        await self._restart(slot)
      remaining = job.deadline - loop.time()
      if remaining <= 0:
        job.finish(error=self.timed_out())
        continue
      started = time.monotonic()
      log.info("request %s: %s on worker %d (pid %s)", job.id, job.kind, slot.index,
               slot.pid)
      try:
        slot.conn.send((job.id, job.kind, job.payload))
      except (OSError, ValueError):  # died while idle: answered as a death below.
        pass
      answer = loop.run_in_executor(self._executor, slot.conn.recv)
      gone = asyncio.ensure_future(job.cancelled.wait())
      done, _ = await asyncio.wait({answer, gone}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
      gone.cancel()
      if answer in done and answer.exception() is None:
        _, status, value = answer.result()
        self._job_seconds = 0.8 * self._job_seconds + 0.2 * (time.monotonic() - started)
        if status == "ok":
          job.finish(value)
        else:
          job.finish(error=errors_lib.ServiceError(*value))
        continue
      if answer in done:  # EOF: the worker died.
        slot.process.join(5)
        self.counts["worker_deaths"] += 1
        log.error("request %s: worker %d (pid %s) died while scoring (exit code %s); "
                  "answered 500, starting a new worker", job.id, slot.index, slot.pid,
                  slot.process.exitcode)
        job.finish(error=errors_lib.ServiceError(
            500, f"the scoring worker died; error id {job.id} (in the server log)"))
      elif gone in done:
        log.info("request %s: client disconnected while scoring; worker %d (pid %s) "
                 "stopped and replaced", job.id, slot.index, slot.pid)
      else:
        log.warning("request %s: over the time limit (%g s); worker %d (pid %s) "
                    "stopped and replaced", job.id, self.timeout_s, slot.index,
                    slot.pid)
        job.finish(error=self.timed_out())
      slot.kill()
      answer.cancel()

  def timed_out(self) -> errors_lib.ServiceError:
    """The 504 of a job over the time limit (counted)."""
    self.counts["timeouts"] += 1
    return errors_lib.ServiceError(
        504, f"not scored within the time limit of {self.timeout_s:g} s (--timeout)")
