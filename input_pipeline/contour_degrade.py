"""Labelled degradations of clean f0 contours, on the device (issue 18, section 3).

The error families of `input_pipeline/corpora/degrade.py` (the WORLD-vocoder corpus), applied
directly to a pitch contour in cents at 10 ms frames inside a jitted function, with
the SAME label formula and constants:

  pitch errors   per-note detune, wrong notes (100 or 200 cents), drift away from the
                 key, slow random wander ("jitter"), scoops into notes, vibrato
                 flattened or exaggerated;
  timing errors  note onsets moved (one monotone piecewise-linear time map through the
                 displaced onsets), rushing or dragging (a tempo ramp), early or late
                 entry;
  not errors     the pitch tracker's octave errors and dropouts, a transposition, a
                 global tempo change, a loudness change (when an energy track is given),
                 rubato (a smooth time deviation).

    P = mean over notes of min(mean |pitch change| in the note, 300 cents);
    T = mean over notes of |new onset - rubato(onset) x tempo ratio| (seconds);
    score = 100 clip(1 - P / 200 - T / 0.5, 0, 1)   (V = 0: no voice errors here).

`degrade.label` rounds to 0.1; this label is not rounded (exact in float32).

Deviations from degrade.py, decided for the device (BUILD_NOTES.md, issue 18):
  * the onset displacement of note k is clipped to 30% of the gaps to its neighbours
    (degrade.py clips sequentially, a host loop); the time map is linear between the
    displaced onsets (degrade.py: PCHIP), so it stays monotone without a scan;
  * the vibrato is the pitch minus its 150 ms moving average over frames of the same
    note (degrade.py pads the note's edges);
  * drift reaches `drift_cents` at the end of the window, not of the recording.

Every function works on one contour; `degrade_batch` vmaps them. All randomness comes
from the key, one key per row (`jax.random.split`), so a row's result does not depend
on the batch size, its sharding or the number of devices/processes.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from input_pipeline.corpora.degrade import (NOTE_ERROR_CAP_CENTS, PITCH_FULL_SCALE_CENTS,
                                    TIMING_FULL_SCALE_SECONDS)

FRAME_SECONDS = 0.01  # 10 ms frames.
SCOOP_SECONDS = 0.12  # degrade.Degradation.scoop_seconds default.
_JITTER_WIDTH = 10  # 100 ms wander correlation (degrade.py: round(0.1 / fs)).
_VIBRATO_HALF_WIDTH = 7  # 150 ms moving average = 15 frames.
_ONSET_GAP_FRACTION = 0.3  # Keeps the time map monotone for |tempo_drift| <= 0.3.
_NOISE_RUNS = 4  # Candidate octave-error / dropout runs per contour.
_RUBATO_WIDTH = 150  # 1.5 s: rubato moves phrases, not single notes.


class Contour(NamedTuple):
  """One clean contour (or a batch: every field gets a leading (B,) axis).

  Attributes:
    cents: float32 (T,) pitch in cents (MIDI x 100), 0 where unvoiced; 10 ms frames.
    voiced: float32 (T,) 1 = voiced, 0 = unvoiced (or padding).
    note: int32 (T,) note index in [0, N) of each frame; N for unvoiced frames.
    onset: int32 (N,) onset frame of each note, ascending; T for absent notes.
    energy_db: float32 (T,) frame energy in dB, or None.
  """
  cents: jnp.ndarray
  voiced: jnp.ndarray
  note: jnp.ndarray
  onset: jnp.ndarray
  energy_db: jnp.ndarray | None = None


class Errors(NamedTuple):
  """Degradation magnitudes of one contour (scalars), as `degrade.Degradation`.

  Errors: detune_cents (>= 0), wrong_note_prob [0, 1], drift_cents (signed),
  jitter_cents (>= 0), scoop_cents (>= 0), vibrato_scale (>= 0; 1 = unchanged),
  onset_jitter_seconds (>= 0), tempo_drift [-0.3, 0.3], entry_offset_seconds (signed).
  Label-neutral: key_shift_cents, tempo_ratio (output / input duration), octave_prob
  and dropout_prob (probability of each of 4 candidate runs), gain_db,
  rubato_seconds (std of a smooth, 1.5 s correlated time deviation: expressive
  timing that the label does not count, as the per-note feedback tolerates rubato).
  """
  detune_cents: jnp.ndarray
  wrong_note_prob: jnp.ndarray
  drift_cents: jnp.ndarray
  jitter_cents: jnp.ndarray
  scoop_cents: jnp.ndarray
  vibrato_scale: jnp.ndarray
  onset_jitter_seconds: jnp.ndarray
  tempo_drift: jnp.ndarray
  entry_offset_seconds: jnp.ndarray
  key_shift_cents: jnp.ndarray
  tempo_ratio: jnp.ndarray
  octave_prob: jnp.ndarray
  dropout_prob: jnp.ndarray
  gain_db: jnp.ndarray
  rubato_seconds: jnp.ndarray


def no_errors(**overrides) -> Errors:
  """Errors with nothing applied (float32 scalars), fields in `overrides` set."""
  base = dict(detune_cents=0.0, wrong_note_prob=0.0, drift_cents=0.0, jitter_cents=0.0,
              scoop_cents=0.0, vibrato_scale=1.0, onset_jitter_seconds=0.0,
              tempo_drift=0.0, entry_offset_seconds=0.0, key_shift_cents=0.0,
              tempo_ratio=1.0, octave_prob=0.0, dropout_prob=0.0, gain_db=0.0,
              rubato_seconds=0.0)
  unknown = set(overrides) - set(base)
  if unknown:
    raise ValueError(f"unknown Errors fields {sorted(unknown)}")
  base.update(overrides)
  return Errors(**{k: jnp.float32(v) for k, v in base.items()})


class Result(NamedTuple):
  """A degraded contour and its exact label (per row; batched: leading (B,)).

  Attributes:
    cents, voiced: float32 (T,) degraded contour (output time, 10 ms frames).
    energy_db: float32 (T,) or None.
    score: float32 () label 0..100 (module docstring).
    pitch_error_cents: float32 () P.
    timing_error_seconds: float32 () T.
    note_offsets_cents: float32 (N,) constant per-note offset (detune + wrong note).
    change_cents: float32 (T,) pitch change in SOURCE time (errors only).
    time_map_frames: float32 (T,) the output frame (fractional, at 100 Hz) of each
      source frame: the exact alignment of the degraded contour to the clean one.
  """
  cents: jnp.ndarray
  voiced: jnp.ndarray
  energy_db: jnp.ndarray | None
  score: jnp.ndarray
  pitch_error_cents: jnp.ndarray
  timing_error_seconds: jnp.ndarray
  note_offsets_cents: jnp.ndarray
  change_cents: jnp.ndarray
  time_map_frames: jnp.ndarray


def label(pitch_error_cents: jnp.ndarray, timing_error_seconds: jnp.ndarray
          ) -> jnp.ndarray:
  """degrade.label's "score" without voice errors, unrounded: float32 0..100."""
  v = 1.0 - pitch_error_cents / PITCH_FULL_SCALE_CENTS - (
      timing_error_seconds / TIMING_FULL_SCALE_SECONDS)
  return 100.0 * jnp.clip(v, 0.0, 1.0)


