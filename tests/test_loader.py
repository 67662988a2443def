"""Tests of input_pipeline.loader.TripletLoader on fake records."""

import json
import os

import numpy as np
import pytest

from asa_jax.features import constants
from asa_jax.features import keyshift
from configs import base
from input_pipeline import build
from input_pipeline import loader
from input_pipeline import model_input
from input_pipeline import records

# performance_id -> (song, score, number of segments, transposition)
PERFORMANCES = {
    "a_g1": ("A", 90.0, 8, 0), "a_g2": ("A", 85.0, 6, 2),
    "a_g3": ("A", 80.0, 7, 0), "a_p1": ("A", 10.0, 8, -1),
    "a_p2": ("A", 39.9, 5, 0), "a_mid": ("A", 60.0, 8, 0),
    "a_none": ("A", None, 8, 0),
    "b_g1": ("B", 95.0, 9, 0), "b_p1": ("B", 5.0, 9, 3),
    "b_p2": ("B", 20.0, 4, 0),
    "c_g1": ("C", 99.0, 5, 0),  # No poor performance: never paired.
}


def _ids(x):
  """Record ids written into feature [0, 0, 0] (see make_records)."""
  return np.rint(x[:, 0, 0, 0]).astype(int)


def make_records(root, performances=PERFORMANCES, split="train", seed=0):
  """Writes fake records; performance/reference [0,0,0] = global record id

  (ids follow the loader's record order: sorted keys, then segment order).
  """
  rng = np.random.default_rng(seed)
  uid = 0
  for pid, (song, score, n, t) in sorted(performances.items()):
    metas, perf, ref = [], [], []
    for k in range(n):
      start = 1.5 * k + (0.3 if pid.endswith("p2") else 0.0)
      metas.append(dict(
          index=k, song_id=song, performance_id=pid, split=split,
          segment_start=start, reference_start=start, reference_span=3.0,
          voiced_fraction=1.0, score=score, transposition=t,
          performance_audio=f"{pid}.wav", reference_file=f"{song}_ref.wav"))
      p = rng.normal(size=constants.FEATURE_SHAPE) + np.arange(5)[:, None, None]
      r = rng.normal(size=constants.FEATURE_SHAPE) * 2.0
      p[0, 0, 0] = r[0, 0, 0] = uid
      uid += 1
      perf.append(p)
      ref.append(r)
    records.write_shard(str(root), split, pid, metas, np.stack(perf),
                        np.stack(ref))
  keys = records.complete_keys(str(root), split)
  stats = records.compute_stats(str(root), keys, split)
  with open(root / "stats.json", "w") as f:
    json.dump(stats, f)
  return stats


@pytest.fixture(scope="module")
def records_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("records")
  make_records(root)
  return root


def _config(batch=8, channels=constants.CHANNELS):
  config = base.get_config()
  config.train.global_batch_size = batch
  config.features.channels = channels
  return config


def _loader(records_dir, config, p=0, n=1, **kw):
  return loader.TripletLoader(str(records_dir), "train", config,
                              process_index=p, process_count=n, **kw)


def test_pairing_deterministic_and_changes_across_epochs(records_dir):
  config = _config()
  t1 = _loader(records_dir, config).triplets(3)
  t2 = _loader(records_dir, config).triplets(3)
  np.testing.assert_array_equal(t1, t2)
  t_other = _loader(records_dir, config).triplets(4)
  assert not np.array_equal(t1, t_other)
  config.seed = 1
  assert not np.array_equal(t1, _loader(records_dir, config).triplets(3))


def test_pairs_are_good_and_poor_of_the_same_song(records_dir):
  config = _config()
  ld = _loader(records_dir, config)
  meta = ld.metadata
  for epoch in range(3):
    trip = ld.triplets(epoch)
    assert len(trip) > 0
    for g, p in trip:
      assert meta[g]["song_id"] == meta[p]["song_id"]
      assert meta[g]["score"] >= 80.0 and meta[p]["score"] < 40.0
      assert abs(meta[g]["reference_start"] - meta[p]["reference_start"]) <= (
          config.data.pair_tolerance_seconds)
    songs = {meta[g]["song_id"] for g, _ in trip}
    assert songs == {"A", "B"}
    # Every good performance of a song takes part each epoch.
    goods = {meta[g]["performance_id"] for g, _ in trip}
    assert goods == {"a_g1", "a_g2", "a_g3", "b_g1"}
    # Nearest-position matching: shifted a_p2 (0.3 s) still pairs.
    poors = {meta[p]["performance_id"] for _, p in trip}
    assert poors == {"a_p1", "a_p2", "b_p1", "b_p2"}


