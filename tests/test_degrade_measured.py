"""input_pipeline.corpora.degrade, measured in its output (issue 22, item 1).

Every error type is applied to a real MIR-1K vocal and measured independently of
`Applied`: on the WORLD parameters `degrade` returns (what synthesis reads) and on the
resynthesised audio with a second analysis (pyworld DIO + StoneMask for f0, Praat's
harmonicity through parselmouth, frame RMS in dB, MFCC + librosa DTW for timing).
Each measurement is compared with what `Applied` records, with a stated tolerance.
A `degrade()` that records an error without applying it fails here.

The first section checks each edit exactly (to rounding error) on synthetic WORLD
parameters, against its definition in `Degradation` and against `Applied`: the drawn
sizes, signs and ranges, glide shapes, time maps and bounds (issue 22, item 7: the
mutation score of these edits).
"""

import os

import numpy as np
import pytest

from input_pipeline.corpora import degrade as dg
from tests.conftest import require_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIP = os.path.join(ROOT, "..", "shared", "data", "mir1k", "voice", "Ani_1_01.opus")
SR = 16000
FRAME = dg.FRAME_PERIOD_MS / 1000.0  # 5 ms.
MFCC_HOP = 80  # 5 ms, for the DTW time map.


def _audio_f0(audio):
  """f0 in Hz (0 = unvoiced) every 5 ms: DIO + StoneMask, not degrade.analyse."""
  import pyworld  # pylint: disable=g-import-not-at-top
  x = np.asarray(audio, np.float64)
  f0, t = pyworld.dio(x, SR, f0_floor=65.0, f0_ceil=1100.0,
                      frame_period=dg.FRAME_PERIOD_MS)
  return pyworld.stonemask(x, f0, t, SR)


def _cents(f_out, f_ref):
  """Per-frame 1200 log2(f_out / f_ref), NaN where either is unvoiced."""
  n = min(len(f_out), len(f_ref))
  a, b = np.asarray(f_out[:n], np.float64), np.asarray(f_ref[:n], np.float64)
  c = np.full(n, np.nan)
  ok = (a > 0) & (b > 0)
  c[ok] = 1200.0 * np.log2(a[ok] / b[ok])
  return c


def _mfcc(audio):
  import librosa  # pylint: disable=g-import-not-at-top
  return librosa.feature.mfcc(y=np.asarray(audio, np.float32), sr=SR, n_mfcc=20,
                              hop_length=MFCC_HOP, n_fft=512)[1:]


def _rms_db(audio, win=400, hop=80):
  """Frame RMS in dB (25 ms windows every 5 ms)."""
  x = np.asarray(audio, np.float64)
  n = 1 + (len(x) - win) // hop
  frames = np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]
  return 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def _hnr_db(audio):
  """Mean harmonics-to-noise ratio (dB) of the voiced frames, Praat's cc method."""
  import parselmouth  # pylint: disable=g-import-not-at-top
  h = parselmouth.Sound(np.asarray(audio, np.float64), SR).to_harmonicity_cc()
  v = h.values[0]
  return float(np.mean(v[v > -100]))  # Praat marks unvoiced frames -200 dB.


@pytest.fixture(scope="module")
def voice():
  """Dict: WORLD params of a 9 s real vocal, its undegraded resynthesis and
  measurements of that resynthesis."""
  require_data(CLIP, "real singing data")
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  audio, sr = sf.read(CLIP, dtype="float32")
  assert sr == SR
  params = dg.analyse(audio, sr, f0_method="dio")
  clean_params, _ = dg.degrade(params, dg.Degradation(), np.random.default_rng(0))
  clean = dg.synthesise(clean_params)
  return {"params": params, "clean": clean, "f0": _audio_f0(clean),
          "mfcc": _mfcc(clean), "rms_db": _rms_db(clean), "hnr": _hnr_db(clean)}


def _run(voice, seed=5, **fields):
  out, applied = dg.degrade(voice["params"], dg.Degradation(**fields),
                            np.random.default_rng(seed))
  return out, applied, dg.synthesise(out)


def _long_notes(applied, min_frames=20):
  return [(i, a, b) for i, (a, b) in enumerate(applied.notes) if b - a >= min_frames]


def _check_note_errors(params, out, applied):
  """Applied's per-note pitch error is the mean |cent change| the output WORLD f0
  really has in that note (no time map: the frames line up)."""
  assert out.num_frames == params.num_frames
  c = _cents(out.f0, params.f0)
  measured = np.array([np.nanmean(np.abs(c[a:b])) for a, b in applied.notes])
  np.testing.assert_allclose(measured, applied.note_pitch_errors_cents, atol=0.01)