def sample_errors(key: jax.Array, *, active_prob: float = 0.4,
                  entry_errors: bool = True, max_rubato_seconds: float = 0.0
                  ) -> Errors:
  """Random Errors for one contour: each error family is present with probability
  `active_prob`, with a magnitude uniform in its range; label-neutral noise always.
  `entry_errors=False` never draws an early or late entry (for aligned inputs, where
  the performance's time origin is not comparable with the reference's).
  Rubato (label-neutral) is uniform in 0..max_rubato_seconds, always present.

  Ranges (BUILD_NOTES.md, issue 18): detune 0-80 cents, wrong notes 0-0.3, drift
  +-0-150 cents, wander 0-40 cents, scoops 0-250 cents, vibrato x0-2.5, onset jitter
  0-0.15 s, tempo drift +-0-0.3, entry +-0-0.4 s; key +-600 cents, tempo ratio
  0.9-1.1, octave errors / dropouts 0-0.5 per run, gain +-10 dB.
  """
  ks = jax.random.split(key, 32)
  u = lambda i, lo, hi: jax.random.uniform(ks[i], (), jnp.float32, lo, hi)
  on = lambda i: (jax.random.uniform(ks[12 + i], ()) < active_prob).astype(jnp.float32)
  sign = lambda i: jnp.where(jax.random.uniform(ks[24 + i], ()) < 0.5, -1.0, 1.0)
  return Errors(
      detune_cents=on(0) * u(0, 0.0, 80.0),
      wrong_note_prob=on(1) * u(1, 0.0, 0.3),
      drift_cents=on(2) * sign(0) * u(2, 0.0, 150.0),
      jitter_cents=on(3) * u(3, 0.0, 40.0),
      scoop_cents=on(4) * u(4, 0.0, 250.0),
      vibrato_scale=1.0 + on(5) * (u(5, 0.0, 2.5) - 1.0),
      onset_jitter_seconds=on(6) * u(6, 0.0, 0.15),
      tempo_drift=on(7) * sign(1) * u(7, 0.0, 0.3),
      entry_offset_seconds=on(8) * sign(2) * u(8, 0.0, 0.4) * float(entry_errors),
      key_shift_cents=u(9, -600.0, 600.0),
      tempo_ratio=u(10, 0.9, 1.1),
      octave_prob=u(11, 0.0, 0.5),
      dropout_prob=jax.random.uniform(ks[30], (), jnp.float32, 0.0, 0.5),
      gain_db=jax.random.uniform(ks[31], (), jnp.float32, -10.0, 10.0),
      rubato_seconds=jax.random.uniform(ks[27], (), jnp.float32, 0.0,
                                        1.0) * max_rubato_seconds)


