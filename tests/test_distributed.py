"""Data parallelism: 4 CPU devices and 2 processes train exactly like 1 device.

The global batch is split over devices (and processes); BatchNorm statistics and the
loss are computed over the global batch, so results must match a 1-device run up to
float summation order.
"""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tests import train_worker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, "tests", "train_worker.py")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _env(**extra) -> dict:
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"))}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=REPO, **extra)
  return env


def _compare(got: dict, want: dict) -> None:
  """Losses (train loss at step 3, validation loss) to rtol 1e-5; parameters and
  BatchNorm statistics element-wise to 1e-5 + 1e-4 relative. The worker trains with
  SGD: under Adam, rounding noise in a near-zero gradient becomes a whole
  learning-rate step, so equal runs would not compare element-wise."""
  assert set(got) == set(want)
  for k in want:
    if k in ("devices", "processes", "step"):
      continue
    if np.ndim(want[k]) == 0:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, err_msg=k)
    else:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5, err_msg=k)


# XLA CPU spends minutes optimising the train step on a loaded machine; these runs
# only check equality, so all of them (the 1-device reference included) compile fast.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  """Runs the 1-device, 4-device and 2-process trainings as parallel subprocesses."""
  tmp = tmp_path_factory.mktemp("dist")
  run = lambda name, **env: subprocess.Popen(
      [sys.executable, WORKER, str(tmp / name), str(tmp / f"{name}.npz")],
      env=_env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
  port = _free_port()
  procs = {
      "one": [run("one", XLA_FLAGS=FAST_COMPILE)],
      "four": [run("four", XLA_FLAGS=FAST_COMPILE +
                   " --xla_force_host_platform_device_count=4")],
      "two_proc": [run("two_proc", XLA_FLAGS=FAST_COMPILE,
                       JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                       JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid))
                   for pid in range(2)]}
  out = {}
  try:
    for name, ps in procs.items():
      for p in ps:
        log, _ = p.communicate(timeout=900)
        assert p.returncode == 0, (
            f"{name} failed:\n{log.decode(errors='replace')[-3000:]}")
      out[name] = dict(np.load(tmp / f"{name}.npz"))
  finally:  # A failure or a timeout leaves no worker behind (nor its coordinator).
    _stop([p for ps in procs.values() for p in ps])
  return out


def _stop(procs) -> None:
  """Kills the processes still running and reaps them."""
  for p in procs:
    if p.poll() is None:
      p.kill()
  for p in procs:
    try:
      p.wait(timeout=30)
    except subprocess.TimeoutExpired:  # pragma: no cover (a kill is not ignored)
      pass
    if p.stdout is not None:
      p.stdout.close()


def test_stop_kills_running_workers():
  """The cleanup the fixture relies on: a hung worker is killed and reaped."""
  hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          stdout=subprocess.PIPE)
  done = subprocess.Popen([sys.executable, "-c", "pass"], stdout=subprocess.PIPE)
  done.wait(timeout=60)
  _stop([hung, done])
  assert hung.returncode == -9 and done.returncode == 0


@pytest.mark.timeout(1800)  # The module fixture waits for 4 compiling trainings.
def test_four_devices_match_one_device(results):
  one, four = results["one"], results["four"]
  assert int(four["devices"]) == 4 and int(one["devices"]) == 1
  assert int(four["step"]) == int(one["step"]) == train_worker.STEPS
  _compare(four, one)


@pytest.mark.timeout(1800)
def test_two_processes_match_one_process(results):
  one, two = results["one"], results["two_proc"]
  assert int(two["processes"]) == 2 and int(two["devices"]) == 2
  assert int(two["step"]) == train_worker.STEPS
  _compare(two, one)