def test_gap_pairing_ranks_every_pair_with_a_big_enough_gap(records_dir):
  """data.pairing='gap': any two performances of a song >= min_score_gap apart, the
  better one as positive (labelled degradations), including two poor ones."""
  config = _config()
  config.data.pairing = "gap"
  config.data.min_score_gap = 14.0
  ld = _loader(records_dir, config)
  meta = ld.metadata
  trip = ld.triplets(0)
  pairs = {(meta[g]["performance_id"], meta[p]["performance_id"]) for g, p in trip}
  scores = {pid: s for pid, (_, s, _, _) in PERFORMANCES.items() if s is not None}
  songs = {pid: song for pid, (song, _, _, _) in PERFORMANCES.items()}
  want = {(a, b) for a in scores for b in scores
          if songs[a] == songs[b] and scores[a] - scores[b] >= 14.0}
  assert pairs == want
  assert ("b_p2", "b_p1") in pairs  # 20 vs 5: both "poor", still ranked.
  for g, p in trip:
    assert meta[g]["score"] - meta[p]["score"] >= 14.0
    assert abs(meta[g]["reference_start"] - meta[p]["reference_start"]) <= (
        config.data.pair_tolerance_seconds)
  np.testing.assert_array_equal(trip, _loader(records_dir, config).triplets(0))
  config.data.pairing = "nearest"
  with pytest.raises(ValueError, match="pairing"):
    _loader(records_dir, config).triplets(0)


def test_batches_contain_the_paired_clips_normalised(records_dir):
  channels = ("spec", "f0", "tempo")
  config = _config(channels=channels)
  ld = _loader(records_dir, config)
  stats = json.loads((records_dir / "stats.json").read_text())
  idx = [constants.CHANNELS.index(c) for c in channels]
  mean = np.array(stats["mean"])[idx][None, :, None, None]
  std = np.array(stats["std"])[idx][None, :, None, None]
  trip = ld.triplets(0)
  batches = list(ld.epoch(0))
  assert len(batches) == ld.num_batches(0) == len(trip) // 8
  for b, batch in enumerate(batches):
    assert set(batch) == {"anchor", "positive", "negative", "mask"}
    for k in ("anchor", "positive", "negative"):
      assert batch[k].shape == (8, 3, 96, 94) and batch[k].dtype == np.float32
    np.testing.assert_array_equal(batch["mask"], np.ones(8, np.float32))
    rows = trip[b * 8:(b + 1) * 8]
    np.testing.assert_array_equal(_ids(batch["anchor"] * std + mean), rows[:, 0])
    np.testing.assert_array_equal(_ids(batch["positive"] * std + mean),
                                  rows[:, 0])
    np.testing.assert_array_equal(_ids(batch["negative"] * std + mean),
                                  rows[:, 1])
  # Exact values: (raw - mean) / std of the selected channels.
  raw = list(loader.load_segments(str(records_dir), "train"))
  g, p = trip[0]
  np.testing.assert_allclose(batches[0]["positive"][0],
                             (raw[g][1][idx] - mean[0]) / std[0], atol=1e-5)
  np.testing.assert_allclose(batches[0]["anchor"][0],
                             (raw[g][2][idx] - mean[0]) / std[0], atol=1e-5)
  np.testing.assert_allclose(batches[0]["negative"][0],
                             (raw[p][1][idx] - mean[0]) / std[0], atol=1e-5)


