"""Every learned system of Table 2 (paper 3.2.1-3.2.4, 4.5): build, train, restore,
score. Fake in-memory batches (tests/fake_loader.py), tiny towers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from asa_jax import ablations
from asa_jax.evaluation import scoring
from asa_jax.features import constants
from asa_jax import systems
from asa_jax.systems import build_model
from asa_jax.train import loop, mesh as mesh_lib, restore_for_inference
from asa_jax.train import train_and_evaluate
from asa_jax.train.step import make_steps
from configs import delta, direct, embdirect, racc, rori, variants
from tests import fake_loader

_TINY_RORI_CONFIG = '''
from tests import fake_loader


def get_config(arg=None):
  return fake_loader.tiny_config("small", "rori", blocks=4)
'''


def _one_step(c):
  """Initialises config c and takes one jitted training step on a fake batch."""
  mesh = mesh_lib.make_mesh()
  repl = mesh_lib.replicated(mesh)
  train_fn, _ = make_steps(c, repl, mesh_lib.batch_sharding(mesh), repl)
  batch = mesh_lib.to_global(next(fake_loader.factory(c)("train").epoch(0)), mesh)
  model, state = loop.init_state(c, mesh)
  before = jax.device_get(state.params)
  state, metrics = train_fn(state, batch)
  return model, before, state, jax.device_get(metrics)


def test_config_variants_and_errors():
  assert rori.get_config("demo,ablation_spec").features.channels == ("spec",)
  assert rori.get_config(" ablation_spec_f0 , small").name == "rori_spec_f0"
  c = rori.get_config("ablation_spec_f0_chroma")
  assert c.features.channels == ("spec", "f0", "chroma")
  assert c.name == "rori_spec_f0_chroma" and c.system == "rori"
  assert rori.get_config("").name == "" and len(rori.get_config().features.channels) == 5
  assert racc.get_config("demo").data.reference == "accompaniment"
  assert delta.get_config("demo").system == "delta"
  assert direct.get_config().train.learning_rate == 1e-6  # Paper 3.4.
  e = embdirect.get_config()
  assert e.train.learning_rate == 1e-7 and e.embdirect.rori_config == "configs/rori.py"
  e = embdirect.get_config("ssvd")
  assert e.embdirect.rori_config == "configs/rori.py:ssvd"
  assert e.model.embedding_dim == rori.get_config("ssvd").model.embedding_dim
  assert e.data.key_align == "shift"
  with pytest.raises(ValueError, match=r"configs/rori.py.*valid words: small, demo"):
    rori.get_config("demo,bogus")
  with pytest.raises(ValueError, match="configs/direct.py"):
    direct.get_config("ablation_spec")  # Ablations are Rori only.
  with pytest.raises(ValueError, match="more than one"):
    rori.get_config("small,demo")
  with pytest.raises(ValueError, match="accompaniment"):
    racc.get_config("ssvd")
  assert set(ablations.ABLATIONS) == {"ablation_spec", "ablation_spec_f0",
                                     "ablation_spec_f0_chroma"}


@pytest.mark.parametrize("system,arg", [
    ("rori", "small"), ("racc", "small"), ("direct", "small"), ("delta", "small"),
    ("rori", "small,ablation_spec"), ("rori", "small,ablation_spec_f0"),
    ("rori", "small,ablation_spec_f0_chroma")])
def test_every_config_builds_and_takes_a_step(system, arg):
  """Every system and ablation variant (EmbDirect: see the EmbDirect tests) builds
  and takes one real training step."""
  c = fake_loader.tiny_config(arg, system, blocks=4)
  assert system in systems.names()
  _, before, state, metrics = _one_step(c)
  assert int(state.step) == 1 and np.isfinite(metrics["loss"])
  assert metrics["grad_norm"] > 0
  # The input channel count follows features.channels (paper 4.5).
  kind = systems.get(c).batch_kind
  tower = "performance_tower" if kind == "triplet" else "tower"
  kernel = jax.device_get(state.params[tower]["block_1"]["conv_1"]["kernel"])
  assert kernel.shape[2] == len(c.features.channels)
  if kind == "clips":  # Regression systems.
    assert set(metrics) == {"loss", "grad_norm", "learning_rate", "mae", "pred_mean"}
    head = jax.device_get(state.params["head"])
    assert not np.allclose(head["dense_3"]["kernel"],
                           before["head"]["dense_3"]["kernel"])


@pytest.mark.parametrize("system,pooling", [("rori", "attention"), ("delta", "mean")])
def test_time_pooling_trains_in_any_system(system, pooling):
  """model.pooling (the singer-embedding study's attention pooling, mean, max) is a
  tower option that every system can train with."""
  c = fake_loader.tiny_config("small", system, blocks=4)
  c.model.pooling = pooling
  _, before, state, metrics = _one_step(c)
  assert int(state.step) == 1 and np.isfinite(metrics["loss"])
  tower = "performance_tower" if systems.get(c).batch_kind == "triplet" else "tower"
  assert "bert_1" not in state.params[tower]
  if pooling == "attention":
    w = jax.device_get(state.params[tower]["time_pooling"]["score"]["kernel"])
    assert not np.allclose(w, before[tower]["time_pooling"]["score"]["kernel"])


def test_delta_input_is_exactly_reference_minus_performance():
  """Paper 3.2.2: the tower receives reference - performance (captured at the
  tower's call), and Delta equals Direct with the same parameters fed the
  difference directly."""
  c = fake_loader.tiny_config("small", "delta", blocks=4)
  model = build_model(c)
  rng = np.random.default_rng(0)
  shape = (3, 5, constants.N_BINS, constants.N_FRAMES)
  perf = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  ref = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  variables = jax.jit(lambda p, r: model.init(jax.random.PRNGKey(0), p, r,
                                               train=False))(perf, ref)

  @jax.jit
  def run(variables, perf, ref):
    seen = []

    def capture(next_fun, args, kwargs, context):
      if context.module.name == "tower" and context.method_name == "__call__":
        seen.append(args[0])
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(capture):
      out = model.apply(variables, perf, ref, train=False)
    assert len(seen) == 1
    return out, seen[0]

  out, tower_input = run(variables, perf, ref)
  np.testing.assert_array_equal(np.asarray(tower_input),
                                np.asarray(ref) - np.asarray(perf))
  c.system = "direct"
  direct_model = build_model(c)
  want = jax.jit(lambda v, x: direct_model.apply(v, x, jnp.zeros_like(x),
                                                 train=False))(variables, ref - perf)
  np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-6, atol=1e-6)
  # Swapping the clips changes the input's sign, and so the prediction.
  assert not np.allclose(out, run(variables, ref, perf)[0])


def _tiny_rori_workdir(tmp_path):
  """Trains the tiny Rori 2 steps; returns (workdir, config spec of its config)."""
  spec_file = tmp_path / "tiny_rori.py"
  spec_file.write_text(_TINY_RORI_CONFIG)
  c = fake_loader.tiny_config("small", "rori", blocks=4)
  c.train.max_steps = 2
  workdir = str(tmp_path / "rori")
  train_and_evaluate(c, workdir, loader_factory=fake_loader.factory(c))
  return workdir, str(spec_file)


def test_embdirect_freezes_the_rori_tower_bit_identically(tmp_path):
  """Paper 3.2.4: after training, EmbDirect's performance tower params and
  batch_stats are bit-identical to the Rori checkpoint's; the head changed."""
  rori_dir, spec = _tiny_rori_workdir(tmp_path)
  c = fake_loader.tiny_config("small", "embdirect", blocks=4)
  c.embdirect.rori_config = spec
  c.embdirect.rori_workdir = rori_dir
  c.train.max_steps = 4  # 3 batches/epoch: one epoch + validation + one more step.
  c.train.learning_rate = 1e-2
  out = train_and_evaluate(c, str(tmp_path / "emb"),
                           loader_factory=fake_loader.factory(c))
  assert out["step"] == 4 and np.isfinite(out["val_loss"])

  rori_cfg = fake_loader.tiny_config("small", "rori", blocks=4)
  _, rori_vars = restore_for_inference(rori_cfg, rori_dir)
  rori_vars = loop._host(rori_vars)
  # Latest (step 4) and best (step 3) both keep the tower.
  from asa_jax.train.checkpoint import Checkpoints  # pylint: disable=g-import-not-at-top
  mesh = mesh_lib.make_mesh()
  _, fresh = loop.init_state(c, mesh)
  ckpts = Checkpoints(str(tmp_path / "emb"))
  latest, meta = ckpts.restore_latest(fresh)
  ckpts.close()
  assert meta["step"] == 4
  model, emb_vars = restore_for_inference(c, str(tmp_path / "emb"))
  for variables in (loop._host({"params": latest.params,
                                "batch_stats": latest.batch_stats}),
                    loop._host(emb_vars)):
    for col in ("params", "batch_stats"):
      got = variables[col]["performance_tower"]
      want = rori_vars[col]["performance_tower"]
      assert jax.tree.structure(got) == jax.tree.structure(want)
      jax.tree.map(np.testing.assert_array_equal, got, want)
  init_head = jax.device_get(fresh.params["head"])
  head = loop._host(latest.params)["head"]
  assert any(not np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(head), jax.tree.leaves(init_head)))
  # The model embeds with the frozen tower: same embedding as Rori's performance tower.
  x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 5, 96, 94)), jnp.float32)
  rori_model = build_model(rori_cfg)
  np.testing.assert_array_equal(
      model.apply(emb_vars, x, method="embed_performance"),
      rori_model.apply(rori_vars, x, method="embed_performance"))


