"""Tests of the key- and tempo-invariant melodic similarity `dtw_melody`
(Molina et al., ICASSP 2013; asa_jax.baselines.dtw_melody).

Fast: contours come from synthetic f0 curves (contours_from_f0), never CREPE.
"""

import numpy as np
import pytest
import soundfile as sf

from asa_jax import baselines
from asa_jax.baselines import cache as cache_lib
from asa_jax.baselines import contours as contours_lib
from asa_jax.baselines import dtw as dtw_lib
from asa_jax.baselines import dtw_melody
from asa_jax.baselines import mast
from asa_jax.evaluation import report as report_lib
from asa_jax.evaluation import run as run_lib
from asa_jax.features import melody_alignment

HOP = contours_lib.FRAME_SECONDS
# A melody with steps, leaps up to a fifth, an octave span and repeated pitch
# classes; irregular durations (seconds).
NOTES = [60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 60, 62, 64,
         62, 60, 67, 65, 64, 62, 60]
DURS = [0.4, 0.2, 0.6, 0.3, 0.5, 0.2, 0.4, 0.3, 0.7, 0.25, 0.35, 0.6, 0.2,
        0.45, 0.3, 0.5, 0.2, 0.4, 0.6, 0.3, 0.25, 0.5, 0.35, 0.8]
GAP_S = 0.03  # unvoiced gap after every note (consonants, breaths).
# Wrong notes: five notes a tone or a third off (the rest in tune).
WRONG = [n + d for n, d in zip(NOTES, [0, 0, 2, 0, 0, -3, 0, 0, 0, 0, 2, 0, 0,
                                       0, 0, -2, 0, 0, 0, 3, 0, 0, 0, 0])]


def melody_f0(notes=NOTES, durs=DURS, *, shift=0.0, stretch=1.0, detune=None,
              jitter=3.0, seed=0):
  """f0 in Hz on the 10 ms grid (0 = unvoiced gap after each note).

  shift: semitones added to every note; stretch: duration factor (tempo
  1 / stretch; a float or one per note); detune: cents per note; jitter:
  cents of Gaussian frame noise.
  """
  rng = np.random.default_rng(seed)
  stretch = np.broadcast_to(np.asarray(stretch, float), (len(notes),))
  out = []
  for i, (m, d) in enumerate(zip(notes, durs)):
    n = int(round(d * stretch[i] / HOP))
    cents = (100.0 * (m + shift - 69) + (0.0 if detune is None else detune[i])
             + jitter * rng.standard_normal(n))
    out += [440.0 * 2 ** (cents / 1200.0), np.zeros(int(round(GAP_S / HOP)))]
  return np.concatenate(out)


def contours(f0):
  return contours_lib.contours_from_f0(np.arange(len(f0)) * HOP, f0)


def rate(f0, ref_f0=None, **kw):
  ref = contours(melody_f0(seed=0) if ref_f0 is None else ref_f0)
  return dtw_melody.dtw_melody_rating(contours(f0), ref, **kw)


def note_start(i, stretch=1.0):
  """First frame of note i in melody_f0's output."""
  gap = int(round(GAP_S / HOP))
  return sum(int(round(d * stretch / HOP)) + gap for d in DURS[:i])


@pytest.fixture(scope="module")
def same():
  """Rating of the same melody sung again (other frame noise)."""
  return rate(melody_f0(seed=1))


@pytest.fixture(scope="module")
def wrong():
  return rate(melody_f0(WRONG, seed=1))


def test_identical_copy_rates_zero_and_ratings_are_bounded(same, wrong):
  f0 = melody_f0(seed=0)
  assert rate(f0, f0) == pytest.approx(0.0, abs=1e-9)
  assert -dtw_melody.COST_CAP <= wrong < same < 0.0
  assert same > -3.0  # 3 cents of frame noise on each side.


@pytest.mark.parametrize("semitones", [3, -5, 7])
def test_key_invariance(semitones, same, wrong):
  transposed = melody_f0(shift=semitones, seed=1)
  assert rate(transposed) == pytest.approx(same, abs=0.3)
  assert rate(transposed) > wrong + 20.0
  # Wrong notes sung in another key are still wrong.
  assert rate(melody_f0(WRONG, shift=semitones, seed=1)) == pytest.approx(
      wrong, abs=1.0)
  alignment = dtw_melody.align_melodies(
      contours(transposed).voiced_cents(),
      contours(melody_f0(seed=0)).voiced_cents())
  assert alignment.offset_cents == pytest.approx(-100.0 * semitones, abs=2.0)


