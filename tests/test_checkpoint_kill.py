"""Checkpoints survive SIGKILL at any instant, and a killed + restarted run ends exactly
where an uninterrupted one does.

Real `train.py` processes (through tests/kill_worker.py, which plants the kill point
with monkeypatches) train a tiny Rori with SGD on a records folder built by
`input_pipeline.build.build_records` (cheap fake features): 2 train batches per
epoch, 3 epochs, a 'latest' save after every step (checkpoint_every_steps=1) and a
'best' save at epoch ends that improve validation. One workdir is killed again and
again and restarted with the same command; after every kill no checkpoint the trainer
had committed may be missing, and the finished run's 'best' and 'latest' must equal
those of an uninterrupted run.

Uninterrupted save order: L1, B2, L2, L3, L4, L5, [B6,] L6 (L = latest, B = best,
number = training step; epoch ends at steps 2, 4, 6).
"""

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import soundfile as sf

from asa_jax.systems import build_model
from asa_jax.train import loop, mesh as mesh_lib, restore_for_inference
from asa_jax.train.checkpoint import Checkpoints
from asa_jax.train.state import create_train_state
from input_pipeline import build
from input_pipeline import records
from input_pipeline import shard
from tests import signals
from tests import tiny_config
from tests.test_records import fake_features

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(REPO, "tests", "kill_worker.py")
TRAIN = os.path.join(REPO, "train.py")
TMP_SUFFIX = ".orbax-checkpoint-tmp"
TIMEOUT = 180  # Seconds per train.py process; a hang fails the test.
# Run settings on top of tests/tiny_config.py (command line and in-process alike).
SETTINGS = {"train.optimizer": "sgd", "train.learning_rate": 0.1,
            "train.checkpoint_every_steps": 1, "train.max_epochs": 3,
            "train.patience": 10, "train.log_every_steps": 1}
# XLA CPU compiles fast at -O0; the compiled steps are shared by all processes
# through JAX's persistent compilation cache.
FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
NOTES = [60, 64, 67, 62, 65, 69, 71, 60, 67, 64, 62, 72, 69, 65, 67, 60, 59, 62]


def _melody(n_notes, shift=0, amp=0.3):
  notes = (NOTES * 2)[:n_notes]
  return np.concatenate([signals.harmonic_tone(m + shift, 0.4, amp, harmonics=3)
                         for m in notes])


def _build_records(root, monkeypatch) -> str:
  """Song s1: 3 good + 2 poor train takes (21 triplets: 2 batches of 8 per epoch),
  1 good + 1 poor validation take (4 triplets)."""
  corpus = root / "corpus"
  corpus.mkdir()
  takes = {"ref": (_melody(30), None, None),
           "g1": (_melody(30), 90, "train"), "g2": (_melody(30, amp=0.25), 85, "train"),
           "g3": (_melody(30, amp=0.2), 95, "train"),
           "p1": (_melody(30, 3, 0.15), 10, "train"),
           "p2": (_melody(30, -2, 0.1), 20, "train"),
           "vg": (_melody(20, amp=0.28), 90, "validation"),
           "vp": (_melody(20, 4, 0.12), 15, "validation")}
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  for name, (audio, score, split) in takes.items():
    sf.write(corpus / f"{name}.wav", audio, signals.SR)
    if split:
      lines.append(f"s1,{name},{name}.wav,ref.wav,,{score},,{split}")
  (corpus / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
  monkeypatch.setattr(shard, "extract_features",
                      lambda clips, *, crepe_capacity: fake_features(clips))
  out = str(root / "records")
  report = build.build_records(str(corpus / "manifest.csv"), out,
                                 tiny_config.get_config())
  assert len(report.built) == 7, report.summary()
  return out


def _config(records_dir):
  c = tiny_config.get_config()
  for key, value in {**SETTINGS, "data.records_dir": records_dir}.items():
    group, field = key.split(".")
    c[group][field] = value
  return c


def _env(tmp) -> dict:
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
                              "ASA_"))}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=REPO, XLA_FLAGS=FAST_COMPILE,
             JAX_COMPILATION_CACHE_DIR=str(tmp / "jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
  return env


def _command(script, workdir, records_dir):
  return ([sys.executable, script, "--config=tests/tiny_config.py",
           f"--workdir={workdir}", f"--config.data.records_dir={records_dir}"]
          + [f"--config.{k}={v}" for k, v in SETTINGS.items()])


def _entries(workdir, kind):
  """(committed, uncommitted) entries of checkpoints/<kind>."""
  d = os.path.join(workdir, "checkpoints", kind)
  names = sorted(os.listdir(d)) if os.path.isdir(d) else []
  return ([n for n in names if TMP_SUFFIX not in n],
          [n for n in names if TMP_SUFFIX in n])


class _Restorer:
  """Restores (state, meta) of 'latest' / 'best' with the code under test."""

  def __init__(self, config):
    self.config = config
    abstract = jax.eval_shape(
        functools.partial(create_train_state, build_model(config), config),
        np.int32(0))
    repl = mesh_lib.replicated(mesh_lib.make_mesh())
    self.target = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl), abstract)

  def __call__(self, workdir, kind):
    ckpts = Checkpoints(workdir)
    try:
      return getattr(ckpts, f"restore_{kind}")(self.target)
    finally:
      ckpts.close()