# --- Each edit exactly, on synthetic WORLD parameters (issue 22, item 7). -------------
# A synthetic track (constant 220 Hz notes between unvoiced gaps, one note per voiced
# stretch) has no analysis noise, so each edit is compared with its definition and
# with `Applied` to rounding error. Bin 0 of its spectral envelope holds the source
# frame's number + 1, so every output frame says which source frame it was taken from
# (while no gain or shimmer is applied).


def _track(n, voiced, bins=4):
  """Synthetic WorldParams: n frames, 220 Hz on the [a, b) frame ranges in `voiced`,
  unvoiced elsewhere; sp[:, 0] = frame + 1, the other bins 1; ap 0.2."""
  f0 = np.zeros(n)
  for a, b in voiced:
    f0[a:b] = 220.0
  sp = np.ones((n, bins))
  sp[:, 0] = 1.0 + np.arange(n)
  return dg.WorldParams(f0=f0, sp=sp, ap=np.full((n, bins), 0.2), sample_rate=SR)


def _source_frames(out):
  """Source frame of each output frame of a `_track` (-1: silence before the entry)."""
  return np.where(out.sp[:, 0] > 0.5, np.round(out.sp[:, 0] - 1.0), -1).astype(int)


def _edit(params, seed=0, **fields):
  out, applied = dg.degrade(params, dg.Degradation(**fields), np.random.default_rng(seed))
  return out, applied


# 80 notes of 20 frames, 5 unvoiced frames apart (10 s).
NOTES80 = [(25 * i + 5, 25 * i + 25) for i in range(80)]


@pytest.mark.parametrize("cents", [1.0, 40.0])
def test_detune_offsets_drawn_in_range_with_both_signs(cents):
  """Each note is shifted by a constant offset of magnitude uniform in [0.5, 1.5] x
  detune_cents, sharp or flat at random (also at detune_cents = 1), as recorded."""
  params = _track(2000, NOTES80)
  out, applied = _edit(params, detune_cents=cents)
  c = _cents(out.f0, params.f0)
  off = applied.note_offsets_cents
  for (a, b), o in zip(applied.notes, off):
    np.testing.assert_allclose(c[a:b], o, atol=1e-9)
  np.testing.assert_allclose(applied.note_pitch_errors_cents, np.abs(off), atol=1e-9)
  size = np.abs(off) / cents
  assert np.all((size >= 0.5) & (size <= 1.5))
  # Uniform over the whole range (80 draws): mean 1 (std of the mean 0.03), both ends.
  assert np.mean(size) == pytest.approx(1.0, abs=0.1)
  assert size.min() < 0.6 and size.max() > 1.4
  assert abs(np.mean(off > 0) - 0.5) <= 3 * np.sqrt(0.25 / len(off))  # Binomial.


def test_wrong_notes_are_100_or_200_cents_either_way_on_top_of_detune():
  """A wrong note adds +-100 or +-200 cents to the note's detune (it does not replace
  it); both sizes and both directions occur, on about wrong_note_prob of the notes."""
  params = _track(2000, NOTES80)
  out, applied = _edit(params, seed=1, detune_cents=10.0, wrong_note_prob=0.5)
  c = _cents(out.f0, params.f0)
  off = applied.note_offsets_cents
  for (a, b), o in zip(applied.notes, off):
    np.testing.assert_allclose(c[a:b], o, atol=1e-9)
  wrong = 100.0 * np.round(off / 100.0)
  detune = np.abs(off - wrong)
  assert np.all((detune >= 5.0 - 1e-9) & (detune <= 15.0 + 1e-9))
  assert set(np.abs(wrong)) == {0.0, 100.0, 200.0}
  assert (wrong > 0).any() and (wrong < 0).any()
  assert abs(np.mean(wrong != 0) - 0.5) <= 3 * np.sqrt(0.25 / len(off))


@pytest.mark.parametrize("depth,glide", [(1.0, 0.05), (120.0, 0.005)])
def test_scoop_is_a_quadratic_glide_from_depth_below(depth, glide):
  """Each note starts `depth` cents flat and glides up as (1 - j / m)^2 over its first
  m = scoop_seconds / 5 ms frames (m = 1: only the first frame), or over the whole of
  a shorter note; the rest of the note is in tune."""
  params = _track(400, [(10, 50), (60, 66), (80, 200)])
  out, applied = _edit(params, scoop_cents=depth, scoop_seconds=glide)
  c = _cents(out.f0, params.f0)
  m = int(round(glide / FRAME))
  assert len(applied.notes) == 3
  for a, b in applied.notes:
    k = min(b - a, m)
    np.testing.assert_allclose(c[a:a + k], -depth * (1.0 - np.arange(k) / k) ** 2,
                               atol=1e-9)
    np.testing.assert_allclose(c[a + k:b], 0.0, atol=1e-9)
  _check_note_errors(params, out, applied)