def test_transposition_is_searched_not_just_median_centred():
  # The performance holds its low notes longer than the reference: the medians
  # differ by more than the key offset, the DTW-optimal transposition does not.
  stretch = np.where(np.asarray(NOTES) <= 62, 2.0, 0.8)
  perf = melody_f0(shift=4, stretch=stretch, seed=1)
  ref = contours(melody_f0(seed=0))
  cents = contours(perf).voiced_cents()
  median_offset = np.median(ref.voiced_cents()) - np.median(cents)
  assert abs(median_offset + 400.0) > 150.0
  assert dtw_melody.align_melodies(cents, ref.voiced_cents()).offset_cents == (
      pytest.approx(-400.0, abs=5.0))
  assert rate(perf) > -5.0


@pytest.mark.parametrize("stretch", [0.7, 1.4])
def test_tempo_invariance(stretch, same, wrong):
  stretched = rate(melody_f0(stretch=stretch, seed=1))
  assert stretched == pytest.approx(same, abs=1.0)
  half = len(NOTES) // 2
  reordered = rate(melody_f0(NOTES[half:] + NOTES[:half],
                             DURS[half:] + DURS[:half], stretch=stretch, seed=1))
  section_detuned = rate(melody_f0(
      stretch=stretch, detune=[0] * 8 + [150] * 8 + [0] * 8, seed=1))
  assert stretched > reordered + 20.0
  assert stretched > section_detuned + 20.0
  assert stretched > wrong + 20.0


