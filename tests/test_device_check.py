"""benchmarks/device_check.sh runs end to end on the CPU with small shapes (issue 20,
part 6), so the accelerator check cannot rot between the times a GPU is lent."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_device_check_runs_end_to_end_with_small_shapes():
  # Each part's limit is generous: CI machines are shared.
  env = dict(os.environ, DEVICE_CHECK_SMALL="1", DEVICE_CHECK_LIMIT_S="1200",
             PYTHON=sys.executable, JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
  done = subprocess.run(["bash", os.path.join(ROOT, "benchmarks", "device_check.sh")],
                        env=env, capture_output=True, text=True, timeout=4000,
                        check=False)
  out = done.stdout + done.stderr
  assert done.returncode == 0, out
  assert "FAILED" not in out, out
  assert "CpuDevice" in out, out
  for dtype in ("bfloat16", "float32"):
    # The step, its MFU against the given peak, and the (folded) tower inference.
    assert f"dtype={dtype}" in out and "triplets/s" in out, out
  assert out.count("MFU") == 2, out
  assert out.count("tower inference, BatchNorm folded") == 2, out
  assert "f0 CREPE tiny" in out and "not measured" not in out, out
