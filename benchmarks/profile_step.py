"""Where the CPU train step spends its time: a jax.profiler trace, summed by op.

  python benchmarks/profile_step.py [--batch=32] [--variant=paper] [--top=12]

Traces one steady-state step of the paper-config triplet train step (the jitted
step of asa_jax.train.step, default model.conv_impl) with `jax.profiler`, reads
the trace back (`jax.profiler.ProfileData`), keeps the XLA ops executed on the CPU
backend's worker threads (leaf ops: loops and the executor itself are left out so
nothing counts twice), and joins each op to its HLO metadata (`op_name`). Prints
the op seconds per step by group (the ops run one after another, each spread
over the thread pool, so they add up to the step's wall time) -- forward / backward pass x what the op
computes (3x3 convolution, matmul of the attention encoder, BatchNorm and other
elementwise work, optimizer) -- and the top ops by time.
"""

import collections
import glob
import re
import tempfile
import time

from absl import app, flags
import jax
import numpy as np

from asa_jax import systems
from asa_jax.train import loop, mesh as mesh_lib
from asa_jax.train.step import make_train_step
from configs import rori

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch", 32, "Global batch (triplets per step).")
flags.DEFINE_string("variant", "paper", "paper (configs/rori.py) or a rori variant.")
flags.DEFINE_integer("top", 12, "How many single ops to list.")

_NOT_LEAF = ("while", "ThunkExecutor", "SlinkyThreadPool", "call", "conditional",
             "Execute", "$", "Pjit", "Common", "Parse", "Handle")


def _group(op_name: str) -> str:
  """'forward|backward: what' from an HLO op's metadata op_name."""
  if "optimizer" in op_name or "adam" in op_name.lower() or "/update" in op_name:
    return "optimizer (Adam)"
  passname = "backward" if "transpose(" in op_name else "forward"
  if "conv_general_dilated" in op_name or re.search(r"/conv_\d", op_name) and (
      "dot_general" in op_name):
    what = "3x3 convolutions"
  elif re.search(r"attention|encoder|bert|layer_\d", op_name, re.I) and (
      "dot_general" in op_name):
    what = "attention encoder matmuls"
  elif "dot_general" in op_name:
    what = "other matmuls (head, embedding)"
  elif re.search(r"BatchNorm|bn|batch_norm|/norm", op_name, re.I):
    what = "BatchNorm"
  else:
    what = "elementwise, reductions, copies"
  return f"{passname}: {what}"


def main(argv):
  del argv
  config = rori.get_config(None if FLAGS.variant == "paper" else FLAGS.variant)
  config.train.global_batch_size = FLAGS.batch
  mesh = mesh_lib.make_mesh()
  _, state = loop.init_state(config, mesh)
  repl = mesh_lib.replicated(mesh)
  step = make_train_step(systems.get(config), repl, mesh_lib.batch_sharding(mesh),
                         repl)
  rng = np.random.default_rng(0)
  shape = (FLAGS.batch, len(config.features.channels), 96, 94)
  batch = mesh_lib.to_global({k: rng.standard_normal(shape, dtype=np.float32)
                              for k in ("anchor", "positive", "negative")}, mesh)
  hlo = step.lower(state, batch).compile().as_text()
  op_names = {}
  for line in hlo.splitlines():
    m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*op_name=\"([^\"]*)\"", line)
    if m:
      op_names[m.group(1)] = m.group(2)
  for _ in range(2):  # Compile and warm up.
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  cpu0, wall0 = time.process_time(), time.perf_counter()
  for _ in range(2):
    state, metrics = step(state, batch)
  jax.block_until_ready(metrics)
  cpu_share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    jax.profiler.stop_trace()
    path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
    profile = jax.profiler.ProfileData.from_file(path)
    by_group = collections.Counter()
    by_op = collections.Counter()
    wall = 0.0
    for plane in profile.planes:
      for line in plane.lines:
        for event in line.events:
          name = event.name
          if name == "ThunkExecutor::Execute (wait for completion)":
            wall = max(wall, event.duration_ns / 1e9)
          if name.startswith(_NOT_LEAF) or name not in op_names:
            continue
          seconds = event.duration_ns / 1e9
          by_group[_group(op_names[name])] += seconds
          by_op[(name, op_names[name])] += seconds
  total = sum(by_group.values())
  print(f"[{FLAGS.variant}] batch {FLAGS.batch}: step wall {wall:.2f} s; ops "
        f"{total:.2f} s on {jax.local_devices()[0].platform} (ops run one after "
        f"another, each on the thread pool); untraced, the process uses "
        f"{cpu_share:.2f} CPU-s per wall-s")
  for group, seconds in by_group.most_common():
    print(f"  {group:<48} {seconds:7.2f} s  {seconds / total:6.1%}")
  print(f"top {FLAGS.top} ops:")
  for (name, op_name), seconds in by_op.most_common(FLAGS.top):
    print(f"  {seconds:6.3f} s  {name:<32} {op_name[-90:]}")


if __name__ == "__main__":
  app.run(main)