def test_local_tempo_changes_and_any_global_tempo(same):
  # Rubato: first half 0.7x, second half 1.4x the reference's durations.
  rubato = np.where(np.arange(len(NOTES)) < len(NOTES) // 2, 0.7, 1.4)
  assert rate(melody_f0(stretch=rubato, seed=1)) == pytest.approx(same,
                                                                  abs=1.0)
  # Beyond 1/2..2 globally: the longer sequence is block-averaged first.
  for stretch in (0.4, 2.5):
    assert rate(melody_f0(stretch=stretch, seed=1)) == pytest.approx(same,
                                                                     abs=1.5)


OCTAVE_ERRORS = [
    # (first frame, frames, f0 factor): inside a note, down; across a note
    # change and its unvoiced gap (64 -> 65), up; at the very start, up.
    (note_start(4) + 8, 35, 0.5),
    (note_start(2) + 40, 40, 2.0),
    (0, 25, 2.0),
]


@pytest.mark.parametrize("start,length,factor", OCTAVE_ERRORS)
def test_octave_repair(start, length, factor, same):
  clean = melody_f0(seed=1)
  broken = clean.copy()
  broken[start:start + length] *= factor
  n_voiced = np.count_nonzero(broken[start:start + length])
  repaired = rate(broken)
  unrepaired = rate(broken, repair=False)
  assert repaired == pytest.approx(same, abs=0.01)
  assert unrepaired < same - 8.0  # the repair matters.
  # The repair restores the contour exactly.
  cents, moved = dtw_melody.repair_octaves(contours(broken).voiced_cents())
  np.testing.assert_allclose(cents, contours(clean).voiced_cents(), atol=1e-6)
  assert moved == n_voiced


@pytest.mark.parametrize("stretch", [0.4, 0.7, 1.0, 1.4, 2.5])
def test_octave_repair_leaves_clean_melodies_alone(stretch):
  for notes in (NOTES, WRONG):
    cents = contours(melody_f0(notes, stretch=stretch, seed=2)).voiced_cents()
    repaired, moved = dtw_melody.repair_octaves(cents)
    assert moved == 0
    np.testing.assert_array_equal(repaired, cents)


def test_octave_repair_keeps_long_octave_shifts():
  # A whole phrase an octave up (longer than MAX_OCTAVE_ERROR_S) is singing,
  # not a tracker error: left for the transposition / the DTW to judge.
  cents = contours(melody_f0(seed=1)).voiced_cents()
  shifted = cents.copy()
  shifted[300:450] += 1200.0
  assert dtw_melody.repair_octaves(shifted)[1] == 0


def test_rating_falls_with_per_note_detune():
  pattern = np.random.default_rng(7).uniform(0.5, 1.0, len(NOTES)) * (
      np.resize([1, -1], len(NOTES)))
  ratings = [rate(melody_f0(detune=amount * pattern, seed=1))
             for amount in (0, 10, 20, 40, 80, 160)]
  assert all(a > b for a, b in zip(ratings, ratings[1:])), ratings


def test_bad_input_raises_like_dtw_pitch():
  good = contours(melody_f0(seed=1))
  silent = contours(np.zeros(200))
  one_frame = contours(np.r_[np.zeros(50), 220.0, np.zeros(50)])
  for bad in (silent, one_frame):
    for perf, ref in ((bad, good), (good, bad)):
      with pytest.raises(ValueError, match="too few voiced frames"):
        dtw_melody.dtw_melody_rating(perf, ref)
      with pytest.raises(ValueError, match="too few voiced frames"):
        dtw_lib.dtw_pitch_rating(perf, ref)  # the same contract.
  with pytest.raises(ValueError, match="frame periods"):
    dtw_melody.dtw_melody_rating(
        good, contours_lib.Contours(good.f0_hz, hop_s=0.02))
  with pytest.raises(ValueError, match="non-finite"):
    dtw_melody.align_melodies(np.array([0.0, np.nan, 1.0]), np.zeros(3))
  # The shortest usable input (MIN_FRAMES voiced frames) still rates.
  two = contours(np.r_[220.0, 0.0, 230.0])
  assert -dtw_melody.COST_CAP <= dtw_melody.dtw_melody_rating(two, good) <= 0


def test_registered_as_a_baseline_in_the_dtwdist_group():
  assert baselines.names.REFERENCE_USED["dtw_melody"] == "Original Track f0 (transposed)"
  assert "dtw_melody" in run_lib.resolve_baselines("all")
  assert report_lib.table_group("dtw_melody") == "DTWDist"
  assert "dtw_melody" in mast.MEASURES


def test_score_baselines_scores_and_skips_like_the_other_dtw_ratings(
    tmp_path):
  """score_baselines with cached synthetic contours (no CREPE): a transposed,
  slower copy beats wrong notes; a performance without voiced frames is left
  out and logged, as for dtw_pitch."""
  f0s = {"ref": melody_f0(seed=0),
         "good": melody_f0(shift=-3, stretch=1.3, seed=1),
         "bad": melody_f0(WRONG, seed=1),
         "silent": np.zeros(300)}
  cache_dir = str(tmp_path / "cache")
  (tmp_path / "cache").mkdir()
  for name, f0 in f0s.items():
    path = str(tmp_path / f"{name}.wav")
    sf.write(path, np.zeros(1600, np.float32), 16000)
    c = contours(f0)
    cache_lib._save(  # pylint: disable=protected-access
        cache_lib.cache_path(path, cache_dir, "tiny"),
        contours_lib.Contours(
            f0_hz=c.f0_hz, hop_s=HOP,
            energy_db=np.zeros(c.n_frames, np.float32),
            onsets_s=np.arange(0.0, c.n_frames * HOP, 0.5),
            confidence=np.ones(c.n_frames, np.float32)))
  manifest = tmp_path / "manifest.csv"
  manifest.write_text(
      "song_id,performance_id,performance_audio,reference_audio,"
      "accompaniment_audio,score,judge_scores,split\n" + "".join(
          f"s1,{p},{p}.wav,ref.wav,,{s},,test\n"
          for p, s in (("good", 90), ("bad", 20), ("silent", 50))))
  lines = []
  out = baselines.score_baselines(str(manifest), ["dtw_melody", "dtw_pitch"],
                                  cache_dir=cache_dir, log=lines.append)
  for name in ("dtw_melody", "dtw_pitch"):
    assert [s.performance_id for s in out[name]] == ["good", "bad"], name
    assert f"no {name} for s1/silent" in "\n".join(lines)
  by = {s.performance_id: s for s in out["dtw_melody"]}
  assert by["good"].predicted > by["bad"].predicted + 20.0
  assert by["good"].predicted > -3.0 and by["good"].human == 90.0
  assert "0 computed" in lines[-1]  # every contour came from the cache.


# --- dtw_cost against a DTW worked by hand and a second implementation (issue 22) ---


def _dtw_by_hand(perf, ref, offset=0.0):
  """Plain dynamic programming with steps (1,1) x2, (1,2) x3, (2,1) x3 on the local
  cost min(|perf_i + offset - ref_j|, 600); D[0,0] = C[0,0]. (cost / (N+M-1), path)."""
  n, m = len(perf), len(ref)
  c = np.minimum(np.abs(np.add.outer(np.asarray(perf, float) + offset,
                                     -np.asarray(ref, float))), 600.0)
  d = np.full((n, m), np.inf)
  back = {}
  d[0, 0] = c[0, 0]
  for i in range(n):
    for j in range(m):
      for (di, dj), w in (((1, 1), 2.0), ((1, 2), 3.0), ((2, 1), 3.0)):
        if i - di >= 0 and j - dj >= 0 and d[i - di, j - dj] + w * c[i, j] < d[i, j]:
          d[i, j] = d[i - di, j - dj] + w * c[i, j]
          back[(i, j)] = (i - di, j - dj)
  path, cell = [(n - 1, m - 1)], (n - 1, m - 1)
  while cell != (0, 0):
    cell = back[cell]
    path.append(cell)
  return d[-1, -1] / (n + m - 1), np.array(path[::-1])


def test_dtw_cost_worked_by_hand():
  # N = 4, M = 3: two paths, each of total weight N + M - 1 = 6:
  #   A (0,0) -(1,1)-> (1,1) -(2,1)-> (3,2): C00 + 2 C11 + 3 C32
  #   B (0,0) -(2,1)-> (2,1) -(1,1)-> (3,2): C00 + 3 C21 + 2 C32
  perf, ref = [0.0, 40.0, 100.0, 200.0], [0.0, 100.0, 230.0]
  # C00 = 0, C11 = 60, C21 = 0, C32 = 30: A = 120 + 90 = 210, B = 0 + 60 = 60.
  cost, path = dtw_melody.dtw_cost(np.array(perf), np.array(ref))
  assert cost == pytest.approx(60.0 / 6)
  np.testing.assert_array_equal(path, [[0, 0], [2, 1], [3, 2]])
  # Offset +30: C00 = 30, C11 = 30, C21 = 30, C32 = 0: A = 30 + 60 = 90 < B = 120.
  cost, path = dtw_melody.dtw_cost(np.array(perf), np.array(ref), 30.0)
  assert cost == pytest.approx(90.0 / 6)
  np.testing.assert_array_equal(path, [[0, 0], [1, 1], [3, 2]])
  # The local cost is capped at 600 cents: C32 = min(1000, 600) = 600;
  # A = 0 + 0 + 3 * 600 = 1800, B = 0 + 3 * 0 + 2 * 600 = 1200: 200 cents.
  cost, path = dtw_melody.dtw_cost(np.array([0.0, 0.0, 0.0, 1000.0]),
                                   np.zeros(3))
  assert cost == pytest.approx(1200.0 / 6)
  np.testing.assert_array_equal(path, [[0, 0], [2, 1], [3, 2]])
  with pytest.raises(ValueError, match="no DTW path with local tempo ratios in "
                                       r"\[1/2, 2\] between 2 and 5 frames"):
    dtw_melody.dtw_cost(np.zeros(2), np.zeros(5))


@pytest.mark.parametrize("seed", range(4))
def test_dtw_cost_matches_hand_dp_and_librosa(seed):
  import librosa  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  n, m = 0, 100
  while not (m - 1 <= 2 * (n - 1) and n - 1 <= 2 * (m - 1)):  # A path exists.
    n, m = rng.integers(4, 13, size=2)
  perf = rng.normal(0, 300, n).cumsum()
  ref = rng.normal(0, 300, m).cumsum()
  offset = float(rng.normal(0, 200))
  cost, path = dtw_melody.dtw_cost(perf, ref, offset)
  want_cost, want_path = _dtw_by_hand(perf, ref, offset)
  assert cost == pytest.approx(want_cost, rel=1e-12)
  local = np.minimum(np.abs(perf[:, None] + offset - ref[None, :]), 600.0)
  # The path's own weighted cost: C00 plus step weight x destination cost.
  steps = np.diff(path, axis=0)
  weights = steps.sum(axis=1)  # (1,1) -> 2, (1,2) / (2,1) -> 3.
  assert set(map(tuple, steps)) <= {(1, 1), (1, 2), (2, 1)}
  assert weights.sum() + 1 == n + m - 1
  on_path = local[0, 0] + np.sum(weights * local[path[1:, 0], path[1:, 1]])
  assert on_path / (n + m - 1) == pytest.approx(cost, rel=1e-12)
  # librosa.sequence.dtw with the same steps and weights gives the same total.
  acc, _ = librosa.sequence.dtw(C=local, step_sizes_sigma=np.array([[1, 1], [1, 2],
                                                                    [2, 1]]),
                                weights_mul=np.array([2.0, 3.0, 3.0]))
  assert acc[-1, -1] / (n + m - 1) == pytest.approx(cost, rel=1e-12)
  # Random real costs have no ties: the hand path is the same path.
  np.testing.assert_array_equal(path, want_path)


@pytest.mark.parametrize("n,m,reachable", [
    (1, 1, True), (2, 2, True), (3, 5, True), (5, 3, True), (4, 7, True),
    (7, 4, True), (3, 6, False), (6, 3, False), (4, 8, False), (8, 4, False),
    (1, 2, False), (2, 1, False)])
def test_dtw_cost_length_limits(n, m, reachable):
  """Steps (1,1), (1,2), (2,1) reach (N-1, M-1) iff M-1 <= 2(N-1) and N-1 <= 2(M-1);
  at the limit every step is the steep one."""
  perf, ref = np.zeros(n), np.full(m, 10.0)
  if not reachable:
    with pytest.raises(ValueError, match=f"between {n} and {m} frames"):
      dtw_melody.dtw_cost(perf, ref)
    return
  cost, path = dtw_melody.dtw_cost(perf, ref)
  assert cost == pytest.approx(10.0)  # Every local cost is 10: so is their mean.
  assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
  if m - 1 == 2 * (n - 1) and n > 1:
    assert set(map(tuple, np.diff(path, axis=0))) == {(1, 2)}


def test_align_melodies_memo_returns_the_same_alignment_for_the_same_values():
  rng = np.random.default_rng(3)
  ref = np.repeat(rng.integers(60, 72, 30) * 100.0, 20)
  perf = np.repeat(ref[::20] + 200.0, 23)  # transposed and slower.
  first = melody_alignment.align_melodies(perf, ref)
  # Equal values in new arrays: the memo's answer, identical to a fresh DTW.
  again = melody_alignment.align_melodies(perf.copy(), list(ref))
  assert again is first and not first.path.flags.writeable
  fresh = melody_alignment._align(perf, ref)  # pylint: disable=protected-access
  assert fresh.offset_cents == first.offset_cents
  assert fresh.cost_cents == first.cost_cents
  np.testing.assert_array_equal(fresh.path, first.path)
  # One value changed: a new alignment, not the memo's.
  other = perf.copy()
  other[5] += 50.0
  assert melody_alignment.align_melodies(other, ref) is not first


@pytest.mark.parametrize("fold", [False, True])
def test_dtw_cost_equals_librosa_on_the_capped_distance(fold):
  import librosa  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(7)
  perf, ref = rng.normal(6000, 600, 90), rng.normal(6000, 600, 120)
  diff = perf[:, None] - 1250.0 - ref[None, :]
  local = np.abs(diff) if not fold else melody_alignment.octave_distance(diff)
  acc, path = librosa.sequence.dtw(
      C=np.minimum(local, melody_alignment.COST_CAP),
      step_sizes_sigma=melody_alignment.STEP_SIZES,
      weights_mul=melody_alignment.STEP_WEIGHTS, backtrack=True)
  cost, got = melody_alignment.dtw_cost(perf, ref, -1250.0, fold_octaves=fold)
  assert cost == acc[-1, -1] / (len(perf) + len(ref) - 1)
  np.testing.assert_array_equal(got, path[::-1])
