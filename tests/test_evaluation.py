"""Tests for asa_jax.evaluation: scoring, Pearson, report files, scatter plot."""

import csv
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.stats

from asa_jax.features.constants import CHANNELS
from asa_jax.features import keyshift
from asa_jax.evaluation import pearson
from asa_jax.evaluation import plots
from asa_jax.evaluation import records_reuse
from asa_jax.evaluation import report
from asa_jax.evaluation import run
from asa_jax.evaluation import scoring
from configs import base
from input_pipeline import build
from input_pipeline import manifest as manifest_lib
from input_pipeline import records
from input_pipeline import shard

TRACES = []


class FakeTriplet(nn.Module):
  """Both towers = one linear map of the flattened clip (so identical clips give
  cosine 1); records each trace, to check the jitted embedding compiles once."""
  dim: int = 6

  def setup(self):
    self.proj = nn.Dense(self.dim, use_bias=False)

  def embed_anchor(self, x, *, train=False):
    assert not train
    return self.proj(x.reshape(x.shape[0], -1))

  def embed_performance(self, x, *, train=False):
    assert not train
    TRACES.append(x.shape)
    return self.proj(x.reshape(x.shape[0], -1))


def _fake_model(shape):
  model = FakeTriplet()
  variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)),
                         method="embed_anchor")
  return model, variables


def _segment(song, perf, score, performance, reference, **extra):
  return (dict(song_id=song, performance_id=perf, score=score, **extra),
          performance, reference)


# --- Pearson -----------------------------------------------------------------------


def test_pearson_equals_scipy():
  x = [0.1, 0.4, 0.35, 0.8, 0.7]
  y = [10.0, 42.0, 30.0, 90.0, 60.0]
  corr = pearson.pearson(x, y)
  assert corr.n == 5 and corr.reason is None
  assert corr.r == pytest.approx(scipy.stats.pearsonr(x, y).statistic, abs=1e-12)
  assert corr.r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
  assert pearson.pearson([1, 2, 3], [3, 2, 1]).r == pytest.approx(-1.0)


def test_pearson_undefined_cases_give_none_and_reason():
  small = pearson.pearson([0.1, 0.2], [1.0, 2.0])
  assert small.r is None and small.n == 2
  assert small.reason == "n=2 < 3 scored performances"
  # A non-finite value on either side alone makes r undefined.
  for x, y in (([0.1, np.nan, 0.3], [1.0, 2.0, 3.0]),
               ([0.1, 0.2, 0.3], [1.0, np.inf, 3.0])):
    one_sided = pearson.pearson(x, y)
    assert one_sided.r is None and one_sided.reason == "non-finite scores (n=3)"
  const_pred = pearson.pearson([0.5, 0.5, 0.5, 0.5], [1.0, 2.0, 3.0, 4.0])
  assert const_pred.r is None and const_pred.n == 4
  assert "predicted" in const_pred.reason and "constant" in const_pred.reason
  const_human = pearson.pearson([0.1, 0.2, 0.3], [7.0, 7.0, 7.0])
  assert const_human.r is None and "human" in const_human.reason
  with pytest.raises(ValueError, match="^predicted has 2 values but human has 3$"):
    pearson.pearson([1.0, 2.0], [1.0, 2.0, 3.0])


def test_pearson_reasons_word_for_word_and_with_interval():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  assert pearson.pearson([0.5] * 4, [1.0, 2.0, 3.0, 4.0]).reason == (
      "predicted scores are constant (0.5, n=4)")
  assert pearson.pearson([0.1, 0.2, 0.3], [7.0] * 3).reason == (
      "human scores are constant (7, n=3)")
  # scipy's own nan (here its sums overflow): reported, not returned as r.
  with np.errstate(all="ignore"):
    import warnings  # pylint: disable=g-import-not-at-top
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      overflow = pearson.pearson([1e308, 1e308, -1e308], [1.0, 2.0, 3.0])
  assert overflow.r is None
  assert overflow.reason == "scipy returned nan (near-constant input, n=3)"
  x, y = [0.1, 0.4, 0.35, 0.8, 0.7], [10.0, 42.0, 30.0, 90.0, 60.0]
  corr = pearson.pearson(x, y)
  assert pearson.with_interval(corr, x, y, n_resamples=0) is corr  # No interval.
  one = pearson.with_interval(corr, x, y, n_resamples=1)
  assert one.ci is not None and one.ci.n_resamples == 1
  # The default seed is 0: the interval of bootstrap.pearson_interval(seed=0).
  assert pearson.with_interval(corr, x, y, n_resamples=200).ci == (
      bootstrap.pearson_interval(x, y, n_resamples=200, seed=0))
  assert pearson.with_interval(corr, x, y, n_resamples=200).ci != (
      bootstrap.pearson_interval(x, y, n_resamples=200, seed=1))


