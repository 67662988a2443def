"""Tests of input_pipeline.segments: VAD segments, DTW alignment, transposition."""

import numpy as np
import pytest

from configs import base
from input_pipeline import segments
from tests import signals

SR = 16000


def tone(midi, seconds, amp=0.3):
  return signals.harmonic_tone(midi, seconds, amp, harmonics=7)


def melody(notes, note_seconds=0.4, shift=0):
  return np.concatenate([tone(n + shift, note_seconds) for n in notes])


NOTES = [60, 64, 67, 62, 65, 69, 71, 60, 67, 64, 62, 72, 69, 65, 67, 60,
         59, 62, 66, 64, 61, 63, 68, 70, 57]


def test_fill_short_gaps():
  flags = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], bool)
  out = segments.fill_short_gaps(flags, 2)
  np.testing.assert_array_equal(out, [0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0])


def test_vad_finds_voiced_region_and_segments_land_inside():
  silence = np.zeros(2 * SR, np.float32)
  voiced = melody(NOTES[:20])  # 8 s of "singing" from 2 s to 10 s.
  audio = np.concatenate([silence, voiced, silence])
  regions = segments.voiced_regions(audio, frame_ms=30, mode=3)
  assert len(regions) == 1
  start, end = regions[0]
  assert abs(start - 2.0) < 0.1 and abs(end - 10.0) < 0.15
  starts = segments.segment_starts(audio, hop_seconds=1.5,
                                   min_voiced_fraction=0.5)
  assert starts
  for s, fraction in starts:
    assert s % 1.5 == pytest.approx(0.0, abs=1e-6)  # Grid-snapped.
    overlap = max(0.0, min(s + 3.0, 10.0) - max(s, 2.0))
    assert overlap >= 1.5 - 0.1
    assert fraction >= 0.5
  assert [s for s, _ in starts] == [1.5, 3.0, 4.5, 6.0, 7.5]
  # Fully voiced windows have fraction ~1.
  assert dict(starts)[4.5] > 0.95


def test_silence_has_no_segments():
  audio = np.zeros(6 * SR, np.float32)
  assert segments.segment_starts(audio) == []


def test_plan_segments_none_alignment_keeps_positions():
  config = base.get_config()
  audio = np.concatenate([np.zeros(SR, np.float32), melody(NOTES[:15])])
  ref = melody(NOTES[:10])  # 4 s: later segments have no reference audio.
  segs = segments.plan_segments(audio, ref, config)
  assert segs
  for seg in segs:
    assert seg.reference_start == seg.start
    assert seg.reference_span == 3.0
    assert seg.reference_start + 1.5 <= 4.0


def test_dtw_maps_stretched_delayed_copy():
  ref = melody(NOTES, note_seconds=0.4)  # 10 s
  # Performance: 1 s late and 20% slower.
  perf = np.concatenate([np.zeros(SR, np.float32),
                         melody(NOTES, note_seconds=0.48)])
  path = segments.dtw_path(perf, ref)
  times = np.array([1.5, 2.2, 4.0, 6.0, 8.2, 11.0])
  expected = (times - 1.0) / 1.2
  np.testing.assert_allclose(segments.map_times(times, path), expected,
                             atol=0.2)
  config = base.get_config()
  config.data.alignment = "dtw"
  segs = segments.plan_segments(perf, ref, config)
  assert segs
  for seg in segs:
    if seg.start < 1.0:  # Starts in the leading silence: maps near 0.
      assert seg.reference_start < 0.5
      continue
    assert abs(seg.reference_start - (seg.start - 1.0) / 1.2) < 0.25
    assert seg.reference_start % 0.25 == pytest.approx(0.0, abs=1e-6)
    assert abs(seg.reference_span - 2.5) < 0.3


def test_estimate_transposition_of_shifted_melody():
  ref = melody(NOTES[:15])
  assert segments.estimate_transposition(melody(NOTES[:15], shift=3), ref) == 3
  assert segments.estimate_transposition(melody(NOTES[:15], shift=-2), ref) == -2
  assert segments.estimate_transposition(ref, ref) == 0
  # A detuned (+3.3 semitones) and differently-voiced copy still gives 3.
  detuned = melody(NOTES[:15], shift=3.3) * 0.5
  assert segments.estimate_transposition(detuned, ref) == 3


def test_pitch_class_profile_ignores_octaves():
  low = segments.pitch_class_profile(melody(NOTES[:10]))
  high = segments.pitch_class_profile(melody(NOTES[:10], shift=12))
  assert segments.transposition_from_profiles(high, low) == 0
  assert low.shape == (segments.PROFILE_BINS,)
  assert low.sum() == pytest.approx(1.0)
