"""Runs the real train.py and SIGKILLs it at a chosen point (tests/test_checkpoint_kill.py).

Usage: [ASA_KILL_AT=POINT] [ASA_SAVE_LOG=FILE] python tests/kill_worker.py <train.py flags>

POINT (n counts events in this process, from 1; kind is 'latest' or 'best'):
  precommit:KIND:n   inside Orbax's n-th commit of a KIND save: the data is written to
                     the `*.orbax-checkpoint-tmp` dir, which is not renamed yet
  postcommit:KIND:n  right after that rename, before Orbax removes the older step
  saved:KIND:n       right after the n-th Checkpoints.save_KIND returned (e.g.
                     saved:best:1 is between save_best(S) and save_latest(S))
  step:n             right after the n-th train step is dispatched
ASA_SAVE_LOG: each returned Checkpoints.save_KIND appends {"kind", "step"} (one JSON
line, flushed) -- what the trainer knew to be committed before it died.
The hooks monkeypatch Orbax / asa_jax from here; production code has none.
"""

import functools
import json
import os
import runpy
import signal
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = os.path.join(REPO, "train.py")
sys.path.insert(0, REPO)

# Imports JAX without initialising a backend (train.py may still call
# jax.distributed.initialize afterwards).
from orbax.checkpoint.path import atomicity  # pylint: disable=g-import-not-at-top

from asa_jax.train import checkpoint as checkpoint_lib  # pylint: disable=g-import-not-at-top
from asa_jax.train import loop  # pylint: disable=g-import-not-at-top

_COUNTS: dict = {}


def _kill(point: str) -> None:
  print(f"kill_worker: SIGKILL at {point}", file=sys.stderr, flush=True)
  sys.stdout.flush()
  os.kill(os.getpid(), signal.SIGKILL)


def _event(name: str, kind: str | None, target: str) -> None:
  """Counts event `name` (of `kind`) and dies if it is the target one."""
  key = f"{name}:{kind}" if kind else name
  _COUNTS[key] = _COUNTS.get(key, 0) + 1
  if target == f"{key}:{_COUNTS[key]}":
    _kill(target)


def install(target: str, save_log: str | None) -> None:
  """Plants the kill point `target` (see module doc) and the save log."""
  finalize = atomicity.AtomicRenameTemporaryPath.finalize

  async def hooked_finalize(self, *args, **kwargs):
    kind = self.get().parent.name  # .../checkpoints/<kind>/save_<n>.orbax-checkpoint-tmp
    _event("precommit", kind, target)
    await finalize(self, *args, **kwargs)
    _event("postcommit", kind, target)

  atomicity.AtomicRenameTemporaryPath.finalize = hooked_finalize

  for kind in ("latest", "best"):
    save = getattr(checkpoint_lib.Checkpoints, f"save_{kind}")

    def hooked_save(self, state, meta, *args, _save=save, _kind=kind):
      _save(self, state, meta, *args)
      if save_log:
        with open(save_log, "a", encoding="utf-8") as f:
          f.write(json.dumps({"kind": _kind, "step": int(meta["step"])}) + "\n")
      _event("saved", _kind, target)

    setattr(checkpoint_lib.Checkpoints, f"save_{kind}", hooked_save)

  call = loop._CompiledAhead.__call__  # The loop's train step.

  @functools.wraps(call)
  def hooked_call(self, state, batch):
    out = call(self, state, batch)  # Dispatched; the step may still be running.
    _event("step", None, target)
    return out

  loop._CompiledAhead.__call__ = hooked_call


if __name__ == "__main__":
  install(os.environ.get("ASA_KILL_AT", ""), os.environ.get("ASA_SAVE_LOG"))
  sys.argv = [TRAIN] + sys.argv[1:]
  runpy.run_path(TRAIN, run_name="__main__")