def test_correlate_per_song_mix_and_messages():
  scores = [
      ("song1", "a", 0.9, 90.0), ("song1", "b", 0.5, 50.0), ("song1", "c", 0.1, 20.0),
      ("song2", "a", 0.3, 80.0), ("song2", "b", 0.6, 30.0),  # n = 2 -> None
      ("song10", "a", 0.2, 10.0), ("song10", "b", 0.4, 40.0),
      ("song10", "c", 0.7, 60.0), ("song10", "d", 0.8, None),  # no human score
  ]
  messages = []
  result = pearson.correlate(scores, system="rori", log=messages.append)
  assert set(result) == {"per_song", "mix"}
  assert list(result["per_song"]) == ["song1", "song2", "song10"]  # natural order
  s1 = result["per_song"]["song1"]
  assert s1.n == 3
  assert s1.r == pytest.approx(
      scipy.stats.pearsonr([0.9, 0.5, 0.1], [90, 50, 20]).statistic)
  assert result["per_song"]["song2"].r is None
  assert result["per_song"]["song2"].n == 2
  assert result["per_song"]["song10"].n == 3
  pooled = [s for s in scores if s[3] is not None]
  assert result["mix"].n == 8
  assert result["mix"].r == pytest.approx(scipy.stats.pearsonr(
      [s[2] for s in pooled], [s[3] for s in pooled]).statistic)
  text = "\n".join(messages)
  assert "song song2" in text and "n=2" in text and "[rori]" in text
  assert "1 performance(s) have no human score" in text and "song10: 1" in text


# --- Report files ------------------------------------------------------------------


def _two_systems():
  rori = [scoring.PerformanceScore("song1", "p1", 0.9, 90.0),
          scoring.PerformanceScore("song1", "p2", 0.2, 20.0),
          scoring.PerformanceScore("song1", "p3", 0.5, 60.0),
          scoring.PerformanceScore("song2", "p1", 0.4, 55.0),
          scoring.PerformanceScore("song2", "p2", 0.3, None)]
  racc = [scoring.PerformanceScore("song1", "p1", 0.1, 90.0),
          scoring.PerformanceScore("song1", "p2", 0.6, 20.0),
          scoring.PerformanceScore("song1", "p3", 0.3, 60.0)]
  return {"rori": rori, "racc": racc}


def test_scores_csv_schema(tmp_path):
  scores = _two_systems()
  path = tmp_path / "out" / "scores.csv"
  report.write_scores_csv(path, scores)
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    assert reader.fieldnames == ["system", "song_id", "performance_id", "predicted",
                                 "human"]
    rows = list(reader)
  assert len(rows) == 8
  assert rows[0] == {"system": "rori", "song_id": "song1", "performance_id": "p1",
                     "predicted": "0.9", "human": "90.0"}
  assert rows[4]["human"] == ""  # no human score
  assert rows[5]["system"] == "racc" and float(rows[6]["predicted"]) == 0.6
  assert not [p for p in os.listdir(path.parent) if p.startswith(".tmp-")]


def test_pearson_json_schema(tmp_path):
  scores = _two_systems()
  correlations = {s: pearson.correlate(v, log=None) for s, v in scores.items()}
  path = tmp_path / "pearson.json"
  report.write_pearson_json(path, correlations)
  doc = json.loads(path.read_text())
  assert set(doc) == {"rori", "racc"}
  for system in doc.values():
    assert set(system) == {"per_song", "mix"}
    assert set(system["mix"]) == {"r", "n", "ci95"}
    for entry in system["per_song"].values():
      assert set(entry) == {"r", "n", "ci95"}
      assert entry["ci95"] is None  # correlate() without resamples: no CI
      assert entry["r"] is None or isinstance(entry["r"], float)
      assert isinstance(entry["n"], int)
  assert doc["rori"]["per_song"]["song2"] == {"r": None, "n": 1, "ci95": None}
  assert doc["rori"]["mix"]["n"] == 4
  assert doc["racc"]["per_song"]["song1"]["r"] == pytest.approx(
      scipy.stats.pearsonr([0.1, 0.6, 0.3], [90, 20, 60]).statistic)
  assert "song2" not in doc["racc"]["per_song"]


def test_table_md_rows_and_columns(tmp_path):
  scores = _two_systems()
  correlations = {s: pearson.correlate(v, log=None) for s, v in scores.items()}
  path = tmp_path / "table.md"
  table = report.write_table_md(path, correlations,
                                {"rori": "Original Track", "racc": "Accompaniment Track"})
  assert path.read_text().startswith(table)
  lines = table.strip().splitlines()
  cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
  assert cells[0] == ["Group", "System", "Reference Used", "song1", "song2", "Mix"]
  assert len(lines) == 4  # header, separator, two systems
  rori_song1 = correlations["rori"]["per_song"]["song1"].r
  assert cells[2] == ["Other", "Rori", "Original Track", f"{rori_song1:.3f}", "-",
                      f"{correlations['rori']['mix'].r:.3f}"]
  assert cells[3][:3] == ["Other", "Racc", "Accompaniment Track"]
  assert cells[3][4] == "-"  # racc has no song2 performance
  assert all(len(c) == 6 for c in cells)