def _log(path) -> list[dict]:
  """Complete JSON lines of the save log (a line being written is left out)."""
  if not path.exists():
    return []
  return [json.loads(l) for l in path.read_text(encoding="utf-8").split("\n")[:-1]]


def _tail(log: str, lines: int = 6) -> str:
  """The last absl log lines (and the kill line) of a train.py run."""
  keep = [l for l in log.splitlines()
          if l.startswith("kill_worker") or ".py:" in l.split("] ")[0]]
  return "\n".join(keep[-lines:])


def _variables(state):
  return loop._host({"params": state.params, "batch_stats": state.batch_stats})


def _assert_trees_close(got, want):
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
               got, want)


@pytest.mark.timeout(2400)  # About ten train.py processes of up to TIMEOUT s each.
def test_sigkill_anywhere_keeps_checkpoints_and_resumes_exactly(tmp_path, monkeypatch):
  records_dir = _build_records(tmp_path, monkeypatch)
  config = _config(records_dir)
  restore = _Restorer(config)
  env = _env(tmp_path)

  # Uninterrupted reference run (plain train.py; fills the compilation cache).
  ref = str(tmp_path / "ref")
  p = subprocess.run(_command(TRAIN, ref, records_dir), cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=TIMEOUT)
  assert p.returncode == 0, p.stderr[-3000:]
  ref_latest, ref_latest_meta = restore(ref, "latest")
  ref_best, ref_best_meta = restore(ref, "best")
  assert ref_latest_meta["step"] == 6 and ref_latest_meta["epoch"] == 3

  workdir = str(tmp_path / "killed")
  save_log = tmp_path / "saves.jsonl"
  committed = {"latest": 0, "best": 0}  # Newest training step known committed.

  def check_after_kill(point, log):
    """No checkpoint the trainer committed (a save_* returned, or seen on disk
    after an earlier kill) is lost; both kinds restore."""
    for rec in _log(save_log):
      committed[rec["kind"]] = max(committed[rec["kind"]], rec["step"])
    for kind in ("latest", "best"):
      if not committed[kind]:
        continue
      restored = restore(workdir, kind)
      assert restored is not None, (
          f"after SIGKILL at {point}: the '{kind}' checkpoint (step "
          f"{committed[kind]}) is gone; checkpoints/{kind} (committed, "
          f"uncommitted): {_entries(workdir, kind)}\n{_tail(log)}")
      step = restored[1]["step"]
      assert step >= committed[kind], (
          f"after SIGKILL at {point}: '{kind}' went back to step {step} from "
          f"{committed[kind]}")
      committed[kind] = step

  def run_killed(point):
    """Runs train.py with the kill planted at `point`; checks it died there."""
    p = subprocess.run(_command(WORKER, workdir, records_dir), cwd=REPO,
                       env={**env, "ASA_KILL_AT": point, "ASA_SAVE_LOG": str(save_log)},
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == -signal.SIGKILL, (
        f"expected SIGKILL at {point}, rc {p.returncode}:\n{p.stderr[-3000:]}")
    assert f"kill_worker: SIGKILL at {point}" in p.stderr
    event, *rest = point.split(":")
    if event == "precommit":  # (a) New data written, not committed: tmp dir present.
      assert _entries(workdir, rest[0])[1], _entries(workdir, rest[0])
    if event == "postcommit":  # (b) New step committed, old one not yet removed.
      assert len(_entries(workdir, rest[0])[0]) == 2, _entries(workdir, rest[0])
    check_after_kill(point, p.stderr)

  # (c) Killed between save_best(2) and save_latest(2) at the end of epoch 0: the
  # restarts below resume from L1 and replay step 2, saving 'best' at step 2 again.
  run_killed("saved:best:1")
  assert committed == {"latest": 1, "best": 2}
  run_killed("precommit:best:1")  # (a) + (c): inside that re-save of best step 2.
  run_killed("postcommit:best:1")  # (b) + (c): right after it was committed.
  run_killed("saved:best:1")  # (c) Right after that re-save returned.
  # Replays step 2 (best again), then L2, L3; killed after L3's commit.
  run_killed("postcommit:latest:2")  # (b)
  assert committed["latest"] == 3

  # (d) An outside SIGKILL at a random instant of epoch 2 (a step, a save, ...).
  # Seeded, and the seed printed: ASA_KILL_SEED=<seed> replays a failing instant.
  seed = int(os.environ.get("ASA_KILL_SEED") or random.SystemRandom().randrange(2**31))
  delay = random.Random(seed).uniform(0.0, 0.3)
  print(f"kill delay {delay:.3f} s from ASA_KILL_SEED={seed}")
  seen = len(_log(save_log))
  proc = subprocess.Popen(_command(WORKER, workdir, records_dir), cwd=REPO,
                          env={**env, "ASA_SAVE_LOG": str(save_log)},
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.monotonic() + TIMEOUT
    while {"kind": "latest", "step": 4} not in _log(save_log)[seen:]:
      assert proc.poll() is None, f"train.py exited ({proc.returncode}) before L4"
      assert time.monotonic() < deadline, "no L4 save before the timeout"
      time.sleep(0.02)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  assert proc.returncode == -signal.SIGKILL, proc.returncode
  check_after_kill(f"a random instant ({delay:.3f} s after L4, ASA_KILL_SEED={seed})",
                   "")

  run_killed("step:1")  # (d) Right after the restart's first train step is dispatched.
  run_killed("precommit:latest:1")  # (a) Inside the next 'latest' save.

  # The last restart finishes the run.
  p = subprocess.run(_command(WORKER, workdir, records_dir), cwd=REPO,
                     env={**env, "ASA_SAVE_LOG": str(save_log)},
                     capture_output=True, text=True, timeout=TIMEOUT)
  assert p.returncode == 0, p.stderr[-3000:]
  check_after_kill("(no kill: finished)", p.stderr)
  for kind in ("latest", "best"):  # Leftover tmp dirs were cleaned up on restart.
    done, tmp = _entries(workdir, kind)
    assert len(done) == 1 and not tmp, (kind, done, tmp)

  latest, latest_meta = restore(workdir, "latest")
  best, best_meta = restore(workdir, "best")
  for key in ("step", "epoch", "batch_in_epoch", "bad_epochs", "stopped"):
    assert latest_meta[key] == ref_latest_meta[key], key
    assert best_meta[key] == ref_best_meta[key], key
  for key in ("best_val_loss", "val_loss", "train_loss"):
    np.testing.assert_allclose(latest_meta[key], ref_latest_meta[key], rtol=1e-5)
  _assert_trees_close(_variables(latest), _variables(ref_latest))
  _assert_trees_close(_variables(best), _variables(ref_best))
  _assert_trees_close(loop._host(restore_for_inference(config, workdir)[1]),
                      loop._host(restore_for_inference(config, ref)[1]))
