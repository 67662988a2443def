"""On-device contour degradations (issue 18, section 3): exact labels, monotone in
each error, detune visible in the contour, and the same batch for the same key on 1
device, 4 forced CPU devices and 2 processes."""

import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline import contour_degrade as cd
from input_pipeline.corpora import degrade
from tests import contour_worker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def contours():
  return cd.Contour(**{k: jnp.asarray(v) for k, v in
                       contour_worker.synthetic_batch(4, 320, seed=3).items()})


_apply = jax.jit(lambda key, c, e: cd.degrade_batch(key, c, e)[1])


def _errors(n, **fields):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,)), cd.no_errors(**fields))


def test_no_errors_is_identity_with_full_score(contours):
  r = _apply(jax.random.PRNGKey(0), contours, _errors(4))
  np.testing.assert_allclose(r.cents, contours.cents, atol=1e-3)
  np.testing.assert_array_equal(r.voiced, contours.voiced)
  np.testing.assert_allclose(r.score, 100.0, atol=1e-3)


def test_label_formula_matches_degrade_label(contours):
  e = _errors(4, detune_cents=40.0, onset_jitter_seconds=0.08, tempo_drift=0.1)
  r = _apply(jax.random.PRNGKey(1), contours, e)
  for i in range(4):
    want = degrade.label(float(r.pitch_error_cents[i]),
                         float(r.timing_error_seconds[i]), 0.0)["score"]
    assert abs(float(r.score[i]) - want) <= 0.06


@pytest.mark.parametrize("field,values", [
    ("detune_cents", (0.0, 20.0, 60.0, 120.0)),
    ("wrong_note_prob", (0.0, 0.3, 0.6, 1.0)),
    ("drift_cents", (0.0, 50.0, 150.0, 300.0)),
    ("jitter_cents", (0.0, 10.0, 30.0, 60.0)),
    ("scoop_cents", (0.0, 80.0, 200.0, 400.0)),
    ("vibrato_scale", (1.0, 1.5, 2.5, 4.0)),
    ("onset_jitter_seconds", (0.0, 0.03, 0.08, 0.15)),
    ("tempo_drift", (0.0, 0.1, 0.2, 0.3)),
    ("entry_offset_seconds", (0.0, 0.1, 0.2, 0.4)),
])
def test_label_monotone_in_each_error(contours, field, values):
  key = jax.random.PRNGKey(5)
  scores = np.stack([np.asarray(_apply(key, contours, _errors(4, **{field: v})).score)
                     for v in values])
  assert np.all(np.diff(scores, axis=0) <= 1e-3), (field, scores)
  assert np.all(scores[-1] < scores[0] - 1.0), (field, scores)


@pytest.mark.parametrize("field,value", [("key_shift_cents", 300.0),
                                         ("tempo_ratio", 1.08), ("octave_prob", 1.0),
                                         ("dropout_prob", 1.0)])
def test_label_neutral_noise_keeps_the_label(contours, field, value):
  r = _apply(jax.random.PRNGKey(2), contours, _errors(4, **{field: value}))
  np.testing.assert_allclose(r.score, 100.0, atol=1e-3)
  changed = np.abs(np.asarray(r.cents) - np.asarray(contours.cents)).max()
  assert changed > 50.0 or not np.array_equal(r.voiced, contours.voiced)


@pytest.mark.parametrize("cents", [25.0, 100.0])
def test_detune_shows_in_the_contour(contours, cents):
  """X cents of detune: each note's frames move by its offset in [0.5, 1.5] X (no
  other change), and P is the mean |offset| over notes."""
  r = _apply(jax.random.PRNGKey(4), contours, _errors(4, detune_cents=cents))
  diff = np.asarray(r.cents) - np.asarray(contours.cents)
  note = np.asarray(contours.note)
  offsets = np.asarray(r.note_offsets_cents)
  for i in range(4):
    voiced = np.asarray(contours.voiced[i]) > 0
    want = offsets[i][np.minimum(note[i], offsets.shape[1] - 1)]
    np.testing.assert_allclose(diff[i][voiced], want[voiced], atol=0.05)
    valid = np.asarray(contours.onset[i]) < contours.cents.shape[1]
    mags = np.abs(offsets[i][valid])
    assert np.all((mags >= 0.5 * cents - 1e-3) & (mags <= 1.5 * cents + 1e-3))
    np.testing.assert_allclose(r.pitch_error_cents[i], mags.mean(), rtol=1e-4)


def test_rows_do_not_depend_on_the_batch(contours):
  key = jax.random.PRNGKey(9)
  full = cd.degrade_batch(key, contours)[1]
  half = cd.degrade_batch(key, jax.tree.map(lambda x: x[:2], contours))[1]
  np.testing.assert_array_equal(full.cents[:2], half.cents)
  np.testing.assert_array_equal(full.score[:2], half.score)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def test_same_key_same_batch_on_1_4_devices_and_2_processes(tmp_path):
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("JAX_COORDINATOR", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID",
                              "XLA_FLAGS"))}
  env.update(JAX_PLATFORMS="cpu", PYTHONPATH=REPO)
  worker = os.path.join(REPO, "tests", "contour_worker.py")
  port = _free_port()
  runs = {"one": [{}],
          "four": [{"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}],
          "two": [{"JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
                   "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": str(p)}
                  for p in range(2)]}
  procs = {name: [subprocess.Popen([sys.executable, worker, str(tmp_path / f"{name}.npz")],
                                   env={**env, **e}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT) for e in envs]
           for name, envs in runs.items()}
  out = {}
  for name, ps in procs.items():
    for p in ps:
      log, _ = p.communicate(timeout=600)
      assert p.returncode == 0, log.decode(errors="replace")[-3000:]
    out[name] = dict(np.load(tmp_path / f"{name}.npz"))
  assert int(out["four"]["devices"]) == 4 and int(out["two"]["devices"]) == 2
  for name in ("four", "two"):
    for k in ("cents", "voiced", "score", "pitch_error_cents", "timing_error_seconds"):
      np.testing.assert_allclose(out[name][k], out["one"][k], rtol=1e-6, atol=1e-4,
                                 err_msg=f"{name}: {k}")


def test_rubato_moves_the_notes_but_not_the_label(contours):
  r = _apply(jax.random.PRNGKey(8), contours, _errors(4, rubato_seconds=0.2))
  np.testing.assert_allclose(r.score, 100.0, atol=1e-3)
  # The time map really moves: up to tens of frames off the identity.
  assert float(np.abs(np.asarray(r.time_map_frames) - np.arange(320)).max()) > 5.0
  # With onset jitter on top, the jitter still counts (its realised size changes a
  # little: each shift is clipped to 30% of the rubato-moved gaps).
  e = dict(onset_jitter_seconds=0.08)
  with_rubato = _apply(jax.random.PRNGKey(9), contours, _errors(4, rubato_seconds=0.2, **e))
  plain = _apply(jax.random.PRNGKey(9), contours, _errors(4, **e))
  ratio = np.asarray(with_rubato.timing_error_seconds) / np.asarray(
      plain.timing_error_seconds)
  assert float(np.min(with_rubato.timing_error_seconds)) > 0.01
  assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
