"""input_pipeline.corpora.degrade, measured in its output (issue 22, item 1).

Every error type is applied to a real MIR-1K vocal and measured independently of
`Applied`: on the WORLD parameters `degrade` returns (what synthesis reads) and on the
resynthesised audio with a second analysis (pyworld DIO + StoneMask for f0, Praat's
harmonicity through parselmouth, frame RMS in dB, MFCC + librosa DTW for timing).
Each measurement is compared with what `Applied` records, with a stated tolerance.
A `degrade()` that records an error without applying it fails here.
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
