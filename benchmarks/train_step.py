"""Benchmarks the jitted triplet train step and tower inference (paper 3.2 / 3.4 model).

  python benchmarks/train_step.py --variants=paper,small --batch=32 --steps=5

Per variant: compile time, steady-state step time, triplets/s, model FLOPs per
triplet and per clip (XLA cost analysis of the step / batch, counted on the lowering
with plain lax convs: the compiled convs of asa_jax/models/conv.py are lax.scan /
lax.map loops whose bodies XLA's cost analysis counts once), achieved
FLOP/s (and MFU with --peak_tflops), XLA memory analysis (arguments + temporaries),
process peak RSS
(resource.getrusage; cumulative over the variants run in this process: run one variant
per process for a clean figure), then tower inference clips/s at --infer_batch. Like the
training loop, it drops the initialisers' executables, compiles the step ahead and
returns the compiler's freed heap before the first step, so the peak RSS is the
training process's.

With --profile, one more steady-state step is traced with `jax.profiler`, the trace is
read back (`jax.profiler.ProfileData`), the XLA ops executed on the CPU backend's
threads (leaf ops: loops and the executor itself are left out so nothing counts
twice) are joined to their HLO metadata (`op_name`), and the op seconds per step are
printed by group -- forward / backward pass x what the op computes (3x3 convolution,
attention encoder matmul, BatchNorm, other elementwise work, optimizer) -- with the top
--profile_top ops. The ops run one after another, each spread over the thread pool, so
they add up to the step's wall time.
"""

import collections
import functools
import glob
import re
import resource
import tempfile
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np

from asa_jax import host_memory
from asa_jax import systems
from asa_jax.models import conv as conv_lib
from asa_jax.models import fold_bn
from asa_jax.train import loop, mesh as mesh_lib
from asa_jax.train.step import make_train_step, train_step
from configs import rori

FLAGS = flags.FLAGS
PAPER_EPOCH_TRIPLETS = 15487  # triplets per epoch in the paper's training set (3.3).
flags.DEFINE_list("variants", ["paper", "small"], "paper (configs/rori.py) and/or small.")
flags.DEFINE_integer("batch", 32, "Global batch (triplets per step).")
flags.DEFINE_integer("steps", 5, "Timed train steps.")
flags.DEFINE_integer("warmup", 1, "Untimed steps after compilation.")
flags.DEFINE_bool("train", True, "Time the train step (--notrain: tower inference only).")
flags.DEFINE_integer("infer_batch", 128, "Clips per tower inference call.")
flags.DEFINE_integer("infer_steps", 3, "Timed inference calls.")
flags.DEFINE_string("dtype", "", "Override config.model.dtype (float32 | bfloat16).")
flags.DEFINE_float("peak_tflops", 0.0, "The device's peak TFLOP/s for this dtype "
                   "(e.g. 989 for an H100/H200 in dense bfloat16): prints MFU.")
flags.DEFINE_enum("remat_norm", "config", ["config", "on", "off"],
                  "config.model.remat_norm: BatchNorm recomputed in the backward pass "
                  "(on, the default config) or held from the forward pass (off).")
flags.DEFINE_enum("xla_scheduler", "config", ["config", "concurrency"],
                  "config: the train step's own compiler options (on CPU, XLA's "
                  "memory-minimising scheduler, asa_jax.train.step); concurrency: XLA "
                  "CPU's default scheduler, for comparison.")
flags.DEFINE_bool("profile", False, "Trace one step and print where its time goes.")
flags.DEFINE_integer("profile_top", 12, "How many single ops --profile lists.")
flags.DEFINE_enum("conv", "auto", ["auto", "im2col", "xla"],
                  "config.model.conv_impl: im2col = conv weight gradient of "
                  "asa_jax/models/conv.py; xla = plain lax.conv autodiff (the "
                  "pre-optimisation baseline); auto = im2col on CPU only.")


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0]
  return float(cost.get("flops", float("nan"))) if cost else float("nan")


def _mem(compiled) -> str:
  m = compiled.memory_analysis()
  if m is None:
    return "n/a"
  gib = lambda b: b / 2**30
  return (f"args {gib(m.argument_size_in_bytes):.2f} GiB, temp "
          f"{gib(m.temp_size_in_bytes):.2f} GiB, out {gib(m.output_size_in_bytes):.2f} GiB")


