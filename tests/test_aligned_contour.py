"""Tests of the aligned-contour representation (issue 18, section 1).

Synthetic f0 on the 10 ms grid; no audio, no CREPE.
"""

import numpy as np
import pytest

from asa_jax.features import aligned_contour as ac_lib
from asa_jax.features import note_segments

HOP = ac_lib.FRAME_SECONDS
NOTES = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 62]
DURS = [0.4, 0.3, 0.6, 0.3, 0.5, 0.3, 0.4, 0.3, 0.7, 0.3, 0.35, 0.6, 0.3, 0.45,
        0.3, 0.5]


def melody_hz(*, shift=0.0, stretch=1.0, detune=0.0, gap_s=0.03, seed=0):
  """f0 (Hz) of NOTES: shift semitones, durations * stretch, detune cents."""
  rng = np.random.default_rng(seed)
  out = []
  for m, d in zip(NOTES, DURS):
    n = int(round(d * stretch / HOP))
    cents = 100.0 * (m + shift - 69) + detune + 2.0 * rng.standard_normal(n)
    out += [440.0 * 2 ** (cents / 1200.0), np.zeros(int(round(gap_s / HOP)))]
  return np.concatenate(out)


@pytest.mark.parametrize("detune", [-35.0, 20.0, 45.0])
def test_detune_shows_as_the_same_cents_in_pitch_deviation(detune):
  # The transposition search works in whole-melody offsets; a detune of part of
  # the melody (the second half) must remain visible, the rest near 0.
  ref = melody_hz(seed=1)
  perf = melody_hz(shift=3.0, seed=2)  # another key: removed by the transposition.
  half = len(perf) // 2
  cents, voiced = ac_lib.hz_to_cents(perf)
  cents[half:] += detune
  perf = np.where(voiced, 440.0 * 2 ** (cents / 1200.0), 0.0)
  a = ac_lib.aligned_contour(perf, ref)
  dev = a.pitch_deviation_cents
  first = np.nanmedian(dev[: len(ref) // 2 - 20])
  second = np.nanmedian(dev[len(ref) // 2 + 20:])
  assert second - first == pytest.approx(detune, abs=6.0)
  assert a.n_frames == len(ref)
  assert a.stack().shape == (len(ref), len(ac_lib.CHANNELS))


def test_whole_melody_detune_and_key_are_removed_by_the_transposition():
  ref = melody_hz(seed=1)
  a = ac_lib.aligned_contour(melody_hz(shift=-5.0, detune=30.0, seed=2), ref)
  assert a.offset_cents == pytest.approx(500.0 - 30.0, abs=5.0)
  assert np.nanmedian(np.abs(a.pitch_deviation_cents)) < 5.0


@pytest.mark.parametrize("stretch", [0.7, 1.0, 1.4])
def test_tempo_stretched_copy_gives_the_ratio_as_local_tempo(stretch):
  ref = melody_hz(seed=1)
  a = ac_lib.aligned_contour(melody_hz(stretch=stretch, seed=2), ref)
  assert np.median(a.local_tempo) == pytest.approx(stretch, rel=0.06)
  # The warp spans the performance: the last reference frame maps near its end.
  assert a.perf_frame[-1] == pytest.approx(len(ref) * stretch, rel=0.05)


def test_voicing_energy_onsets_and_relative_pitch_channels():
  ref = melody_hz(seed=1)
  perf = melody_hz(shift=2.0, seed=2)
  perf_db = np.where(perf > 0, -20.0, -80.0)
  a = ac_lib.aligned_contour(perf, ref, perf_energy_db=perf_db,
                             perf_onset_strength=np.arange(len(perf), dtype=float))
  assert np.mean(a.perf_voiced == a.ref_voiced) > 0.95
  voiced = a.perf_voiced & a.ref_voiced
  assert np.allclose(a.perf_energy_db[voiced], 0.0)  # re the median voiced dB.
  assert np.all(np.isnan(a.ref_energy_db))  # not given: nan.
  assert np.nanmax(a.perf_onset_strength) <= 1.0
  rel = a.perf_relative_cents[voiced]
  assert np.nanmin(rel) < -300 and np.nanmax(rel) > 500  # C4..C5 around E/F.


def test_sources_resample_to_the_10ms_grid():
  midi = np.array([0, 60, 60, 62, 0], float)  # MIR-1K PitchLabel: 20 ms frames.
  hz = ac_lib.to_frame_grid(np.arange(5) * 0.02, ac_lib.midi_frames_to_hz(midi))
  assert hz.shape == (9,)
  assert hz[0] == 0 and hz[2] == pytest.approx(261.63, abs=0.01)
  notes = ac_lib.notes_to_hz([0.1, 0.5], [0.4, 0.8], [69, 70])
  assert notes[20] == pytest.approx(440.0) and notes[45] == 0.0
  with pytest.raises(ValueError, match="too few voiced"):
    ac_lib.aligned_contour(np.zeros(50), melody_hz())


def test_segment_notes_finds_the_reference_notes():
  cents, _ = ac_lib.hz_to_cents(melody_hz(seed=1))
  notes = note_segments.segment_notes(cents, HOP)
  assert len(notes) == len(NOTES)
  lengths = (notes[:, 1] - notes[:, 0]) * HOP
  assert np.allclose(lengths, DURS, atol=0.03)