def test_scatter_png_written(tmp_path):
  scores = _two_systems()["rori"]
  path = tmp_path / "scatter_rori.png"
  plots.plot_scatter(path, scores, pearson.correlate(scores, log=None), system="rori")
  data = path.read_bytes()
  assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
  import matplotlib.image as mpimg  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  pixels = mpimg.imread(str(path))[..., :3]
  assert pixels.shape == (540, 720, 3)  # 6 x 4.5 in at 120 dpi.
  songs = sorted({s[0] for s in scores})
  for i in range(len(songs)):  # Each song's points in its colour (alpha 0.85 on white).
    colour = 0.85 * np.asarray(plt.get_cmap("tab10")(i)[:3]) + 0.15
    assert np.all(np.abs(pixels - colour) < 0.03, axis=-1).sum() > 20, songs[i]


def test_report_systems_writes_all_outputs(tmp_path):
  messages = []
  correlations = run.report_systems(tmp_path, _two_systems(),
                                    {"rori": "Original Track"}, log=messages.append)
  assert set(correlations) == {"rori", "racc"}
  for name in ("scores.csv", "pearson.json", "table.md", "scatter_rori.png",
               "scatter_racc.png"):
    assert (tmp_path / name).stat().st_size > 0
  assert any("| Racc | None |" in m for m in messages)  # the table is printed


def test_reference_label():
  c = base.get_config()  # A full config: reference_label asks the system registry.
  c.system, c.data.reference = "rori", "original"
  assert report.reference_label(c) == "Original Track"
  c.data.reference = "accompaniment"
  assert report.reference_label(c) == "Accompaniment Track"
  c.system = "direct"
  assert report.reference_label(c) == "None"


# --- Scoring -----------------------------------------------------------------------


def test_embed_clips_identical_beats_different_and_compiles_once():
  shape = (2, 4, 5)
  rng = np.random.default_rng(0)
  reference = rng.normal(size=shape).astype(np.float32)
  other = rng.normal(size=shape).astype(np.float32)
  model, variables = _fake_model(shape)
  segments = [_segment("s1", "same", 80.0, reference, reference),
              _segment("s1", "other", 20.0, other, reference)]
  segments += [_segment("s1", f"x{i}", 50.0, rng.normal(size=shape), reference)
               for i in range(3)]
  TRACES.clear()
  clips = scoring.embed_clips(model, variables, segments, batch_size=2)
  assert len(TRACES) == 1 and TRACES[0] == (2, *shape)  # 3 batches, one trace
  assert len(clips) == 5 and clips.performance.shape == (5, 6)
  assert clips.anchor.shape == (5, 6) and clips.similarity.shape == (5,)
  assert clips.similarity[0] == pytest.approx(1.0, abs=1e-5)
  assert clips.similarity[1] < clips.similarity[0] - 0.05
  # Padding of the last batch does not change results: one big batch agrees.
  big = scoring.embed_clips(model, variables, segments, batch_size=8)
  np.testing.assert_allclose(big.similarity, clips.similarity, atol=1e-5)
  np.testing.assert_allclose(big.performance, clips.performance, atol=1e-5)
  assert [m["performance_id"] for m in clips.metadata] == [
      "same", "other", "x0", "x1", "x2"]


def test_embed_clips_errors_and_empty():
  model, variables = _fake_model((2, 4, 5))
  with pytest.raises(ValueError, match="batch_size"):
    scoring.embed_clips(model, variables, [], batch_size=0)
  assert len(scoring.embed_clips(model, variables, [], batch_size=4)) == 0
  bad = [_segment("s", "a", 1.0, np.zeros((2, 4, 5)), np.zeros((2, 4, 5))),
         _segment("s", "b", 1.0, np.zeros((2, 4, 6)), np.zeros((2, 4, 6)))]
  with pytest.raises(ValueError, match="s/b"):
    scoring.embed_clips(model, variables, bad, batch_size=4)


def test_aggregate_scores_mean_over_clips():
  meta = [dict(song_id="s1", performance_id="p1", score=70.0),
          dict(song_id="s1", performance_id="p2", score=float("nan")),
          dict(song_id="s1", performance_id="p1", score=70.0),
          dict(song_id="s2", performance_id="p1", score=30.0),
          dict(song_id="s1", performance_id="p1", score=70.0)]
  sim = np.array([0.2, -0.4, 0.5, 0.9, 0.8], np.float32)
  z = np.zeros((5, 3), np.float32)
  scores = scoring.aggregate_scores(scoring.ClipEmbeddings(meta, z, z, sim))
  assert [(s.song_id, s.performance_id) for s in scores] == [
      ("s1", "p1"), ("s1", "p2"), ("s2", "p1")]
  assert scores[0].predicted == pytest.approx((0.2 + 0.5 + 0.8) / 3, abs=1e-6)
  assert scores[0].human == 70.0
  assert scores[1].human is None and scores[1].predicted == pytest.approx(-0.4)
  song, perf, predicted, human = scores[2]  # unpacks as the contract's 4-tuple
  assert (song, perf, human) == ("s2", "p1", 30.0)
  meta[2] = dict(song_id="s1", performance_id="p1", score=71.0)
  with pytest.raises(ValueError, match="different human scores"):
    scoring.aggregate_scores(scoring.ClipEmbeddings(meta, z, z, sim))