def test_embdirect_clear_errors(tmp_path):
  c = fake_loader.tiny_config("small", "embdirect", blocks=4)
  factory = fake_loader.factory(c)
  c.embdirect.rori_workdir = str(tmp_path / "missing")
  with pytest.raises(FileNotFoundError, match="no checkpoints"):
    train_and_evaluate(c, str(tmp_path / "a"), loader_factory=factory)
  rori_dir, spec = _tiny_rori_workdir(tmp_path)
  c.embdirect.rori_workdir = rori_dir
  c.embdirect.rori_config = "configs/rori.py:small"  # A wider tower than trained.
  with pytest.raises(ValueError, match="does not match"):
    train_and_evaluate(c, str(tmp_path / "b"), loader_factory=factory)


def test_regression_resume_matches_straight_run(tmp_path):
  c = fake_loader.tiny_config("small", "direct", blocks=4)
  c.train.max_steps = 2
  resumed = str(tmp_path / "resumed")
  out = train_and_evaluate(c, resumed, loader_factory=fake_loader.factory(c))
  assert out["step"] == 2 and out["val_loss"] is None
  c.train.max_steps = 4
  out = train_and_evaluate(c, resumed, loader_factory=fake_loader.factory(c))
  assert out["step"] == 4 and out["epoch"] == 1 and np.isfinite(out["val_loss"])
  straight = str(tmp_path / "straight")
  out2 = train_and_evaluate(c, straight, loader_factory=fake_loader.factory(c))
  assert out2["train_loss"] == pytest.approx(out["train_loss"], rel=1e-5)
  assert out2["val_loss"] == pytest.approx(out["val_loss"], rel=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               loop._host(restore_for_inference(c, resumed)[1]),
               loop._host(restore_for_inference(c, straight)[1]))