def test_normalise_function():
  stats = dict(mean=[1, 2, 3, 4, 5], std=[1, 2, 4, 8, 16],
               channels=list(constants.CHANNELS))
  x = np.ones((2,) + constants.FEATURE_SHAPE, np.float16) * 9
  out = model_input.normalise(x, stats, ("tempo", "chroma"))
  assert out.shape == (2, 2, 96, 94) and out.dtype == np.float32
  np.testing.assert_allclose(out[:, 0], (9 - 5) / 16)
  np.testing.assert_allclose(out[:, 1], (9 - 2) / 2)
  with pytest.raises(ValueError, match="not all in"):
    model_input.normalise(x, stats, ("mfcc",))


def test_process_slices_concatenate_to_global_batch(records_dir):
  config = _config(batch=8)
  whole = list(_loader(records_dir, config).epoch(2))
  parts = [list(_loader(records_dir, config, p=p, n=2).epoch(2))
           for p in range(2)]
  assert len(parts[0]) == len(parts[1]) == len(whole) > 0
  for b, batch in enumerate(whole):
    for k in ("anchor", "positive", "negative", "mask"):
      assert parts[0][b][k].shape[0] == 4
      np.testing.assert_array_equal(
          np.concatenate([parts[0][b][k], parts[1][b][k]]), batch[k])
  with pytest.raises(ValueError, match="divisible"):
    _loader(records_dir, _config(batch=6), p=0, n=4)


@pytest.mark.parametrize("threads", [0, 2])
def test_iterator_state_resumes_exactly_without_reading_earlier_batches(
    records_dir, threads):
  config = _config(batch=4)
  config.data.loader_threads = threads
  straight = list(_loader(records_dir, config).epoch(1))
  assert len(straight) >= 4
  first = _loader(records_dir, config).epoch(1)
  for _ in range(2):
    next(first)
  state = first.get_state()

  fresh = _loader(records_dir, config)  # A new process would build a new loader.
  read = []
  original = fresh._source.read
  fresh._source.read = lambda keys: read.append(list(keys)) or original(keys)
  resumed = fresh.epoch(1)
  resumed.set_state(state)
  rest = list(resumed)
  assert len(rest) == len(straight) - 2
  for a, b in zip(rest, straight[2:]):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  # One batched read per batch, none for the two batches before the saved state.
  assert len(read) == len(rest)
  wanted = set(_loader(records_dir, config).triplets(1)[2 * 4:].reshape(-1).tolist())
  assert set().union(*map(set, read)) <= wanted


def test_split_without_pairs_yields_no_batches(tmp_path):
  make_records(tmp_path, {"c_g1": ("C", 99.0, 5, 0), "c_g2": ("C", 90.0, 4, 0)},
               split="validation")
  ld = loader.TripletLoader(str(tmp_path), "validation", _config(), process_index=0,
                            process_count=1)
  assert ld.num_batches(0) == 0
  assert list(ld.epoch(0)) == []