def test_drift_is_linear_to_the_last_frame_and_adds_to_detune():
  """Drift is drift_cents x frame / (T - 1): 0 at the first frame, the full drift at
  the last one (also for a two-frame track), added to each note's detune."""
  for n, drift in ((50, 80.0), (2, 80.0), (2000, -60.0)):
    params = _track(n, [(0, n)])
    out, _ = _edit(params, drift_cents=drift)
    np.testing.assert_allclose(_cents(out.f0, params.f0),
                               drift * np.arange(n) / (n - 1), atol=1e-9)
  params = _track(2000, NOTES80)
  out, applied = _edit(params, detune_cents=30.0, drift_cents=-60.0)
  c = _cents(out.f0, params.f0)
  ramp = -60.0 * np.arange(2000) / 1999
  for (a, b), o in zip(applied.notes, applied.note_offsets_cents):
    np.testing.assert_allclose(c[a:b], o + ramp[a:b], atol=1e-9)
  _check_note_errors(params, out, applied)


def test_jitter_is_a_unit_std_100ms_wander_on_top_of_detune():
  """The wander has std jitter_cents over the recording (also at 1 cent), is a 100 ms
  (20-frame) moving average of white noise (first differences std sqrt(2 / 20) of
  its std), and adds to the note offsets."""
  n = 20000
  params = _track(n, [(0, n)])
  out, applied = _edit(params, jitter_cents=1.0, detune_cents=100.0)
  wander = _cents(out.f0, params.f0) - applied.note_offsets_cents[0]
  assert np.std(wander) == pytest.approx(1.0, abs=1e-9)
  assert abs(np.mean(wander)) < 0.2  # Smoothed noise of mean 0 (std 0.03 here).
  assert np.std(np.diff(wander)) == pytest.approx(np.sqrt(2.0 / 20.0), rel=0.05)
  # A one-frame recording (no std to normalise by) stays finite.
  one = _track(1, [(0, 1)])
  out, _ = _edit(one, jitter_cents=20.0, loudness_wobble_db=3.0)
  assert np.isfinite(out.f0).all() and np.isfinite(out.sp).all() and out.f0[0] > 0


