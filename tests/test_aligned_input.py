"""Aligned-contour model input (issue 18): the exact time map of the on-device
degradations, the DTW alignment of real pairs, and the channels both feed the tower."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from input_pipeline import aligned_input
from input_pipeline import contour_degrade as cd
from tests import contour_worker

FRAMES = 320


@pytest.fixture(scope="module")
def contours():
  return cd.Contour(**{k: jnp.asarray(v) for k, v in
                       contour_worker.synthetic_batch(4, FRAMES, seed=5).items()})


_apply = jax.jit(lambda key, c, e: cd.degrade_batch(key, c, e)[1])


def _errors(n, **fields):
  return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,)), cd.no_errors(**fields))


def _channels(c, r):
  return np.asarray(aligned_input.aligned_channels(
      *aligned_input.from_degradation(c.cents, r.cents, r.time_map_frames)))


def test_time_map_is_the_tempo_ratio_without_other_timing_errors(contours):
  r = _apply(jax.random.PRNGKey(0), contours, _errors(4, tempo_ratio=1.08))
  want = 1.08 * np.arange(FRAMES)
  np.testing.assert_allclose(r.time_map_frames, np.broadcast_to(want, (4, FRAMES)),
                             atol=1e-2)


def test_detune_shows_as_its_cents_on_each_note_through_a_tempo_change(contours):
  e = _errors(4, detune_cents=60.0, tempo_ratio=0.93, key_shift_cents=-250.0)
  r = _apply(jax.random.PRNGKey(2), contours, e)
  x = _channels(contours, r)
  for i in range(4):
    note = np.asarray(contours.note[i])
    offsets = np.asarray(r.note_offsets_cents[i])
    both = (x[i, 2] > 0) & (x[i, 3] > 0)
    want = np.where(note < len(offsets), offsets[np.minimum(note, len(offsets) - 1)], 0)
    # The channel removes the median deviation (the key); compare per note.
    dev = 100.0 * x[i, 0]
    diffs = [np.median(dev[(note == k) & both]) - offsets[k]
             for k in np.unique(note[both]) if ((note == k) & both).sum() >= 5]
    assert len(diffs) >= 5
    assert np.ptp(diffs) < 2.0, diffs  # one common shift (the median): exact per note.
    assert np.abs(np.asarray(diffs) - np.median(diffs)).max() < 2.0
    assert np.abs(want[both]).max() > 20.0


def test_transposition_tempo_and_octave_errors_leave_no_deviation(contours):
  e = _errors(4, key_shift_cents=370.0, tempo_ratio=1.07)
  r = _apply(jax.random.PRNGKey(3), contours, e)
  x = _channels(contours, r)
  both = (x[:, 2] > 0) & (x[:, 3] > 0)
  assert np.abs(x[:, 0][both]).max() < 0.02  # < 2 cents.
  assert np.abs(x[:, 4]).max() < 0.05 and np.abs(x[:, 5]).max() < 0.05
  octave = r._replace(cents=jnp.where(r.cents > 0, r.cents + 1200.0, 0.0))
  np.testing.assert_allclose(_channels(contours, octave)[:, 0], x[:, 0], atol=1e-3)


def test_onset_shifts_show_in_the_timing_channels_only(contours):
  e = _errors(4, onset_jitter_seconds=0.12)
  r = _apply(jax.random.PRNGKey(4), contours, e)
  x = _channels(contours, r)
  assert float(np.abs(x[:, 4]).max()) > 0.1  # > 20 ms of residual somewhere.
  both = (x[:, 2] > 0) & (x[:, 3] > 0)
  assert np.median(np.abs(x[:, 0][both])) < 0.01


def test_entry_errors_off_never_draws_an_entry():
  keys = jax.random.split(jax.random.PRNGKey(0), 64)
  on = jax.vmap(lambda k: cd.sample_errors(k, active_prob=1.0))(keys)
  off = jax.vmap(lambda k: cd.sample_errors(k, active_prob=1.0, entry_errors=False))(keys)
  assert np.abs(np.asarray(on.entry_offset_seconds)).max() > 0.1
  np.testing.assert_array_equal(off.entry_offset_seconds, 0.0)
  np.testing.assert_array_equal(off.detune_cents, on.detune_cents)


def test_self_aligned_reference_is_all_zero_deviation(contours):
  x = np.asarray(aligned_input.aligned_channels(
      *aligned_input.self_aligned(contours.cents)))
  assert x.shape == (4, aligned_input.CHANNELS, FRAMES)
  np.testing.assert_array_equal(x[:, [0, 1, 4, 5]], 0.0)
  np.testing.assert_array_equal(x[:, 2], x[:, 3])


def _melody(seed, n_notes=30):
  rng = np.random.default_rng(seed)
  pitch = 6000.0 + 100.0 * np.cumsum(rng.integers(-3, 4, n_notes))
  return np.concatenate([np.full(int(rng.integers(20, 40)), p) for p in pitch])


def test_real_pair_windows_align_a_transposed_slower_performance():
  ref = _melody(1)
  # The same melody 300 cents up, 25% slower (nearest-frame stretch), 0.5 s late.
  idx = np.floor(np.arange(int(len(ref) * 1.25)) / 1.25).astype(int)
  perf = np.concatenate([np.zeros(50), ref[idx] + 300.0])
  r, p, off = aligned_input.real_pair_windows(perf, ref, 320)
  assert r.shape == p.shape == off.shape == (int(np.ceil(len(ref) / 320)), 320)
  x = np.asarray(aligned_input.aligned_channels(r, p, off))
  both = (x[:, 2] > 0) & (x[:, 3] > 0)
  assert both.mean() > 0.9
  # Within 5 cents except near note changes (the smoothed warp is 0.2 s wide).
  assert np.mean(np.abs(x[:, 0][both]) < 0.05) > 0.9
  assert np.percentile(np.abs(x[:, 4]), 95) < 0.5  # < 0.1 s residual.
  # A wrong note a semitone sharp shows as +100 cents on that note.
  bad = perf.copy()
  bad[50 + 200:50 + 240] += 100.0
  x_bad = np.asarray(aligned_input.aligned_channels(
      *aligned_input.real_pair_windows(bad, ref, 320)))
  assert (np.abs(x_bad[:, 0] - 1.0) < 0.1).sum() >= 20


def test_real_pair_windows_refuse_a_silent_performance():
  with pytest.raises(ValueError, match="performance"):
    aligned_input.real_pair_windows(np.zeros(400), _melody(2), 320)


def test_timing_off_zeroes_only_the_timing_channels(contours):
  r = _apply(jax.random.PRNGKey(6), contours, _errors(4, onset_jitter_seconds=0.1,
                                                      detune_cents=30.0))
  arrays = aligned_input.from_degradation(contours.cents, r.cents, r.time_map_frames)
  on = np.asarray(aligned_input.aligned_channels(*arrays))
  off = np.asarray(aligned_input.aligned_channels(*arrays, timing=False))
  np.testing.assert_array_equal(off[:, [4, 5]], 0.0)
  assert np.abs(on[:, 4]).max() > 0.05
  np.testing.assert_array_equal(off[:, [0, 1, 2, 3, 6]], on[:, [0, 1, 2, 3, 6]])