def _segment_mean(values: jnp.ndarray, note: jnp.ndarray, n: int) -> jnp.ndarray:
  """(N,) mean of `values` (T,) over each note's frames (0 for empty notes)."""
  s = jax.ops.segment_sum(values, note, num_segments=n + 1)[:n]
  c = jax.ops.segment_sum(jnp.ones_like(values), note, num_segments=n + 1)[:n]
  return s / jnp.maximum(c, 1.0)


def smooth_noise(key: jax.Array, n: int, width: int) -> jnp.ndarray:
  """Unit-variance noise (n,), moving-average smoothed over `width` frames."""
  x = jax.random.normal(key, (n + width - 1,), jnp.float32)
  y = jnp.convolve(x, jnp.ones((width,), jnp.float32) / width, mode="valid")
  return y / jnp.maximum(jnp.std(y), 1e-6)


def _vibrato(cents: jnp.ndarray, note: jnp.ndarray) -> jnp.ndarray:
  """Pitch minus its 150 ms moving average over frames of the same note (T,)."""
  t = cents.shape[0]
  h = _VIBRATO_HALF_WIDTH
  pad_c = jnp.pad(cents, (h, h))
  pad_n = jnp.pad(note, (h, h), constant_values=-1)
  total = jnp.zeros_like(cents)
  count = jnp.zeros_like(cents)
  for k in range(2 * h + 1):
    same = (jax.lax.dynamic_slice(pad_n, (k,), (t,)) == note).astype(jnp.float32)
    total = total + same * jax.lax.dynamic_slice(pad_c, (k,), (t,))
    count = count + same
  return cents - total / jnp.maximum(count, 1.0)


def _runs(key: jax.Array, t: int, prob: jnp.ndarray) -> jnp.ndarray:
  """(T,) bool: up to _NOISE_RUNS runs of 3-25 frames, each present w.p. `prob`."""
  k1, k2, k3 = jax.random.split(key, 3)
  start = jax.random.randint(k1, (_NOISE_RUNS,), 0, t)
  length = jax.random.randint(k2, (_NOISE_RUNS,), 3, 26)
  present = jax.random.uniform(k3, (_NOISE_RUNS,)) < prob
  i = jnp.arange(t)[:, None]
  return jnp.any(present & (i >= start) & (i < start + length), axis=1)


