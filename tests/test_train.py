"""Training: one jitted step, resume from checkpoints, early stopping (paper 3.4)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax.train import loop, mesh as mesh_lib, restore_for_inference
from asa_jax.train import train_and_evaluate
from asa_jax.train.checkpoint import Checkpoints
from asa_jax import config_specs as specs
from asa_jax import systems
from asa_jax.evaluation import calibration
from asa_jax.train.step import make_train_step
from tests import fake_loader


def _params(workdir, config):
  _, variables = restore_for_inference(config, workdir)
  return loop._host(variables)


def test_one_step_smoke():
  c = fake_loader.tiny_config()
  mesh = mesh_lib.make_mesh()
  _, state = loop.init_state(c, mesh)
  before = jax.device_get(state.params)
  repl = mesh_lib.replicated(mesh)
  step = make_train_step(systems.get(c), repl, mesh_lib.batch_sharding(mesh), repl)
  batch = next(fake_loader.FakeTripletLoader("train", c).epoch(0))
  state, metrics = step(state, mesh_lib.to_global(batch, mesh))
  metrics = jax.device_get(metrics)
  assert int(state.step) == 1
  assert set(metrics) == {"loss", "grad_norm", "learning_rate", "active_fraction",
                          "cos_ap", "cos_an"}
  assert np.isfinite(metrics["loss"]) and metrics["loss"] > 0
  assert metrics["grad_norm"] > 0
  assert metrics["learning_rate"] == pytest.approx(c.train.learning_rate)
  assert 0.0 <= metrics["active_fraction"] <= 1.0
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before,
                         jax.device_get(state.params))
  assert all(jax.tree.leaves(changed))


def test_the_cpu_train_step_uses_the_memory_scheduler_for_the_same_step():
  """Issue 20, part 4: on CPU the train step compiles with XLA's memory-minimising
  scheduler. It only reorders the ops: the step's state and metrics are bit-identical
  to XLA's default (concurrency) scheduler's, and its temporaries are no larger."""
  from asa_jax.train import step as step_lib  # pylint: disable=g-import-not-at-top
  c = fake_loader.tiny_config()
  mesh = mesh_lib.make_mesh()
  repl = mesh_lib.replicated(mesh)
  assert step_lib.train_compiler_options(repl) == {
      "xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"}
  fn = make_train_step(systems.get(c), repl, mesh_lib.batch_sharding(mesh), repl)
  batch = mesh_lib.to_global(next(fake_loader.FakeTripletLoader("train", c).epoch(0)),
                             mesh)
  out, temp = {}, {}
  for name, options in (("memory", None), ("concurrency", {
      "xla_cpu_scheduler_type": "CPU_SCHEDULER_TYPE_CONCURRENCY_OPTIMIZED"})):
    _, state = loop.init_state(c, mesh)
    compiled = fn.lower(state, batch).compile(options)
    temp[name] = compiled.memory_analysis().temp_size_in_bytes
    out[name] = jax.device_get(compiled(state, batch))
  assert temp["memory"] <= temp["concurrency"], temp
  for a, b in zip(jax.tree.leaves(out["memory"]), jax.tree.leaves(out["concurrency"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_the_loop_compiles_its_step_before_the_first_call_and_releases_the_heap(
    monkeypatch):
  """The compiler's freed heap goes back to the OS between the compilation and the
  first call (else both add up in the peak RSS: 3.0 -> 2.45 GiB for the paper tower);
  each new batch shape compiles once."""
  events = []
  monkeypatch.setattr(loop.host_memory, "release", lambda: events.append("release"))

  class Fn:
    def lower(self, state, batch):
      events.append(("lower", batch["x"].shape))
      return self

    def compile(self):
      return lambda state, batch: events.append(("call", batch["x"].shape)) or state

  step = loop._CompiledAhead(Fn())
  for shape in ((2, 3), (2, 3), (4, 3)):
    step(None, {"x": np.zeros(shape, np.float32)})
  assert events == [("lower", (2, 3)), "release", ("call", (2, 3)), ("call", (2, 3)),
                    ("lower", (4, 3)), "release", ("call", (4, 3))]


def test_init_state_can_drop_the_initialisers_executable():
  c = fake_loader.tiny_config()
  mesh = mesh_lib.make_mesh()
  _, kept = loop.init_state(c, mesh)
  fn, = [f for k, f in loop._INIT_CACHE.items() if k[-1] == mesh and k[0] ==
         systems.build_model(c)]
  assert fn._cache_size() == 1
  _, dropped = loop.init_state(c, mesh, keep_executable=False)
  assert fn._cache_size() == 0
  for a, b in zip(jax.tree.leaves(kept), jax.tree.leaves(dropped)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_second_run_in_the_process_does_not_trace_its_step_again():
  """Dropping the initialiser's executable retraces the initialiser in the next run.
  Its state must keep the same pytree structure (the same optimizer object), or a
  jitted step taking the state is traced and compiled again: the resume tests took
  163 s instead of 67 when it was not."""
  c = fake_loader.tiny_config()
  mesh = mesh_lib.make_mesh()
  _, first = loop.init_state(c, mesh, keep_executable=False)
  _, second = loop.init_state(c, mesh, keep_executable=False)
  assert jax.tree.structure(first) == jax.tree.structure(second)
  traces = []

  def next_step(state):
    traces.append(1)
    return state.step + 1

  step = jax.jit(next_step)
  step.lower(first)
  step.lower(second)
  assert len(traces) == 1


def test_resume_continues_and_matches_straight_run(tmp_path):
  """max_steps=2 then 4 in one workdir == max_steps=4 at once (3 batches/epoch, so the
  first run stops mid-epoch and the second crosses the epoch end + validation)."""
  c = fake_loader.tiny_config()
  c.train.max_steps = 2
  resumed = str(tmp_path / "resumed")
  out = train_and_evaluate(c, resumed, loader_factory=fake_loader.factory(c))
  assert out["step"] == 2 and out["epoch"] == 0 and out["val_loss"] is None
  c.train.max_steps = 4
  factory = fake_loader.factory(c)
  out = train_and_evaluate(c, resumed, loader_factory=factory)
  assert out["step"] == 4 and out["epoch"] == 1
  # The Grain iterator state restored from the checkpoint: epoch 0 continues at its
  # batch 2 without making batches 0 and 1 again.
  made = factory.loaders["train"].made
  assert [b for e, b in made if e == 0] == [2]
  assert made[1] == (1, 0)
  assert np.isfinite(out["val_loss"]) and out["best_val_loss"] == out["val_loss"]

  straight = str(tmp_path / "straight")
  out2 = train_and_evaluate(c, straight, loader_factory=fake_loader.factory(
      c, val_last_batch_rows=None))
  assert out2["step"] == 4
  assert out2["train_loss"] == pytest.approx(out["train_loss"], rel=1e-5)
  # restore_for_inference reads 'best' (step 3, end of epoch 0) in both runs.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               _params(resumed, c), _params(straight, c))
  rows = [json.loads(l) for l in open(os.path.join(resumed, "metrics.jsonl"))]
  assert [r["step"] for r in rows if r["split"] == "train"] == [1, 2, 3, 4]
  assert [r["step"] for r in rows if r["split"] == "validation"] == [3]
  assert os.listdir(os.path.join(resumed, "tensorboard"))


def test_early_stopping_and_rerun_after_stop(tmp_path, monkeypatch):
  """Scripted validation losses 1.0, 0.5, 0.6, 0.7 with patience 2: stop after epoch 3,
  best = epoch 1; running again does nothing."""
  c = fake_loader.tiny_config()
  c.train.max_epochs = 10
  c.train.patience = 2
  scripted = iter([1.0, 0.5, 0.6, 0.7, 0.1, 0.1])
  monkeypatch.setattr(loop, "evaluate", lambda *a, **k: {
      "loss": next(scripted), "cos_ap": 0.0, "cos_an": 0.0, "count": 8.0})
  factory = fake_loader.factory(c, num_batches=1)
  workdir = str(tmp_path)
  out = train_and_evaluate(c, workdir, loader_factory=factory)
  # The returned train loss is the last step's, as written to metrics.jsonl (finite).
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  last_train = [r for r in rows if r["split"] == "train"][-1]
  assert last_train["step"] == 4 and np.isfinite(out["train_loss"])
  assert out["train_loss"] == pytest.approx(last_train["loss"], rel=1e-6)
  assert out == {"step": 4, "epoch": 4, "train_loss": last_train["loss"],
                 "val_loss": 0.7, "best_val_loss": 0.5, "stopped_early": True}
  _, target = loop.init_state(c, mesh_lib.make_mesh())
  ckpts = Checkpoints(workdir)
  try:
    _, best_meta = ckpts.restore_best(target)
  finally:
    ckpts.close()
  assert best_meta["step"] == 2 and best_meta["val_loss"] == 0.5  # Epoch 1's end.
  again = train_and_evaluate(c, workdir, loader_factory=factory)
  assert again["step"] == 4 and again["stopped_early"]


@pytest.mark.timeout(900)  # Builds records and compiles: slow on 2 shared cores.
def test_model_selection_by_validation_correlation(tmp_path, monkeypatch):
  """train.selection_metric='pearson': 'best' and early stopping follow the validation
  Pearson's r of performance scores (scripted 0.1, 0.6, 0.3, 0.2 with patience 2: best
  = epoch 1, stop after epoch 3), not the validation loss."""
  from tests import test_checkpoint_kill, tiny_config  # pylint: disable=g-import-not-at-top
  records_dir = test_checkpoint_kill._build_records(tmp_path, monkeypatch)
  c = tiny_config.get_config()
  c.data.records_dir = records_dir
  c.train.max_epochs = 6
  c.train.patience = 2
  c.train.selection_metric = "pearson"

  # The real scorer on these records: 2 labelled validation performances -> undefined.
  _, state = loop.init_state(c, mesh_lib.make_mesh())
  real = loop.validation_correlation_fn(c, records_dir)(state)
  assert real["n"] == 2.0 and np.isnan(real["pearson"])

  scripted = iter([0.1, 0.6, 0.3, 0.2, 0.9, 0.9])
  monkeypatch.setattr(loop, "validation_correlation_fn", lambda config, d: (
      lambda state: {"pearson": next(scripted), "spearman": 0.0, "n": 2.0}))
  workdir = str(tmp_path / "run")
  out = train_and_evaluate(c, workdir)
  assert out["stopped_early"] and out["epoch"] == 4
  best = Checkpoints(workdir).restore_best(state)
  assert best is not None and best[1]["best_selection"] == pytest.approx(-0.6)
  assert best[1]["epoch"] == 2  # Saved at the end of epoch 1.
  # The end of training stores the config and fits the score calibration on the
  # validation performances (2 labelled here).
  assert specs.load_workdir_config(workdir) == c
  cal = calibration.load(os.path.join(workdir, "calibration.json"))
  assert cal.method == "linear" and cal.human and cal.n == 2
  assert cal(cal.raw_range[1]) >= cal(cal.raw_range[0])
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["pearson"] for r in rows if r["split"] == "validation"] == [
      0.1, 0.6, 0.3, 0.2]
  with pytest.raises(ValueError, match="selection_metric"):
    c.train.selection_metric = "auc"
    train_and_evaluate(c, str(tmp_path / "bad"))


@pytest.mark.timeout(900)  # Builds records and compiles: slow on 2 shared cores.
def test_selection_by_spearman_and_undefined_correlations(tmp_path, monkeypatch):
  """selection_metric='spearman': the best checkpoint follows Spearman's rho, not
  Pearson's r; an undefined (nan) correlation counts as an epoch without improvement
  (scripted rho 0.2, nan, 0.5, nan, nan with patience 2: best = epoch 2, stop after
  epoch 4)."""
  from tests import test_checkpoint_kill, tiny_config  # pylint: disable=g-import-not-at-top
  records_dir = test_checkpoint_kill._build_records(tmp_path, monkeypatch)
  c = tiny_config.get_config()
  c.data.records_dir = records_dir
  c.train.max_epochs = 8
  c.train.patience = 2
  c.train.selection_metric = "spearman"
  rho = iter([0.2, np.nan, 0.5, np.nan, np.nan, 0.9, 0.9])
  r = iter([0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9])  # Pearson: would pick epoch 0.
  monkeypatch.setattr(loop, "validation_correlation_fn", lambda config, d: (
      lambda state: {"pearson": next(r), "spearman": next(rho), "n": 2.0}))
  workdir = str(tmp_path / "run")
  out = train_and_evaluate(c, workdir)
  assert out["stopped_early"] and out["epoch"] == 5
  _, state = loop.init_state(c, mesh_lib.make_mesh())
  ckpts = Checkpoints(workdir)
  try:
    best = ckpts.restore_best(state)
    latest = ckpts.restore_latest(state)
  finally:
    ckpts.close()
  assert best[1]["best_selection"] == pytest.approx(-0.5)
  assert best[1]["epoch"] == 3  # Saved at the end of epoch 2.
  assert latest[1]["bad_epochs"] == 2 and latest[1]["stopped"]
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  val = [r["spearman"] for r in rows if r["split"] == "validation"]
  assert val == [0.2, None, 0.5, None, None]  # nan written as null.


def test_no_train_batches_raises(tmp_path):
  c = fake_loader.tiny_config()
  with pytest.raises(ValueError, match=r"^epoch 0: the train split yields no batches "
                                       rf"\(global batch {c.train.global_batch_size}\)$"):
    train_and_evaluate(c, str(tmp_path),
                       loader_factory=fake_loader.factory(c, num_batches=0))


def test_missing_validation_split_trains_without_selection(tmp_path, caplog):
  """Records without a validation split: the default factory warns and gives an
  empty source; training runs every epoch with no validation loss, no early stop
  and no best checkpoint."""
  from tests import test_loader  # pylint: disable=g-import-not-at-top
  c = fake_loader.tiny_config()
  records_dir = tmp_path / "records"
  test_loader.make_records(records_dir)  # The train split only.
  factory = loop.default_loader_factory(str(records_dir), c)
  with caplog.at_level("WARNING"):
    val = factory("validation")
  assert val.num_batches(0) == 0 and list(val.epoch(0)) == []
  assert any("no validation data" in m and "no early stopping" in m
             for m in caplog.messages), caplog.messages
  assert factory("train").num_batches(0) > 0
  with pytest.raises(FileNotFoundError, match="no complete records for split 'train'"):
    loop.default_loader_factory(str(tmp_path / "empty"), c)("train")

  fake = fake_loader.factory(c, num_batches=1)
  workdir = str(tmp_path / "run")
  out = train_and_evaluate(
      c, workdir, loader_factory=lambda s: fake(s) if s == "train" else val)
  assert out["epoch"] == c.train.max_epochs and out["step"] == c.train.max_epochs
  assert out["val_loss"] is None and out["best_val_loss"] is None
  assert not out["stopped_early"] and np.isfinite(out["train_loss"])
  _, state = loop.init_state(c, mesh_lib.make_mesh())
  ckpts = Checkpoints(workdir)
  try:
    assert ckpts.restore_best(state) is None
    assert ckpts.restore_latest(state)[1]["epoch"] == c.train.max_epochs
  finally:
    ckpts.close()


@pytest.mark.timeout(900)
def test_bfloat16_steps_track_float32():
  """model.dtype='bfloat16': float32 parameters and optimizer state, and over a few
  steps on the same batches the loss stays within 1e-2 of the float32 run."""
  losses = {}
  for dtype in ("float32", "bfloat16"):
    c = fake_loader.tiny_config()
    c.model.dtype = dtype
    c.model.dropout = 0.0  # the same function in both runs, up to precision.
    mesh = mesh_lib.make_mesh()
    _, state = loop.init_state(c, mesh)
    repl = mesh_lib.replicated(mesh)
    step = make_train_step(systems.get(c), repl, mesh_lib.batch_sharding(mesh), repl)
    run = []
    for batch in list(fake_loader.FakeTripletLoader("train", c).epoch(0))[:3]:
      state, metrics = step(state, mesh_lib.to_global(batch, mesh))
      run.append(float(jax.device_get(metrics["loss"])))
    leaves = jax.tree.leaves((state.params, state.opt_state))
    assert {x.dtype for x in leaves if hasattr(x, "dtype") and
            jnp.issubdtype(x.dtype, jnp.floating)} == {jnp.dtype("float32")}
    losses[dtype] = run
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], atol=1e-2)
  assert losses["bfloat16"] != losses["float32"]  # bfloat16 was really used.


def test_prefetch_to_mesh_keeps_order_and_bounds_lookahead():
  mesh = mesh_lib.make_mesh()
  pulled = []

  def source():
    for k in range(5):
      pulled.append(k)
      yield {"x": np.full((2, 3), k, np.float32)}

  out = mesh_lib.prefetch_to_mesh(source(), mesh, size=2)
  first = next(out)
  assert pulled == [0, 1]  # two batches ahead, not the whole epoch.
  rest = list(out)
  assert [int(np.asarray(b["x"])[0, 0]) for b in [first] + rest] == [0, 1, 2, 3, 4]
  assert isinstance(first["x"], jax.Array) and first["x"].shape == (2, 3)
  with pytest.raises(ValueError, match="prefetch size must be >= 1, got 0"):
    next(mesh_lib.prefetch_to_mesh(source(), mesh, size=0))


def test_host_memory_release_runs_on_glibc():
  import sys  # pylint: disable=g-import-not-at-top
  from asa_jax import host_memory  # pylint: disable=g-import-not-at-top
  assert host_memory.release() is sys.platform.startswith("linux")