def test_cosine_similarity():
  x = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
  y = np.array([[2.0, 0.0], [-1.0, -1.0], [1.0, 0.0]])
  np.testing.assert_allclose(scoring.cosine_similarity(x, y), [1.0, -1.0, 0.0],
                             atol=1e-6)


def _config(key_align="none", channels=("spec", "chroma", "tchroma", "f0", "tempo")):
  return ml_collections.ConfigDict({
      "data": {"key_align": key_align},
      "features": {"channels": channels},
      "eval": {"batch_size": 3},
  })


def test_score_performances_normalises_and_ranks():
  shape = (5, 96, 94)
  rng = np.random.default_rng(1)
  stats = {"mean": [1.0, 0.5, 0.5, 0.1, 0.2], "std": [2.0, 0.3, 0.3, 0.2, 0.1],
           "channels": ["spec", "chroma", "tchroma", "f0", "tempo"]}
  ref = [rng.normal(size=shape).astype(np.float16) for _ in range(2)]
  segments = []
  for k in range(2):  # good: identical to the reference; poor: unrelated clips
    segments.append(_segment("song1", "good", 90.0, ref[k], ref[k],
                             segment_start=1.5 * k, transposition=0))
    segments.append(_segment("song1", "poor", 10.0,
                             rng.normal(size=shape).astype(np.float16), ref[k],
                             segment_start=1.5 * k, transposition=0))
  config = _config(channels=("spec", "f0"))
  model, variables = _fake_model((2, 96, 94))
  scores, clips = scoring.score_performances(model, variables, segments, stats, config,
                                             return_clips=True)
  assert len(clips) == 4
  by_id = {s.performance_id: s for s in scores}
  assert by_id["good"].predicted == pytest.approx(1.0, abs=1e-4)
  assert by_id["poor"].predicted < 0.5
  assert by_id["poor"].predicted == pytest.approx(
      float(np.mean(clips.similarity[[1, 3]])), abs=1e-6)