def degrade_contour(key: jax.Array, contour: Contour, errors: Errors) -> Result:
  """Applies `errors` to one clean contour (pitch edits in source time, then one
  monotone time map, then label-neutral tracker noise).

  Args:
    key: a PRNG key (all randomness: signs, wrong notes, wander, onset shifts, noise).
    contour: one Contour (T frames, N note slots).
    errors: one Errors (scalars).

  Returns:
    Result (output length = T frames: a tempo change or a late entry pushes the end
    out of the window, an early entry or faster tempo leaves it unvoiced; the label
    counts every note of the source window, as degrade.py counts the recording's).
  """
  cents, voiced, note, onset = contour[:4]
  t_len = cents.shape[0]
  n = onset.shape[0]
  fs = FRAME_SECONDS
  k = jax.random.split(key, 10)
  valid = (onset < t_len).astype(jnp.float32)  # (N,)
  voiced = voiced.astype(jnp.float32)
  note = jnp.where(voiced > 0, note, n).astype(jnp.int32)
  in_note = note < n
  note_c = jnp.minimum(note, n - 1)

  # --- Pitch errors (cents, source time). ---------------------------------------
  sign1 = jnp.where(jax.random.uniform(k[0], (n,)) < 0.5, -1.0, 1.0)
  mag = jax.random.uniform(k[1], (n,), jnp.float32, 0.5, 1.5)
  wrong = jax.random.uniform(k[2], (n,)) < errors.wrong_note_prob
  sign2 = jnp.where(jax.random.uniform(k[3], (n,)) < 0.5, -1.0, 1.0)
  size2 = jnp.where(jax.random.uniform(k[4], (n,)) < 0.5, 100.0, 200.0)
  offsets = (sign1 * mag * errors.detune_cents + wrong * sign2 * size2) * valid
  change = jnp.where(in_note, offsets[note_c], 0.0)
  frames = jnp.arange(t_len)
  pos = frames - onset[note_c]
  note_len = jax.ops.segment_sum(jnp.ones((t_len,), jnp.float32), note,
                                 num_segments=n + 1)[:n]
  m = jnp.minimum(note_len[note_c], round(SCOOP_SECONDS / fs))
  ramp = jnp.clip(1.0 - pos / jnp.maximum(m, 1.0), 0.0, 1.0) ** 2
  change = change - jnp.where(in_note & (pos < m), errors.scoop_cents * ramp, 0.0)
  change = change + errors.drift_cents * frames / max(t_len - 1, 1)
  change = change + errors.jitter_cents * smooth_noise(k[5], t_len, _JITTER_WIDTH)
  change = change + (errors.vibrato_scale - 1.0) * jnp.where(
      in_note, _vibrato(cents, note), 0.0)
  change = change * voiced
  note_err = _segment_mean(jnp.abs(change), note, n)
  n_valid = jnp.maximum(jnp.sum(valid), 1.0)
  p_err = jnp.sum(jnp.minimum(note_err, NOTE_ERROR_CAP_CENTS) * valid) / n_valid
  src_cents = (cents + change + errors.key_shift_cents) * voiced

  # --- Time map: source seconds -> output seconds. -------------------------------
  t = frames * fs
  dur = max((t_len - 1) * fs, fs)
  # Rubato: a smooth monotone warp of source time that the label does not count.
  # It starts at 0 and never runs before it (the onset clips assume times >= 0).
  wobble = smooth_noise(jax.random.fold_in(key, 11), t_len, _RUBATO_WIDTH)
  tr = jnp.maximum(jax.lax.cummax(t + errors.rubato_seconds * (wobble - wobble[0])),
                   0.0)
  a = errors.tempo_drift
  a_safe = jnp.where(jnp.abs(a) < 1e-6, 1.0, a)
  g1 = jnp.where(jnp.abs(a) < 1e-6, tr, dur / a_safe * jnp.log1p(a_safe * tr / dur))
  on = onset * fs
  g1_on = jnp.interp(on, t, g1)
  prev = jnp.concatenate([jnp.zeros((1,)), g1_on[:-1]])
  nxt = jnp.concatenate([g1_on[1:], g1[-1:]])
  nxt = jnp.where(jnp.concatenate([valid[1:], jnp.zeros((1,))]) > 0, nxt, g1[-1])
  shift = jnp.clip(errors.onset_jitter_seconds * jax.random.normal(k[6], (n,)),
                   -_ONSET_GAP_FRACTION * (g1_on - prev),
                   _ONSET_GAP_FRACTION * (nxt - g1_on)) * valid
  # Displacement anchors: 0 before the start and after the end; absent notes sit
  # beyond the end (distinct, increasing) with no displacement.
  pad_x = t[-1] + fs * (1.0 + jnp.arange(n))
  xp = jnp.concatenate([jnp.array([-fs]), jnp.where(valid > 0, on, pad_x),
                        jnp.array([t[-1] + fs * (n + 1.5)])])
  order = jnp.argsort(xp)
  xp = xp[order]
  fp = jnp.concatenate([jnp.zeros((1,)), shift, jnp.zeros((1,))])[order]
  g = jax.lax.cummax(g1 + jnp.interp(t, xp, fp))
  g = g * errors.tempo_ratio
  first_on = jnp.where(jnp.sum(valid) > 0, on[0], 0.0)
  entry = jnp.where(errors.entry_offset_seconds < 0,
                    jnp.maximum(errors.entry_offset_seconds,
                                -jnp.maximum(first_on - 0.05, 0.0)),
                    errors.entry_offset_seconds)
  g = g + entry
  new_on = jnp.interp(on, t, g)
  onset_err = (new_on - jnp.interp(on, t, tr) * errors.tempo_ratio) * valid
  t_err = jnp.sum(jnp.abs(onset_err)) / n_valid

  # --- Resample to the output grid (nearest source frame). -------------------------
  src_t = jnp.interp(t, g, t, left=-1.0, right=-1.0)
  inside = src_t >= 0
  idx = jnp.clip(jnp.round(src_t / fs).astype(jnp.int32), 0, t_len - 1)
  out_voiced = jnp.where(inside, voiced[idx], 0.0)
  out_cents = jnp.where(inside, src_cents[idx], 0.0)

  # --- Label-neutral tracker noise: octave errors, dropouts; loudness. --------------
  octave = _runs(k[7], t_len, errors.octave_prob)
  octave_sign = jnp.where(jax.random.uniform(k[8], ()) < 0.5, -1200.0, 1200.0)
  out_cents = jnp.where(octave, out_cents + octave_sign, out_cents)
  out_voiced = out_voiced * (1.0 - _runs(k[9], t_len, errors.dropout_prob))
  out_cents = out_cents * out_voiced
  energy = None
  if contour.energy_db is not None:
    energy = jnp.where(inside, contour.energy_db[idx], contour.energy_db.min())
    energy = energy + errors.gain_db
  return Result(cents=out_cents, voiced=out_voiced, energy_db=energy,
                score=label(p_err, t_err), pitch_error_cents=p_err,
                timing_error_seconds=t_err, note_offsets_cents=offsets,
                change_cents=change, time_map_frames=g / fs)