def test_validation_is_fixed_and_padded(tmp_path):
  make_records(tmp_path, split="validation")
  config = _config(batch=16)
  ld = loader.TripletLoader(str(tmp_path), "validation", config,
                            process_index=0, process_count=1)
  n = len(ld.triplets(0))
  np.testing.assert_array_equal(ld.triplets(0), ld.triplets(5))
  assert n % 16 != 0
  batches = list(ld.epoch(7))
  assert len(batches) == ld.num_batches() == -(-n // 16)
  masks = np.concatenate([b["mask"] for b in batches])
  assert masks.dtype == np.float32 and masks.sum() == n
  np.testing.assert_array_equal(masks[:n], 1.0)
  np.testing.assert_array_equal(masks[n:], 0.0)
  assert all(b["anchor"].shape[0] == 16 for b in batches)


def test_key_shift_moves_performance_clips(records_dir):
  config = _config()
  config.data.key_align = "shift"
  plain = _config()
  ld_shift, ld_plain = _loader(records_dir, config), _loader(records_dir, plain)
  meta = ld_plain.metadata
  batch_s = next(iter(ld_shift.epoch(0)))
  batch_p = next(iter(ld_plain.epoch(0)))
  trip = ld_plain.triplets(0)[:8]
  stats = ld_plain.stats
  std = np.array(stats["std"])[None, :, None, None]
  mean = np.array(stats["mean"])[None, :, None, None]
  raw = batch_p["negative"] * std + mean
  for i, (_, p) in enumerate(trip):
    t = meta[p]["transposition"]
    want = keyshift.shift_pitch_channels(raw[i], -t)
    np.testing.assert_allclose(batch_s["negative"][i] * std[0] + mean[0], want,
                               atol=1e-3)
  np.testing.assert_array_equal(batch_s["anchor"], batch_p["anchor"])
  shifted = [i for i, (_, p) in enumerate(trip) if meta[p]["transposition"]]
  assert shifted  # The fixture has transposed poor performances.
  assert not np.allclose(batch_s["negative"][shifted[0]],
                         batch_p["negative"][shifted[0]])


def test_load_segments_yields_every_record(records_dir):
  items = list(loader.load_segments(str(records_dir), "train"))
  assert len(items) == sum(v[2] for v in PERFORMANCES.values())
  meta, perf, ref = items[0]
  assert perf.shape == constants.FEATURE_SHAPE and perf.dtype == np.float32
  assert ref.shape == constants.FEATURE_SHAPE
  assert {m["performance_id"] for m, _, _ in items} == set(PERFORMANCES)
  ids = sorted(int(round(p[0, 0, 0])) for _, p, _ in items)
  assert ids == list(range(len(items)))


def test_missing_records_or_stats_raise(tmp_path):
  with pytest.raises(FileNotFoundError, match="no complete records for split 'train'"):
    loader.TripletLoader(str(tmp_path), "train", _config(), process_index=0,
                         process_count=1)
  # Complete records but no stats.json: the second error path, by its own message.
  make_records(tmp_path)
  os.remove(tmp_path / "stats.json")
  for cls in (loader.TripletLoader, loader.ClipLoader):
    with pytest.raises(FileNotFoundError,
                       match=r"stats\.json missing: build the train split or pass "
                             "stats_from"):
      cls(str(tmp_path), "train", _config(), process_index=0, process_count=1)


def test_real_features_end_to_end(tmp_path):
  """Integration: real extract_features (CREPE 'tiny') -> records -> batches."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  sr = constants.SAMPLE_RATE
  t = np.arange(int(3.2 * sr)) / sr

  def sung(midi, amp):
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    return (amp * sum(np.sin(2 * np.pi * f0 * h * t) / h
                      for h in range(1, 6))).astype(np.float32)

  sf.write(tmp_path / "ref.wav", sung(62, 0.3), sr)
  sf.write(tmp_path / "good.wav", sung(62, 0.3), sr)
  sf.write(tmp_path / "poor.wav", sung(65, 0.2), sr)
  (tmp_path / "m.csv").write_text(
      "song_id,performance_id,performance_audio,reference_audio,"
      "accompaniment_audio,score,judge_scores,split\n"
      "s,good,good.wav,ref.wav,,90,,train\n"
      "s,poor,poor.wav,ref.wav,,10,,train\n", encoding="utf-8")
  config = _config(batch=1)
  config.features.crepe_capacity = "tiny"
  report = build.build_records(str(tmp_path / "m.csv"),
                                 str(tmp_path / "rec"), config)
  assert sorted(report.built) == ["good", "poor"]
  assert report.num_records["train"] == 2
  ld = loader.TripletLoader(str(tmp_path / "rec"), "train", config,
                            process_index=0, process_count=1)
  assert ld.metadata[1]["transposition"] == 3
  batch = next(iter(ld.epoch(0)))
  for k in ("anchor", "positive", "negative"):
    assert batch[k].shape == (1, 5, 96, 94)
    assert np.all(np.isfinite(batch[k]))
  # The good performance is the reference itself: identical clips.
  np.testing.assert_allclose(batch["anchor"], batch["positive"], atol=1e-2)
  assert np.abs(batch["negative"] - batch["positive"]).mean() > 0.05


def test_clip_loader_scored_clips_shuffle_and_process_rows(records_dir):
  """ClipLoader (regression systems): every scored clip once per train epoch in an
  order drawn from (seed, epoch); targets are the human scores; process p gets rows
  [p*L, (p+1)*L) of each global batch; validation-style pads with mask 0."""
  config = _config(batch=8)
  meta = loader.ClipLoader(str(records_dir), "train", config, process_index=0,
                           process_count=1).metadata
  scored = {i for i, m in enumerate(meta) if m["score"] is not None}
  score_of = {i: m["score"] for i, m in enumerate(meta)}
  one = loader.ClipLoader(str(records_dir), "train", config, process_index=0,
                          process_count=1)
  n_batches = len(scored) // 8
  assert one.num_batches(0) == n_batches
  ids = []
  for batch in one.epoch(0):
    assert batch["performance"].shape == (8, 5, 96, 94)
    assert batch["reference"].shape == (8, 5, 96, 94)
    got = _ids(batch["reference"] * np.asarray(one.stats["std"])[:, None, None]
               + np.asarray(one.stats["mean"])[:, None, None])
    np.testing.assert_allclose(batch["target"], [score_of[i] for i in got])
    assert batch["mask"].tolist() == [1.0] * 8
    ids.extend(got.tolist())
  assert len(ids) == len(set(ids)) == n_batches * 8 and set(ids) <= scored
  assert not np.array_equal(one.rows(0), one.rows(1))
  assert sorted(one.rows(0).tolist()) == sorted(one.rows(1).tolist()) == sorted(scored)
  halves = [loader.ClipLoader(str(records_dir), "train", config, process_index=p,
                              process_count=2) for p in range(2)]
  for b, (full, h0, h1) in enumerate(zip(one.epoch(1), halves[0].epoch(1),
                                         halves[1].epoch(1))):
    np.testing.assert_array_equal(
        np.concatenate([h0["target"], h1["target"]]), full["target"])
    np.testing.assert_array_equal(
        np.concatenate([h0["performance"], h1["performance"]]), full["performance"])
  evaluation = loader.ClipLoader(str(records_dir), "train", config, process_index=0,
                                 process_count=1, train=False)
  masks = np.concatenate([b["mask"] for b in evaluation.epoch(3)])
  assert evaluation.num_batches(0) == -(-len(scored) // 8)
  assert masks.sum() == len(scored) and len(masks) % 8 == 0
  np.testing.assert_array_equal(evaluation.rows(5), sorted(scored))


def test_rank_loader_batches_hold_k_negatives_of_the_rows(records_dir):
  """RankLoader (Lee & Nam's system): (L, K, C, 96, 94) negatives, the rows' clips."""
  channels = ("spec", "f0")
  config = _config(channels=channels)
  config.loss.negatives = 3
  ld = loader.RankLoader(str(records_dir), "train", config, process_index=0,
                         process_count=1)
  stats = json.loads((records_dir / "stats.json").read_text())
  idx = [constants.CHANNELS.index(c) for c in channels]
  mean = np.array(stats["mean"])[idx][None, :, None, None]
  std = np.array(stats["std"])[idx][None, :, None, None]
  rows = ld.rows(0)
  assert rows.shape[1] == 4
  batch = next(iter(ld.epoch(0)))
  assert set(batch) == {"anchor", "positive", "negatives", "mask"}
  assert batch["negatives"].shape == (8, 3, 2, 96, 94)
  np.testing.assert_array_equal(_ids(batch["positive"] * std + mean), rows[:8, 0])
  for k in range(3):
    np.testing.assert_array_equal(_ids(batch["negatives"][:, k] * std + mean),
                                  rows[:8, 1 + k])


def test_pair_loader_batches_hold_the_pairs(records_dir):
  """PairLoader (siamese system): both clips of each row and its same-class label."""
  config = _config(channels=("spec",))
  ld = loader.PairLoader(str(records_dir), "train", config, process_index=0,
                         process_count=1)
  stats = json.loads((records_dir / "stats.json").read_text())
  idx = [constants.CHANNELS.index("spec")]
  mean = np.array(stats["mean"])[idx][None, :, None, None]
  std = np.array(stats["std"])[idx][None, :, None, None]
  rows = ld.rows(0)
  batch = next(iter(ld.epoch(0)))
  assert set(batch) == {"first", "second", "same", "mask"}
  np.testing.assert_array_equal(_ids(batch["first"] * std + mean), rows[:8, 0])
  np.testing.assert_array_equal(_ids(batch["second"] * std + mean), rows[:8, 1])
  np.testing.assert_array_equal(batch["same"], rows[:8, 2].astype(np.float32))