def _peak_rss_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB.


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


def profile(variant: str, compiled, state, batch):
  """Prints the op seconds of one traced step by group and the top ops (--profile).
  Returns the state after the steps it ran (the step donates its input state)."""
  op_names = {}
  for line in compiled.as_text().splitlines():
    m = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = .*op_name=\"([^\"]*)\"", line)
    if m:
      op_names[m.group(1)] = m.group(2)
  cpu0, wall0 = time.process_time(), time.perf_counter()
  state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  cpu_share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
  by_group, by_op = collections.Counter(), collections.Counter()
  wall = 0.0
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    jax.profiler.stop_trace()
    path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
    for plane in jax.profiler.ProfileData.from_file(path).planes:
      for line in plane.lines:
        for event in line.events:
          if event.name == "ThunkExecutor::Execute (wait for completion)":
            wall = max(wall, event.duration_ns / 1e9)
          if event.name.startswith(_NOT_LEAF) or event.name not in op_names:
            continue
          op_name = op_names[event.name]
          by_group[_group(op_name)] += event.duration_ns / 1e9
          by_op[(event.name, op_name)] += event.duration_ns / 1e9
  total = sum(by_group.values())
  print(f"[{variant}] profile: step wall {wall:.2f} s; ops {total:.2f} s (one after "
        f"another, each on the thread pool); untraced, the process uses "
        f"{cpu_share:.2f} CPU-s per wall-s")
  for group, seconds in by_group.most_common():
    print(f"  {group:<48} {seconds:7.2f} s  {seconds / total:6.1%}")
  print(f"top {FLAGS.profile_top} ops:")
  for (name, op_name), seconds in by_op.most_common(FLAGS.profile_top):
    print(f"  {seconds:6.3f} s  {name:<32} {op_name[-90:]}", flush=True)
  return state


def bench_step(variant: str, config, state, xla_state, mesh, rng, shape):
  """Times the jitted train step (prints the figures); returns the state after it."""
  repl = mesh_lib.replicated(mesh)
  step = make_train_step(systems.get(config), repl, mesh_lib.batch_sharding(mesh),
                         repl)
  batch = mesh_lib.to_global(
      {k: rng.standard_normal(shape, dtype=np.float32)
       for k in ("anchor", "positive", "negative")}, mesh)

  # Model FLOPs from the unoptimised lowering with plain lax convs (see docstring).
  flops = _flops(jax.jit(functools.partial(train_step, system=systems.get(
      config))).lower(xla_state, batch))
  options = ({"xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED"}
             if FLAGS.xla_scheduler == "concurrency" else None)
  t = time.perf_counter()
  compiled = step.lower(state, batch).compile(options)
  compile_s = time.perf_counter() - t
  host_memory.release()  # As the training loop does before its first step.
  for _ in range(FLAGS.warmup):
    state, _ = compiled(state, batch)
  jax.block_until_ready(state)  # (--warmup=0: nothing to wait for)
  t = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, metrics = compiled(state, batch)
  jax.block_until_ready(metrics)
  dt = (time.perf_counter() - t) / FLAGS.steps
  print(f"[{variant}] devices={jax.device_count()} dtype={config.model.dtype} "
        f"conv={conv_lib.resolve_impl(FLAGS.conv)} remat_norm={config.model.remat_norm} "
        f"xla_scheduler={FLAGS.xla_scheduler} "
        f"batch={FLAGS.batch}: compile {compile_s:.1f} s, step {dt * 1e3:.0f} ms, "
        f"{FLAGS.batch / dt:.2f} triplets/s, {flops / FLAGS.batch / 1e9:.2f} GFLOP/triplet "
        f"(train), {flops / dt / 1e9:.1f} GFLOP/s achieved; XLA memory: {_mem(compiled)}; "
        f"peak RSS so far {_peak_rss_gib():.2f} GiB; loss {float(metrics['loss']):.4f}",
        flush=True)
  if FLAGS.peak_tflops > 0:
    print(f"[{variant}] MFU {flops / dt / (FLAGS.peak_tflops * 1e12):.1%} of "
          f"{FLAGS.peak_tflops:g} TFLOP/s; the paper's 15,487-triplet epoch: "
          f"{PAPER_EPOCH_TRIPLETS * dt / FLAGS.batch:.2f} s of step time", flush=True)
  if FLAGS.profile:
    state = profile(variant, compiled, state, batch)
  return state