def degrade_batch(key: jax.Array, contours: Contour, errors: Errors | None = None,
                  *, active_prob: float = 0.4, row_ids: jnp.ndarray | None = None,
                  entry_errors: bool = True, max_rubato_seconds: float = 0.0
                  ) -> tuple[Errors, Result]:
  """vmap of `degrade_contour` over a batch (B rows), one key per row.

  Args:
    key: PRNG key of the batch; row i uses fold_in(key, row_ids[i]), so row i's
      result does not depend on B, on the sharding, or on the process count.
    contours: Contour with a leading (B,) axis on every field.
    errors: batched Errors, or None to draw them (`sample_errors`, per row).
    active_prob, entry_errors, max_rubato_seconds: see `sample_errors`.
    row_ids: (B,) integer-valued ids of the rows (default: 0..B-1), e.g. pool
      indices so that a validation window gets the same errors in every batch.

  Returns:
    (the batched Errors used, the batched Result).
  """
  b = contours.cents.shape[0]
  ids = jnp.arange(b) if row_ids is None else jnp.asarray(row_ids).astype(jnp.int32)
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(ids)
  if errors is None:
    ekeys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(keys)
    errors = jax.vmap(lambda k: sample_errors(
        k, active_prob=active_prob, entry_errors=entry_errors,
        max_rubato_seconds=max_rubato_seconds))(ekeys)
  return errors, jax.vmap(degrade_contour)(keys, contours, errors)