def test_restore_and_score_regression_system(tmp_path):
  """score_performances on a trained Delta: predicted = mean predicted clip score
  (score units), anchor embeddings (N, 0), performance = tower embeddings."""
  c = fake_loader.tiny_config("small", "delta", blocks=4)
  c.train.max_steps = 3
  c.eval.batch_size = 4
  train_and_evaluate(c, str(tmp_path), loader_factory=fake_loader.factory(c))
  model, variables = restore_for_inference(c, str(tmp_path))
  rng = np.random.default_rng(3)
  segments = []
  for perf_id, n in (("p1", 3), ("p2", 2)):
    for k in range(n):
      segments.append(({"song_id": "s", "performance_id": perf_id, "score": 50.0,
                        "transposition": 0},
                       rng.standard_normal(constants.FEATURE_SHAPE).astype(np.float32),
                       rng.standard_normal(constants.FEATURE_SHAPE).astype(np.float32)))
  stats = {"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(constants.CHANNELS)}
  scores, clips = scoring.score_performances(model, variables, segments, stats, c,
                                             return_clips=True)
  assert [s.performance_id for s in scores] == ["p1", "p2"]
  assert clips.anchor.shape == (5, 0)
  assert clips.performance.shape == (5, c.model.embedding_dim)
  perf = np.stack([s[1] for s in segments])
  ref = np.stack([s[2] for s in segments])
  want = np.asarray(model.apply(variables, perf, ref, train=False))
  np.testing.assert_allclose(clips.similarity, want, rtol=1e-4, atol=1e-3)
  assert scores[0].predicted == pytest.approx(float(np.mean(want[:3])), abs=1e-3)
  assert scores[1].predicted == pytest.approx(float(np.mean(want[3:])), abs=1e-3)
  assert scores[0].human == 50.0