def bench(variant: str) -> None:
  config = rori.get_config(None if variant == "paper" else variant)
  if FLAGS.dtype:
    config.model.dtype = FLAGS.dtype
  config.train.global_batch_size = FLAGS.batch
  config.model.conv_impl = FLAGS.conv
  if FLAGS.remat_norm != "config":
    config.model.remat_norm = FLAGS.remat_norm == "on"
  mesh = mesh_lib.make_mesh()
  model, state = loop.init_state(config, mesh, keep_executable=False)
  # Model FLOPs are counted on the same model with XLA's own convolutions.
  xla_config = config.copy_and_resolve_references()
  xla_config.model.conv_impl = "xla"
  xla_model, xla_state = loop.init_state(xla_config, mesh, keep_executable=False)
  # Only its shapes are lowered (FLOPs): a second resident copy of the parameters and
  # the Adam moments (0.24 GiB for the paper tower) would count in the peak RSS.
  xla_state = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding)
      if isinstance(a, jax.Array) else a, xla_state)
  rng = np.random.default_rng(0)
  shape = (FLAGS.batch, len(config.features.channels), 96, 94)
  if FLAGS.train:
    state = bench_step(variant, config, state, xla_state, mesh, rng, shape)

  variables = {"params": state.params, "batch_stats": state.batch_stats}
  x = jnp.asarray(rng.standard_normal((FLAGS.infer_batch,) + shape[1:], dtype=np.float32))
  infer = jax.jit(lambda v, x: model.apply(v, x, method=type(model).embed_performance))
  iflops = _flops(jax.jit(lambda v, x: xla_model.apply(  # Model FLOPs, as above.
      v, x, method=type(xla_model).embed_performance)).lower(variables, x))
  t = time.perf_counter()
  icompiled = infer.lower(variables, x).compile()
  icompile_s = time.perf_counter() - t
  jax.block_until_ready(icompiled(variables, x))
  t = time.perf_counter()
  for _ in range(FLAGS.infer_steps):
    out = icompiled(variables, x)
  jax.block_until_ready(out)
  idt = (time.perf_counter() - t) / FLAGS.infer_steps
  print(f"[{variant}] tower inference batch={FLAGS.infer_batch}: compile {icompile_s:.1f} s, "
        f"{idt * 1e3:.0f} ms/batch, {FLAGS.infer_batch / idt:.1f} clips/s, "
        f"{iflops / FLAGS.infer_batch / 1e9:.2f} GFLOP/clip, {iflops / idt / 1e9:.1f} GFLOP/s; "
        f"peak RSS so far {_peak_rss_gib():.2f} GiB", flush=True)
  # The inference graph that evaluation and the Assessor run: BatchNorm folded.
  fmodel, fvariables = fold_bn.fold(model, variables)
  finfer = jax.jit(lambda v, x: fmodel.apply(v, x, method=type(fmodel).embed_performance))
  fcompiled = finfer.lower(fvariables, x).compile()
  jax.block_until_ready(fcompiled(fvariables, x))
  t = time.perf_counter()
  for _ in range(FLAGS.infer_steps):
    fout = fcompiled(fvariables, x)
  jax.block_until_ready(fout)
  fdt = (time.perf_counter() - t) / FLAGS.infer_steps
  print(f"[{variant}] tower inference, BatchNorm folded, batch={FLAGS.infer_batch}: "
        f"{fdt * 1e3:.0f} ms/batch, {FLAGS.infer_batch / fdt:.1f} clips/s, "
        f"{iflops / fdt / 1e9:.1f} GFLOP/s; max |difference| to unfolded "
        f"{float(jnp.max(jnp.abs(fout - out))):.1e}", flush=True)


def main(argv):
  del argv
  for variant in FLAGS.variants:
    bench(variant)


if __name__ == "__main__":
  app.run(main)