def test_vibrato_change_is_scale_minus_one_times_the_defined_vibrato():
  """The vibrato change is (vibrato_scale - 1) x (pitch in cents minus its 150 ms
  edge-padded moving average, per note), added to the note's detune."""
  n = 600
  t = np.arange(n) * FRAME
  params = _track(n, [(20, 280), (300, 580)])
  f0 = np.where(params.f0 > 0,
                220.0 * 2.0 ** (40.0 * np.sin(2 * np.pi * 5.5 * t) / 1200.0), 0.0)
  params = dg.WorldParams(f0=f0, sp=params.sp, ap=params.ap, sample_rate=SR)
  for scale in (0.0, 2.0):
    out, applied = _edit(params, vibrato_scale=scale, detune_cents=30.0)
    assert len(applied.notes) == 2
    c = _cents(out.f0, params.f0)
    w = int(round(0.15 / FRAME))
    for (a, b), o in zip(applied.notes, applied.note_offsets_cents):
      seg = 1200.0 * np.log2(f0[a:b] / 440.0)
      vib = seg - np.convolve(np.pad(seg, (w // 2, w - 1 - w // 2), mode="edge"),
                              np.ones(w) / w, mode="valid")
      assert np.std(vib) > 10.0
      np.testing.assert_allclose(c[a:b], o + (scale - 1.0) * vib, atol=1e-6)
    _check_note_errors(params, out, applied)


@pytest.mark.parametrize("n,ratio", [(120, 1.0), (400, 1.0), (51, 0.94), (2251, 0.94),
                                     (1000, 1.07)])
def test_without_timing_errors_each_output_frame_is_a_source_frame(n, ratio):
  """No timing error: output frame j is source frame round(j / tempo_ratio), from the
  first frame to the last (which is kept: the output ends at (T - 1) x ratio), for
  short tracks too. The lengths are float edge cases: at 120 and 400 frames the end
  time / 5 ms is just under a whole number; at 51 and 2251 frames x 0.94 the last
  frame's time k x 5 ms rounds to just past the end."""
  params = _track(n, [(10, n - 10)])
  out, applied = _edit(params, tempo_ratio=ratio)
  last = (n - 1) * ratio
  assert out.num_frames == int(np.floor(last + 1e-6)) + 1
  expected = np.round(np.arange(out.num_frames) / ratio).astype(int)
  np.testing.assert_array_equal(_source_frames(out), expected)
  np.testing.assert_array_equal(out.f0, params.f0[expected])
  np.testing.assert_array_equal(out.ap, params.ap[expected])
  np.testing.assert_allclose(applied.onset_errors_seconds, 0.0, atol=1e-9)


def test_late_entry_is_digital_silence_and_early_entry_eats_only_leading_silence():
  """A late entry puts entry / 5 ms frames of digital silence (f0 0, sp 1e-12, ap 1)
  first; an early one drops leading frames, but never past 50 ms before the first
  onset; with no note at all nothing limits it."""
  params = _track(400, [(100, 160), (300, 360)])  # First onset 0.5 s.
  out, applied = _edit(params, entry_offset_seconds=0.1)
  src = _source_frames(out)
  assert np.all(src[:20] == -1) and np.all(out.f0[:20] == 0.0)
  np.testing.assert_array_equal(out.sp[:20], dg._SILENCE_POWER)  # pylint: disable=protected-access
  np.testing.assert_array_equal(out.ap[:20], 1.0)
  np.testing.assert_array_equal(src[20:], np.arange(400))
  np.testing.assert_allclose(applied.onset_errors_seconds, 0.1, atol=1e-9)
  for entry, realised in ((-0.2, -0.2), (-0.45, -0.45), (-0.8, -0.45), (-5.0, -0.45)):
    out, applied = _edit(params, entry_offset_seconds=entry)
    np.testing.assert_allclose(applied.onset_errors_seconds, realised, atol=1e-9)
    k = int(round(-realised / FRAME))
    np.testing.assert_array_equal(_source_frames(out), np.arange(k, 400))
  silent = _track(400, [])
  out, applied = _edit(silent, entry_offset_seconds=-0.2)
  np.testing.assert_array_equal(_source_frames(out), np.arange(40, 400))
  assert applied.notes == ()
  # Entered before its whole length: one frame, silence.
  out, _ = _edit(silent, entry_offset_seconds=-5.0)
  assert out.num_frames == 1 and out.f0[0] == 0.0 and _source_frames(out)[0] == -1


def test_tempo_drift_follows_the_integral_of_the_tempo_ramp():
  """Without onset jitter, tempo_drift a maps source time t to (D / a) ln(1 + a t / D),
  D = (T - 1) x 5 ms (local tempo 1 + a t / D): the recorded new onsets and every
  output frame's source frame follow it exactly."""
  n = 800
  params = _track(n, [(100, 160), (300, 360), (600, 660)])
  dur = (n - 1) * FRAME
  for a in (0.3, -0.3, 0.5):
    out, applied = _edit(params, tempo_drift=a)
    g = lambda t, a=a: dur / a * np.log1p(a * t / dur)
    np.testing.assert_allclose(applied.new_onsets_seconds, g(applied.onsets_seconds),
                               atol=1e-9)
    assert out.num_frames == int(np.floor(g(dur) / FRAME + 1e-6)) + 1
    tau = np.arange(out.num_frames) * FRAME
    source = dur / a * np.expm1(a * tau / dur)  # The inverse map.
    np.testing.assert_array_equal(_source_frames(out),
                                  np.round(source / FRAME).astype(int))


# 60 notes of 30 frames every 40 frames, the first at frame 0 (12.2 s).
NOTES60 = [(40 * i, 40 * i + 30) for i in range(60)]


def test_onset_jitter_moves_every_note_by_a_centred_normal_draw():
  """Onset jitter sigma (far from the 20 ms bounds here): every onset but the one at
  frame 0 (the map starts at 0) moves by a draw of mean 0 and std sigma; the output
  frame at each new onset is the note's first source frame, and the end stays put."""
  n = 60 * 40 + 40
  params = _track(n, NOTES60)
  sigma = 0.01
  out, applied = _edit(params, seed=4, onset_jitter_seconds=sigma)
  shift = applied.new_onsets_seconds - applied.onsets_seconds
  np.testing.assert_allclose(shift, applied.onset_errors_seconds, atol=1e-12)
  assert shift[0] == 0.0 and np.all(shift[1:] != 0.0)
  assert abs(np.mean(shift[1:])) < 3 * sigma / np.sqrt(59)
  assert np.std(shift[1:]) == pytest.approx(sigma, rel=0.3)
  src = _source_frames(out)
  for (a, _), t_new in zip(applied.notes, applied.new_onsets_seconds):
    assert abs(src[int(round(t_new / FRAME))] - a) <= 1
  assert out.num_frames == n and src[-1] == n - 1


def test_onset_jitter_bounds():
  """Large onset jitter is clipped: each onset stays >= 20 ms after the previous
  note's new onset and <= 20 ms before the next note's old onset (the last: before
  the end); the upper bounds are reached exactly."""
  n = 60 * 40 + 40
  params = _track(n, NOTES60)
  end = (n - 1) * FRAME
  at_upper, last_at_end = 0, 0
  for seed in range(6):
    _, applied = _edit(params, seed=seed, onset_jitter_seconds=1.0)
    new, old = applied.new_onsets_seconds, applied.onsets_seconds
    upper = np.append(old[2:], end) - 0.02
    assert np.all(new[1:] >= new[:-1] + 0.02 - 1e-9)
    assert np.all(new[1:] <= upper + 1e-9)
    at_upper += int(np.sum(np.abs(new[1:] - upper) < 1e-9))
    last_at_end += int(abs(new[-1] - (end - 0.02)) < 1e-9)
  assert at_upper > 50 and last_at_end >= 1


def test_onset_jitter_of_one_note_and_of_notes_at_the_end():
  """One note is displaced too; a note starting at the second-last frame is displaced
  and the output still ends at the last source frame."""
  params = _track(400, [(200, 260)])
  out, applied = _edit(params, seed=2, onset_jitter_seconds=0.05)
  shift = applied.onset_errors_seconds[0]
  assert abs(shift) > 0.005
  k = int(round(applied.new_onsets_seconds[0] / FRAME))
  assert abs(_source_frames(out)[k] - 200) <= 1
  params = _track(400, [(100, 160), (398, 400)])
  for seed in range(3):
    out, applied = _edit(params, seed=seed, onset_jitter_seconds=0.05)
    assert applied.onset_errors_seconds[1] <= -0.015 + 1e-9
    assert out.num_frames == 400 and _source_frames(out)[-1] == 399
  # A note on the very last frame: displaced >= 20 ms earlier, and the output ends
  # with it (it has no frame after it to keep the end).
  params = _track(400, [(100, 160), (399, 400)])
  out, applied = _edit(params, seed=0, onset_jitter_seconds=0.05)
  t_new = applied.new_onsets_seconds[1]
  assert applied.onset_errors_seconds[1] <= -0.02 + 1e-9
  assert out.num_frames == int(np.floor(t_new / FRAME + 1e-6)) + 1


@pytest.mark.parametrize("warp", [0.5, 0.9, 1.1, 1.15, 2.0])
def test_formant_warp_is_linear_interpolation_over_bins(warp):
  """formant_warp w: sp'(f) = sp(f / w) per frame, linear between bins, the edge
  bins held beyond the ends; f0 and frames untouched. (0.9 and 1.1 read between the
  last two bins, 2.0 is not the identity.)"""
  rng = np.random.default_rng(0)
  n, bins = 30, 9
  base = _track(n, [(0, n)], bins=bins)
  sp = np.exp(rng.normal(size=(n, bins)))
  params = dg.WorldParams(f0=base.f0, sp=sp, ap=base.ap, sample_rate=SR)
  out, _ = _edit(params, formant_warp=warp)
  k = np.arange(bins, dtype=np.float64)
  expected = np.stack([np.interp(k / warp, k, row) for row in sp])
  np.testing.assert_allclose(out.sp, expected, rtol=1e-12)
  np.testing.assert_array_equal(out.f0, params.f0)


def test_gain_key_shift_wobble_and_shimmer_exactly():
  """gain_db scales sp by 10^(gain / 10) exactly and key_shift_semitones f0 by
  2^(k / 12); loudness wobble (also at 1 dB) adds a 250 ms (50-frame) smoothed gain of
  std wobble on top of gain_db; roughness r (also at 1 cent) adds frame-rate f0
  jitter of std r cents and a frame-rate gain of std r / 20 dB, also on top."""
  n = 40000
  params = _track(n, [(0, n)])
  out, _ = _edit(params, gain_db=-9.0, key_shift_semitones=3.0)
  np.testing.assert_allclose(out.sp, params.sp * 10.0 ** -0.9, rtol=1e-12)
  np.testing.assert_allclose(out.f0, params.f0 * 2.0 ** 0.25, rtol=1e-12)
  gain = lambda out: 10.0 * np.log10(out.sp[:, 1] / params.sp[:, 1])
  out, _ = _edit(params, gain_db=-9.0, loudness_wobble_db=1.0)
  g = gain(out)
  assert np.std(g) == pytest.approx(1.0, abs=1e-9)
  assert np.mean(g) == pytest.approx(-9.0, abs=0.3)  # Smoothed noise: mean std 0.04.
  assert np.std(np.diff(g)) == pytest.approx(np.sqrt(2.0 / 50.0), rel=0.05)
  np.testing.assert_array_equal(out.f0, params.f0)
  out, applied = _edit(params, gain_db=-9.0, roughness_cents=1.0)
  assert np.std(_cents(out.f0, params.f0)) == pytest.approx(1.0, rel=0.02)
  g = gain(out)
  assert np.std(g) == pytest.approx(1.0 / 20.0, rel=0.02)
  assert np.mean(g) == pytest.approx(-9.0, abs=0.01)
  assert np.all(applied.note_pitch_errors_cents == 0.0)


# --- Pitch errors: on the returned WORLD f0 and on the audio's f0. --------------------


def test_wrong_notes_measured(voice):
  params = voice["params"]
  out, applied, audio = _run(voice, seed=2, wrong_note_prob=0.5)
  c = _cents(out.f0, params.f0)
  per_note = np.array([np.nanmedian(c[a:b]) for a, b in applied.notes])
  # Each note is sung 0, 100 or 200 cents off, exactly as recorded (WORLD f0).
  np.testing.assert_allclose(per_note, applied.note_offsets_cents, atol=0.01)
  assert set(np.abs(np.round(per_note))) <= {0.0, 100.0, 200.0}
  assert {100.0, 200.0} <= set(np.abs(np.round(per_note)))
  n = len(per_note)
  wrong = np.mean(np.abs(per_note) > 50)
  assert abs(wrong - 0.5) <= 3 * np.sqrt(0.25 / n)  # Binomial, 3 sigma.
  _check_note_errors(params, out, applied)
  # And in the audio: the median shift of each long note within 15 cents.
  ca = _cents(_audio_f0(audio), voice["f0"])
  checked = 0
  for i, a, b in _long_notes(applied):
    seg = ca[a + 4:b - 4]
    seg = seg[~np.isnan(seg)]
    if len(seg) >= 5:
      assert np.median(seg) == pytest.approx(applied.note_offsets_cents[i], abs=15.0)
      checked += 1
  assert checked >= 15


@pytest.mark.parametrize("drift", [80.0, -60.0])
def test_drift_measured(voice, drift):
  params = voice["params"]
  out, applied, audio = _run(voice, drift_cents=drift)
  for c, tol in ((_cents(out.f0, params.f0), 0.5),
                 (_cents(_audio_f0(audio), voice["f0"]), 10.0)):
    ok = ~np.isnan(c) & (np.abs(c) < 300)
    slope, start = np.polyfit(np.arange(len(c))[ok], c[ok], 1)
    # The offset grows linearly from 0 to `drift` at the last frame.
    assert slope * (params.num_frames - 1) == pytest.approx(drift, abs=tol)
    assert start == pytest.approx(0.0, abs=tol)
  _check_note_errors(params, out, applied)


@pytest.mark.parametrize("jitter", [15.0, 30.0])
def test_jitter_measured(voice, jitter):
  params = voice["params"]
  out, applied, audio = _run(voice, jitter_cents=jitter)
  c = _cents(out.f0, params.f0)
  assert np.nanstd(c) == pytest.approx(jitter, rel=0.2)
  # A slow wander (about 100 ms), not frame-rate jitter: neighbours agree.
  ok = ~np.isnan(c[1:]) & ~np.isnan(c[:-1])
  assert np.corrcoef(c[1:][ok], c[:-1][ok])[0, 1] > 0.9
  ca = _cents(_audio_f0(audio), voice["f0"])
  ca = ca[~np.isnan(ca) & (np.abs(ca) < 300)]
  assert np.std(ca) == pytest.approx(jitter, rel=0.3)
  _check_note_errors(params, out, applied)


def test_scoop_measured(voice):
  params = voice["params"]
  depth, glide = 120.0, 0.12
  out, applied, audio = _run(voice, scoop_cents=depth, scoop_seconds=glide)
  c = _cents(out.f0, params.f0)
  ca = _cents(_audio_f0(audio), voice["f0"])
  m = int(round(glide / FRAME))
  starts, audio_starts = [], []
  for _, a, b in _long_notes(applied, min_frames=m + 8):
    seg = c[a:a + m]
    if np.isnan(seg).any():
      continue
    # Starts `depth` below, glides up without turning back, ends in tune.
    starts.append(seg[0])
    assert np.all(np.diff(seg) > 0)
    np.testing.assert_allclose(c[a + m:b], 0.0, atol=1e-6)
    audio_starts.append(np.nanmean(ca[a:a + m // 2]))
  assert len(starts) >= 10
  np.testing.assert_allclose(starts, -depth, atol=0.01)
  # In the audio the first half of each glide is clearly flat (mean of a glide
  # (1 - x)^2 over its first half: 7/12 of the depth; the tracker smooths some).
  assert np.nanmedian(audio_starts) == pytest.approx(-depth * 7 / 12, rel=0.35)
  _check_note_errors(params, out, applied)


def _vibrato_band(f0, notes):
  """Vibrato extent: the root of the 4-8 Hz energy (cents) of the detrended pitch
  inside notes of at least 300 ms (Hann window, FFT)."""
  total = 0.0
  for a, b in notes:
    seg = f0[a:b]
    if b - a < 60 or np.any(seg <= 0):
      continue
    c = 1200.0 * np.log2(seg / 440.0)
    x = np.arange(len(c))
    c = (c - np.polyval(np.polyfit(x, c, 1), x)) * np.hanning(len(c))
    freq = np.fft.rfftfreq(len(c), FRAME)
    total += np.sum(np.abs(np.fft.rfft(c)[(freq >= 4.0) & (freq <= 8.0)]) ** 2)
  return float(np.sqrt(total))


@pytest.mark.parametrize("scale", [0.0, 2.0])
def test_vibrato_measured(voice, scale):
  params = voice["params"]
  out, applied, audio = _run(voice, vibrato_scale=scale)
  # WORLD f0: the change is (scale - 1) x the vibrato as defined (pitch minus its
  # 150 ms moving average, per note), fitted by least squares.
  cents_in = np.zeros(params.num_frames)
  v = params.f0 > 0
  cents_in[v] = 1200.0 * np.log2(params.f0[v] / 440.0)
  w = int(round(0.15 / FRAME))
  vib, change = [], []
  c = _cents(out.f0, params.f0)
  for a, b in applied.notes:
    seg = cents_in[a:b]
    padded = np.pad(seg, (w // 2, w - 1 - w // 2), mode="edge")
    vib.append(seg - np.convolve(padded, np.ones(w) / w, mode="valid"))
    change.append(c[a:b])
  vib, change = np.concatenate(vib), np.concatenate(change)
  ok = ~np.isnan(change)
  assert np.std(vib[ok]) > 5.0  # The singer has some vibrato to change.
  assert np.polyfit(vib[ok], change[ok], 1)[0] == pytest.approx(scale - 1.0, abs=0.01)
  # Audio: the 4-8 Hz vibrato band of the measured pitch. Doubling doubles it
  # (within 30%); 0 removes more than half of it (a 150 ms moving average passes
  # about 20-40% of a 5-6 Hz vibrato, so "flattened" is not "zero").
  world_ratio = (_vibrato_band(out.f0, applied.notes)
                 / _vibrato_band(params.f0, applied.notes))
  audio_ratio = (_vibrato_band(_audio_f0(audio), applied.notes)
                 / _vibrato_band(voice["f0"], applied.notes))
  for ratio in (world_ratio, audio_ratio):
    if scale == 0.0:
      assert ratio < 0.5
    else:
      assert ratio == pytest.approx(scale, rel=0.3)
  _check_note_errors(params, out, applied)


# --- Timing errors: where the source onsets land in the output audio (DTW). -----------


def _measured_onsets(voice, audio, onsets_seconds):
  """Output time of each source onset, by DTW of MFCCs (librosa) of the undegraded
  and degraded resyntheses."""
  import librosa  # pylint: disable=g-import-not-at-top
  _, path = librosa.sequence.dtw(X=voice["mfcc"], Y=_mfcc(audio), metric="cosine")
  hop = MFCC_HOP / SR
  out = []
  for t in onsets_seconds:
    j = path[path[:, 0] == int(round(t / hop)), 1]
    out.append(np.median(j) * hop)
  return np.array(out)


@pytest.mark.parametrize("drift", [0.15, -0.15])
def test_tempo_drift_measured(voice, drift):
  out, applied, audio = _run(voice, tempo_drift=drift)
  measured = _measured_onsets(voice, audio, applied.onsets_seconds)
  err = measured - applied.new_onsets_seconds
  assert np.median(np.abs(err)) < 0.01 and np.percentile(np.abs(err), 90) < 0.025
  # The drift builds up: rushing ends early, dragging late, by > 0.3 s here.
  moved = measured - applied.onsets_seconds
  recorded = applied.onset_errors_seconds
  assert np.sign(recorded[-1]) == -np.sign(drift) and abs(recorded[-1]) > 0.3
  assert moved[-1] == pytest.approx(recorded[-1], rel=0.1)
  assert np.corrcoef(moved, recorded)[0, 1] > 0.99


def test_onset_jitter_measured(voice):
  out, applied, audio = _run(voice, seed=3, onset_jitter_seconds=0.08)
  measured = _measured_onsets(voice, audio, applied.onsets_seconds)
  moved = measured - applied.onsets_seconds
  recorded = applied.onset_errors_seconds
  assert np.abs(recorded).max() > 0.03
  assert np.median(np.abs(moved - recorded)) < 0.01
  assert np.corrcoef(moved, recorded)[0, 1] > 0.85


# --- Voice errors: aperiodicity, jitter and shimmer, loudness. -----------------------


def test_breathiness_measured(voice):
  params = voice["params"]
  hnr = [voice["hnr"]]
  for b in (0.2, 0.5, 0.8):
    out, applied, audio = _run(voice, breathiness=b)
    assert applied.breathiness == b
    # WORLD aperiodicity raised towards 1 by the fraction b, pitch untouched.
    ap, ap0 = out.ap, params.ap
    room = 1.0 - ap0
    ok = room > 1e-6
    np.testing.assert_allclose((ap - ap0)[ok] / room[ok], b, atol=1e-9)
    np.testing.assert_array_equal(out.f0, params.f0)
    hnr.append(_hnr_db(audio))
  # Praat's harmonics-to-noise ratio of the audio falls at each step, by > 3 dB.
  assert np.all(np.diff(hnr) < -3.0), hnr


@pytest.mark.parametrize("rough", [10.0, 40.0])
def test_roughness_measured(voice, rough):
  params = voice["params"]
  out, applied, audio = _run(voice, roughness_cents=rough)
  assert applied.roughness_cents == rough
  # Frame-rate f0 jitter: successive differences of independent N(0, r) have std
  # r sqrt(2). Measured on the WORLD f0, within 10%.
  d = np.diff(_cents(out.f0, params.f0))
  assert np.nanstd(d) / np.sqrt(2) == pytest.approx(rough, rel=0.1)
  # Shimmer: a frame-rate gain of std r / 20 dB on the spectral envelope.
  power_db = lambda sp: 10 * np.log10(np.sum(sp, axis=1))
  g = power_db(out.sp) - power_db(params.sp)
  assert np.std(g) == pytest.approx(rough / 20.0, rel=0.1)
  # Roughness is not a pitch error: Applied records no note pitch error.
  assert np.all(applied.note_pitch_errors_cents == 0.0)
  # In the audio (DIO + StoneMask): frame-to-frame f0 jitter above the clean
  # resynthesis' own, tracking r (the analysis smooths large jitter, so the
  # upper tolerance is loose) and lowering the harmonics-to-noise ratio.
  da = np.diff(_cents(_audio_f0(audio), voice["f0"]))
  da = da[~np.isnan(da) & (np.abs(da) < 300)]
  jitter = np.std(da) / np.sqrt(2)
  assert 0.5 * rough < jitter < 1.3 * rough
  assert _hnr_db(audio) < voice["hnr"] - rough / 10.0


@pytest.mark.parametrize("wobble", [1.5, 3.0, 6.0])
def test_loudness_wobble_measured(voice, wobble):
  out, applied, audio = _run(voice, loudness_wobble_db=wobble)
  assert applied.loudness_wobble_db == wobble
  ref = voice["rms_db"]
  level = _rms_db(audio)
  n = min(len(level), len(ref))
  loud = ref[:n] > ref.max() - 30.0  # Frames within 30 dB of the loudest.
  diff = (level[:n] - ref[:n])[loud]
  # The RMS of the audio wobbles by `wobble` dB (std), within 15%.
  assert np.std(diff) == pytest.approx(wobble, rel=0.15)
  # A slow (about 250 ms) wobble: frames 50 ms apart move together.
  d = level[:n] - ref[:n]
  lag = 10
  both = loud[lag:] & loud[:-lag]
  assert np.corrcoef(d[lag:][both], d[:-lag][both])[0, 1] > 0.7
  np.testing.assert_array_equal(out.f0, voice["params"].f0)