def test_score_performances_key_shift():
  """A performance sung 2 semitones up (transposition=2) matches its reference
  after the key shift (paper 3.3 a cappella adaptation, data.key_align='shift')."""
  rng = np.random.default_rng(2)
  stats = {"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(CHANNELS)}
  ref = rng.uniform(size=(5, 96, 94)).astype(np.float32)
  sung_up = keyshift.shift_pitch_channels(ref, 2)
  segments = [_segment("s", "up", 90.0, sung_up, ref, transposition=2)]
  channels = ("chroma", "tchroma")
  model, variables = _fake_model((2, 96, 94))
  shifted = scoring.score_performances(model, variables, segments, stats,
                                       _config("shift", channels))
  assert shifted[0].predicted == pytest.approx(1.0, abs=1e-4)
  unshifted = scoring.score_performances(model, variables, segments, stats,
                                         _config("none", channels))
  assert unshifted[0].predicted < 0.999
  with pytest.raises(ValueError, match="transposition"):
    scoring.score_performances(model, variables,
                               [_segment("s", "x", 1.0, ref, ref)], stats,
                               _config("shift", channels))


def test_write_split_manifest(tmp_path):
  src = tmp_path / "corpus" / "manifest.csv"
  src.parent.mkdir()
  src.write_text(
      "song_id,performance_id,performance_audio,reference_audio,accompaniment_audio,"
      "score,judge_scores,split\n"
      "s1,p1,audio/p1.wav,ref/s1.wav,,80,80;79,test\n"
      "s1,p2,/abs/p2.wav,ref/s1.wav,acc/s1.wav,,,train\n"
      "s2,p3,audio/p3.wav,ref/s2.wav,acc/s2.wav,20,,test\n")
  out = tmp_path / "out" / "manifest_test.csv"
  assert manifest_lib.write_split_manifest(src, "test", out) == 2
  with open(out, newline="") as f:
    rows = list(csv.DictReader(f))
  assert [r["performance_id"] for r in rows] == ["p1", "p3"]
  base = str(src.parent)
  assert rows[0]["performance_audio"] == os.path.join(base, "audio", "p1.wav")
  assert rows[0]["accompaniment_audio"] == ""
  assert rows[0]["judge_scores"] == "80;79" and rows[0]["score"] == "80"
  assert rows[1]["accompaniment_audio"] == os.path.join(base, "acc", "s2.wav")


def test_load_stats(tmp_path):
  with pytest.raises(FileNotFoundError, match="train.py"):
    records.load_stats(tmp_path / "stats.json")
  (tmp_path / "stats.json").write_text(json.dumps({"mean": [0.0], "std": [1.0]}))
  with pytest.raises(ValueError, match="channels"):
    records.load_stats(tmp_path / "stats.json")
  stats = {"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(CHANNELS)}
  (tmp_path / "stats.json").write_text(json.dumps(stats))
  assert records.load_stats(tmp_path / "stats.json") == stats


def test_evaluate_end_to_end_with_fakes(tmp_path, monkeypatch):
  """evaluate(): split filter, records build call, scoring, outputs, messages."""
  from input_pipeline import loader  # pylint: disable=g-import-not-at-top
  from input_pipeline import records  # pylint: disable=g-import-not-at-top
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  perfs = [("song1", "p1", "90", "test"), ("song1", "p2", "60", "test"),
           ("song1", "p3", "20", "test"), ("song1", "p4", "", "test"),
           ("song2", "q1", "85", "test"), ("song2", "q2", "50", "test"),
           ("song2", "q3", "10", "test"), ("song2", "q4", "70", "train"),
           ("song2", "q5", "40", "test")]
  for song, perf, score, split in perfs:
    (corpus / f"{perf}.wav").write_bytes(b"")
    (corpus / f"{song}.wav").write_bytes(b"")
    lines.append(f"{song},{perf},{perf}.wav,{song}.wav,,{score},,{split}")
  manifest = corpus / "manifest.csv"
  manifest.write_text("\n".join(lines) + "\n")
  workdir = tmp_path / "work"
  workdir.mkdir()
  (workdir / "stats.json").write_text(json.dumps(
      {"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(CHANNELS)}))

  calls = {}

  def fake_build(manifest_path, records_dir, config, *, stats_from=None):
    calls["build"] = (manifest_path, records_dir, stats_from)
    os.makedirs(os.path.join(records_dir, "test"), exist_ok=True)
    return None

  rng = np.random.default_rng(3)
  ref = rng.normal(size=(5, 96, 94)).astype(np.float32)

  def fake_segments(records_dir, split):
    calls.setdefault("splits", []).append(split)
    for song, perf, score, s in perfs:
      if s != split or perf == "q5":  # q5: no voiced clip
        continue
      noise = (100 - float(score or 50)) / 50
      for k in range(2):
        yield (dict(song_id=song, performance_id=perf, split=s, segment_start=1.5 * k,
                    score=float(score) if score else None, transposition=0),
               ref + noise * rng.normal(size=ref.shape).astype(np.float32), ref)

  model, variables = _fake_model((5, 96, 94))
  monkeypatch.setattr(build, "build_records", fake_build)
  monkeypatch.setattr(loader, "load_segments", fake_segments)
  monkeypatch.setattr(run.checkpoint, "restore_for_inference",
                      lambda c, w: (model, variables))
  from configs import base  # pylint: disable=g-import-not-at-top
  config = base.get_config()
  config.system = "rori"
  config.eval.batch_size = 4
  config.eval.bootstrap_samples = 200
  out = tmp_path / "out"
  messages = []
  result = run.evaluate(config, str(workdir), str(manifest), str(out), "test",
                        log=messages.append)

  build_manifest, records_dir, stats_from = calls["build"]
  assert records_dir == str(out / "records_original")
  assert stats_from == str(workdir / "stats.json")
  with open(build_manifest, newline="") as f:
    assert [r["performance_id"] for r in csv.DictReader(f)] == [
        "p1", "p2", "p3", "p4", "q1", "q2", "q3", "q5"]
  assert calls["splits"] == ["test"]
  assert [s.performance_id for s in result["scores"]] == [
      "p1", "p2", "p3", "p4", "q1", "q2", "q3"]
  assert len(result["clips"]) == 14
  doc = json.loads((out / "pearson.json").read_text())
  assert doc["rori"]["per_song"]["song1"]["n"] == 3  # p4 has no human score
  assert doc["rori"]["mix"]["n"] == 6
  text = "\n".join(messages)
  assert "song1/p4" not in text and "song2/q5" in text  # q5: no clips
  assert "have no human score" in text and "| Rori | Original Track |" in text
  assert len(doc["rori"]["mix"]["ci95"]) == 2  # bootstrap CI of every defined r
  assert doc["rori"]["mix"]["ci95"][0] <= doc["rori"]["mix"]["r"]
  assert doc["_meta"]["bootstrap"]["resamples"] == 200
  assert doc["_meta"]["inter_judge"] is None  # no judge_scores in this manifest
  for name in ("scores.csv", "table.md", "scatter_rori.png", "clip_embeddings_rori.npz",
               "figure6.png"):
    assert (out / name).stat().st_size > 0
  npz = np.load(out / "clip_embeddings_rori.npz")
  assert npz["performance"].shape == (14, 6) and npz["song_id"][0] == "song1"
  with pytest.raises(ValueError, match="split"):
    run.evaluate(config, str(workdir), str(manifest), str(out), "dev")


def test_evaluation_reuses_matching_training_records(tmp_path, monkeypatch):
  """evaluate() reads <workdir>/records when they were built from the same manifest
  bytes with the same feature settings, and builds its own otherwise."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from configs import base  # pylint: disable=g-import-not-at-top
  from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  from input_pipeline import records  # pylint: disable=g-import-not-at-top
  from tests import test_records  # pylint: disable=g-import-not-at-top
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  sf.write(corpus / "ref.wav", test_records.melody(14), 16000)
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  for i, (shift, score, split) in enumerate([(0, 90, "train"), (3, 20, "train"),
                                             (0, 80, "test"), (2, 30, "test"),
                                             (1, 50, "test")]):
    sf.write(corpus / f"p{i}.wav", test_records.melody(14, shift=shift), 16000)
    lines.append(f"s1,p{i},p{i}.wav,ref.wav,,{score},,{split}")
  manifest = corpus / "manifest.csv"
  manifest.write_text("\n".join(lines) + "\n")
  monkeypatch.setattr(shard, "extract_features", test_records.Counter())
  config = base.get_config()
  config.data.manifest = str(manifest)
  config.eval.bootstrap_samples = 50
  workdir = tmp_path / "work"
  build.build_records(str(manifest), str(workdir / "records"), config)
  (workdir / "stats.json").write_text((workdir / "records" / "stats.json").read_text())
  rows = [r for r in manifest_lib.read_manifest(str(manifest))[0] if r.split == "test"]
  assert records_reuse.training_records_for(config, str(workdir), str(manifest), rows) == str(
      workdir / "records")

  def no_build(*args, **kwargs):
    raise AssertionError("evaluation rebuilt records that training already built")

  model, variables = _fake_model((5, 96, 94))
  monkeypatch.setattr(build, "build_records", no_build)
  monkeypatch.setattr(run.checkpoint, "restore_for_inference",
                      lambda c, w: (model, variables))
  messages = []
  result = run.evaluate(config, str(workdir), str(manifest), str(tmp_path / "out"),
                        "test", log=messages.append)
  assert sorted(s.performance_id for s in result["scores"]) == ["p2", "p3", "p4"]
  assert any("reusing the training records" in m for m in messages)
  assert not (tmp_path / "out" / "records_original").exists()

  # Not reused: other feature settings, other manifest bytes, a missing performance.
  other = base.get_config()
  other.data.segment_hop_seconds = 1.0
  assert records_reuse.training_records_for(other, str(workdir), str(manifest), rows) is None
  test_shard, = records.complete_keys(str(workdir / "records"), "test")
  os.remove(workdir / "records" / "test" / f"{test_shard}.json")  # p2..p4 incomplete.
  assert records_reuse.training_records_for(config, str(workdir), str(manifest), rows) is None
  manifest.write_text("\n".join(lines[:-1]) + "\n")
  assert records_reuse.training_records_for(config, str(workdir), str(manifest), rows[:2]) is None


# --- Bootstrap confidence intervals -------------------------------------------------


def _noisy_pairs(n, seed=0, noise=1.0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=n)
  return x, x + noise * rng.normal(size=n)


def test_bootstrap_vectorised_r_equals_scipy():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  x, y = _noisy_pairs(12)
  assert bootstrap.pearson_r(x, y) == pytest.approx(
      scipy.stats.pearsonr(x, y).statistic, abs=1e-12)
  batch = np.stack([x, -x, np.full(12, 3.0)])
  r = bootstrap.pearson_r(batch, np.stack([y, y, y]))
  assert r[0] == pytest.approx(-r[1]) and np.isnan(r[2])  # constant row -> nan


def test_bootstrap_ci_contains_r_shrinks_with_n_and_is_seeded():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  x, y = _noisy_pairs(15, seed=1)
  r = scipy.stats.pearsonr(x, y).statistic
  ci = bootstrap.pearson_interval(x, y, n_resamples=1000, seed=0)
  assert ci.reason is None and ci.n_resamples == 1000 and ci.n_degenerate == 0
  assert -1.0 <= ci.low < r < ci.high <= 1.0
  assert ci == bootstrap.pearson_interval(x, y, n_resamples=1000, seed=0)
  other = bootstrap.pearson_interval(x, y, n_resamples=1000, seed=1)
  assert (other.low, other.high) != (ci.low, ci.high)
  # Same relationship, more performances: a narrower interval.
  widths = []
  for n in (10, 90, 810):
    xs, ys = _noisy_pairs(n, seed=2)
    c = bootstrap.pearson_interval(xs, ys, n_resamples=1000, seed=0)
    widths.append(c.high - c.low)
  assert widths[0] > widths[1] > widths[2]
  # The percentile interval is the quantiles of scipy's own bootstrap distribution.
  res = scipy.stats.bootstrap((x, y), bootstrap.pearson_r, n_resamples=1000,
                              paired=True, vectorized=True, method="percentile",
                              rng=np.random.default_rng(0))
  assert ci.low == pytest.approx(res.confidence_interval.low, abs=1e-12)
  assert ci.high == pytest.approx(res.confidence_interval.high, abs=1e-12)


def test_bootstrap_undefined_and_degenerate_cases():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  short = bootstrap.pearson_interval([1.0, 2.0], [1.0, 3.0])
  assert short.low is None and "n=2" in short.reason
  const = bootstrap.pearson_interval([1.0, 2.0, 3.0, 4.0], [5.0] * 4)
  assert const.low is None and "constant" in const.reason
  assert bootstrap.pearson_interval([1, 2, 3], [1, 2, 4], n_resamples=0).low is None
  # 3 pairs, 2 distinct human values: many resamples are constant; dropped, counted.
  ci = bootstrap.pearson_interval([0.1, 0.5, 0.9], [10.0, 10.0, 80.0], seed=0)
  assert 150 < ci.n_degenerate < 500 and ci.low is not None and ci.high <= 1.0
  # Mostly constant resamples: no interval, with the reason.
  # (Each side has one odd value; a resample missing either is constant: 58%.)
  ci = bootstrap.pearson_interval([1.0, 1.0, 1.0, 1.0, 2.0], [1.0, 1.0, 1.0, 2.0, 1.0],
                                  n_resamples=200)
  assert ci.low is None and "constant" in ci.reason and ci.n_degenerate > 100
  with pytest.raises(ValueError, match="human has 3"):
    bootstrap.pearson_interval([1.0, 2.0], [1.0, 2.0, 3.0])


def test_correlate_attaches_cis_per_song_and_mix():
  scores = [(s, f"p{i}", float(x), float(y))
            for s, seed in (("song1", 3), ("song2", 4))
            for i, (x, y) in enumerate(zip(*_noisy_pairs(9, seed=seed)))]
  result = pearson.correlate(scores, log=None, n_resamples=300, seed=5)
  for corr in [*result["per_song"].values(), result["mix"]]:
    assert corr.ci is not None and corr.ci.low <= corr.r <= corr.ci.high
    assert corr.to_json()["ci95"] == [corr.ci.low, corr.ci.high]
  # Mix resamples all 18 performances: narrower than the 9-performance songs here.
  mix = result["mix"].ci
  assert mix.high - mix.low < max(c.ci.high - c.ci.low
                                  for c in result["per_song"].values())


# --- Inter-judge agreement ------------------------------------------------------------


class _Row:

  def __init__(self, song_id, performance_id, judge_scores):
    self.song_id, self.performance_id = song_id, performance_id
    self.judge_scores = judge_scores


def test_inter_judge_agreement_by_hand():
  from asa_jax.evaluation import judges  # pylint: disable=g-import-not-at-top
  a = [(10, 12, 30), (40, 35, 20), (70, 75, 60), (90, 80, 85)]   # song1
  b = [(20, 30, 10), (50, 45, 60), (80, 90, 70)]                  # song2
  rows = [_Row("song1", f"a{i}", s) for i, s in enumerate(a)]
  rows += [_Row("song2", f"b{i}", s) for i, s in enumerate(b)]
  rows.append(_Row("song2", "b0", (0, 0, 0)))  # phrase row of b0: counted once
  result = judges.inter_judge_agreement(rows)

  def by_hand(perfs):
    cols = np.array(perfs, float).T
    rs = [np.corrcoef(cols[j], cols[k])[0, 1] for j, k in ((0, 1), (0, 2), (1, 2))]
    return np.mean(rs)

  assert result["per_song"]["song1"].r == pytest.approx(by_hand(a))
  assert result["per_song"]["song2"].r == pytest.approx(by_hand(b))
  overall = result["overall"]
  assert overall.r == pytest.approx(by_hand(a + b))
  assert (overall.n_performances, overall.n_judges, overall.n_pairs) == (7, 3, 3)
  doc = judges.agreement_json(result)
  assert doc["overall"]["r"] == pytest.approx(by_hand(a + b))
  assert "reason" not in doc["overall"]
  text = judges.agreement_text(result)
  assert "3 judges" in text and f"{by_hand(a + b):.3f}" in text


def test_inter_judge_agreement_edge_cases():
  from asa_jax.evaluation import judges  # pylint: disable=g-import-not-at-top
  assert judges.inter_judge_agreement([_Row("s", "p", ()), _Row("s", "q", (5,))]) == {}
  assert judges.agreement_json({}) is None and judges.agreement_text({}) == ""
  # Judge 2 gives one constant score: pairs with judge 2 are undefined and left out.
  rows = [_Row("s", f"p{i}", (x, y, 50)) for i, (x, y) in
          enumerate([(10, 20), (30, 25), (60, 70), (90, 80)])]
  agreement = judges.inter_judge_agreement(rows)["overall"]
  assert agreement.n_pairs == 1 and agreement.n_undefined_pairs == 2
  assert agreement.r == pytest.approx(np.corrcoef([10, 30, 60, 90],
                                                  [20, 25, 70, 80])[0, 1])
  two = judges.mean_pairwise_r([(1, 2), (3, 4)])  # n = 2 < 3: undefined
  assert two.r is None and "no judge pair" in two.reason


# --- Table with several systems -------------------------------------------------------


def test_table_md_groups_rows_and_shows_cis(tmp_path):
  rng = np.random.default_rng(6)
  systems = {}
  for name in ("binning", "dtw_pitch", "rori", "direct", "rori_spec", "delta"):
    systems[name] = [scoring.PerformanceScore(f"song{s}", f"p{i}", float(rng.normal()),
                                              float(rng.uniform(0, 100)))
                     for s in (1, 2) for i in range(6)]
  groups = {"binning": "Histogram", "dtw_pitch": "DTWDist", "rori": "Proposed",
            "direct": "Baseline", "rori_spec": "Ablation", "delta": "Proposed"}
  refs = {"rori": "Original Track", "dtw_pitch": "Original Track f0"}
  correlations = {s: pearson.correlate(v, log=None, n_resamples=100)
                  for s, v in systems.items()}
  path = tmp_path / "table.md"
  report.write_table_md(path, correlations, refs, groups,
                        notes=["Inter-judge agreement: overall 0.800"])
  text = path.read_text()
  lines = [l for l in text.splitlines() if l.startswith("| ")]
  cells = [[c.strip() for c in l.strip("|").split("|")] for l in lines]
  assert cells[0] == ["Group", "System", "Reference Used", "song1", "song2", "Mix"]
  assert [c[1] for c in cells[1:]] == ["Direct", "Rori", "Delta", "Rori, Spec",
                                       "binning", "pitch"]
  assert [c[0] for c in cells[1:]] == ["Baseline", "Proposed", "Proposed", "Ablation",
                                       "Histogram", "DTWDist"]
  assert cells[2][2] == "Original Track" and cells[6][2] == "Original Track f0"
  assert cells[1][2] == "None"
  mix = correlations["rori"]["mix"]
  assert cells[2][5] == f"{mix.r:.3f} [{mix.ci.low:.2f}, {mix.ci.high:.2f}]"
  assert "bootstrap" in text and text.rstrip().endswith("overall 0.800")


def test_bootstrap_pearson_r_near_constant_side_is_nan():
  """Either side near-constant (centred sum of squares <= 1e-24 of the sum of
  squares, i.e. rounding size) gives nan, not a rounding-noise r; relative to the
  values' own scale."""
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  varied = np.array([1.0, 2.0, 4.0])
  # sxx ~ 1e-20 against sum(x^2) = 3e6: tiny (a repeated value plus rounding).
  near = np.array([1000.0, 1000.0, 1000.0 + 1.2e-10])
  for x, y in ((near, varied), (varied, near)):
    assert np.isnan(bootstrap.pearson_r(x, y))
  # The same spread on values near 1e-6 is not tiny there: a real r.
  small = np.array([1e-6, 1e-6, 1e-6 + 1.2e-10])
  assert bootstrap.pearson_r(small, varied) == pytest.approx(
      scipy.stats.pearsonr(small, varied).statistic, abs=1e-6)
  both = bootstrap.pearson_r(np.stack([near, varied]), np.stack([varied, varied]))
  assert np.isnan(both[0]) and both[1] == pytest.approx(1.0)


def test_bootstrap_early_returns_name_the_reason_and_draw_nothing():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  x, y = np.arange(6.0), np.array([1.0, 3.0, 2.0, 5.0, 4.0, 6.0])
  iv = bootstrap.Interval
  assert bootstrap.pearson_interval(x[:2], y[:2]) == iv(None, None, 0, 0, "n=2 < 3")
  bad_y = y.copy()
  bad_y[2] = np.nan  # only the human side: both sides must be finite.
  assert bootstrap.pearson_interval(x, bad_y) == iv(None, None, 0, 0,
                                                     "non-finite scores")
  assert bootstrap.pearson_interval(np.ones(6), y) == iv(
      None, None, 0, 0, "r undefined (constant scores)")
  assert bootstrap.pearson_interval(x, y, n_resamples=0) == iv(
      None, None, 0, 0, "no bootstrap (0 resamples)")
  with pytest.raises(ValueError, match=r"^predicted has 6 values but human has 5$"):
    bootstrap.pearson_interval(x, y[:5])
  with pytest.raises(ValueError, match=r"^n_resamples must be >= 0, got -1$"):
    bootstrap.pearson_interval(x, y, n_resamples=-1)


def test_bootstrap_defaults_and_any_shape_of_pairs():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(3)
  x = rng.normal(size=12)
  y = x + rng.normal(size=12)
  default = bootstrap.pearson_interval(x, y)
  assert default == bootstrap.pearson_interval(x, y, n_resamples=1000, seed=0)
  assert default.n_resamples == 1000 and default.low is not None
  # (2, 6) inputs are the same 12 pairs.
  assert bootstrap.pearson_interval(x.reshape(2, 6), y.reshape(2, 6),
                                    n_resamples=200) == bootstrap.pearson_interval(
                                        x, y, n_resamples=200)


def test_pearson_r_is_clipped_to_minus_one():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1)  # a case where the division rounds below -1.
  x = rng.normal(size=7) * 10 ** rng.uniform(-3, 3)
  y = -x * rng.uniform(0.1, 10)
  xc, yc = x - x.mean(), y - y.mean()
  assert np.sum(xc * yc) / np.sqrt(np.sum(xc * xc) * np.sum(yc * yc)) < -1.0
  assert bootstrap.pearson_r(x, y) == -1.0


def test_bootstrap_gives_no_interval_when_most_resamples_are_constant():
  from asa_jax.evaluation import bootstrap  # pylint: disable=g-import-not-at-top
  # Each side has one odd value: a resample missing either is constant, which
  # happens with probability 2 (5/6)^6 - (4/6)^6 = 0.58.
  x = np.array([1.0, 0, 0, 0, 0, 0])
  y = np.array([0.0, 0, 0, 0, 0, 1])
  iv = bootstrap.pearson_interval(x, y, n_resamples=1000, seed=0)
  assert iv.low is None and iv.high is None and iv.n_resamples == 1000
  assert 520 <= iv.n_degenerate <= 640
  assert iv.reason == f"{iv.n_degenerate} of 1000 resamples have constant scores"
