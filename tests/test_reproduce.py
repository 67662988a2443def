"""Tests for the multi-system evaluation and the Table 2 experiment script.

evaluate_systems runs a real tiny Rori (restored from a checkpoint), a
system without a checkpoint (reported, skipped) and a stubbed baseline scorer over
fake records; the experiment's resume rules run with a fake train command.
"""

import csv
import json
import os
import sys

import ml_collections
import numpy as np
import pytest

from asa_jax.evaluation import report
from asa_jax.evaluation import run
from asa_jax.evaluation import scoring
from asa_jax.experiments import pipeline
from asa_jax import config_specs as specs
from asa_jax.features.constants import CHANNELS
from tests import fake_loader

HUMAN = {"p1": 90, "p2": 60, "p3": 20, "p4": 75, "q1": 85, "q2": 50, "q3": 10,
         "q4": 35}


def _corpus(tmp_path):
  corpus = tmp_path / "corpus"
  corpus.mkdir()
  lines = ["song_id,performance_id,performance_audio,reference_audio,"
           "accompaniment_audio,score,judge_scores,split"]
  rng = np.random.default_rng(0)
  for perf, score in HUMAN.items():
    song = "song1" if perf.startswith("p") else "song2"
    (corpus / f"{perf}.wav").write_bytes(b"")
    (corpus / f"{song}.wav").write_bytes(b"")
    judges = ";".join(str(int(np.clip(score + rng.normal(0, 8), 0, 100)))
                      for _ in range(3))
    lines.append(f"{song},{perf},{perf}.wav,{song}.wav,,{score},{judges},test")
  lines.append("song1,t1,p1.wav,song1.wav,,50,,train")  # other split: not evaluated
  manifest = corpus / "manifest.csv"
  manifest.write_text("\n".join(lines) + "\n")
  return manifest


def _tiny_rori(workdir):
  """A real (tiny) Rori checkpoint in workdir: the initial train state saved as the
  latest checkpoint with B's Checkpoints (training it costs a train-step compile,
  over a minute on a loaded 2-core machine; scoring does not need trained weights),
  plus the stats.json that training would copy."""
  from asa_jax.train import loop  # pylint: disable=g-import-not-at-top
  from asa_jax.train import mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from asa_jax.train.checkpoint import Checkpoints  # pylint: disable=g-import-not-at-top
  config = fake_loader.tiny_config()
  config.eval.batch_size = 4
  config.eval.bootstrap_samples = 200
  _, state = loop.init_state(config, mesh_lib.make_mesh())
  ckpts = Checkpoints(str(workdir))
  try:
    ckpts.save_latest(state, {"step": 0, "epoch": 0, "batch_in_epoch": 0,
                              "best_val_loss": None, "bad_epochs": 0,
                              "stopped": False, "val_loss": None,
                              "train_loss": None})
  finally:
    ckpts.close()
  (workdir / "stats.json").write_text(json.dumps(
      {"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(CHANNELS)}))
  return config


def test_evaluate_systems_learned_failed_and_baselines(tmp_path, monkeypatch):
  from asa_jax import baselines  # pylint: disable=g-import-not-at-top
  from input_pipeline import loader  # pylint: disable=g-import-not-at-top
  from input_pipeline import build  # pylint: disable=g-import-not-at-top
  manifest = _corpus(tmp_path)
  config = _tiny_rori(tmp_path / "rori")
  builds = []

  def fake_build(manifest_path, records_dir, cfg, *, stats_from=None):
    builds.append((records_dir, stats_from))
    os.makedirs(os.path.join(records_dir, "test"), exist_ok=True)

  ref = np.random.default_rng(1).normal(size=(5, 96, 94)).astype(np.float32)

  def fake_segments(records_dir, split):
    assert split == "test"
    rng = np.random.default_rng(2)  # The same clips on every read.
    for perf, score in HUMAN.items():
      for k in range(3):
        noise = (100 - score) / 40
        yield (dict(song_id="song1" if perf.startswith("p") else "song2",
                    performance_id=perf, split="test", segment_start=1.5 * k,
                    score=float(score), transposition=0),
               ref + noise * rng.normal(size=ref.shape).astype(np.float32), ref)

  def fake_baselines(manifest_path, names, *, split, cache_dir, crepe_capacity, log):
    assert split == "test" and crepe_capacity == "tiny"
    assert cache_dir == str(tmp_path / "eval" / "baseline_cache")
    return {name: [scoring.PerformanceScore(
        "song1" if p.startswith("p") else "song2", p, s / 100 + 0.1 * i, float(s))
        for p, s in HUMAN.items()] for i, name in enumerate(names)}

  monkeypatch.setattr(build, "build_records", fake_build)
  monkeypatch.setattr(loader, "load_segments", fake_segments)
  monkeypatch.setattr(baselines, "score_baselines", fake_baselines)
  (tmp_path / "empty").mkdir()
  # Statistics but no checkpoint: the restore itself must fail, by its own message.
  (tmp_path / "nockpt").mkdir()
  (tmp_path / "nockpt" / "stats.json").write_text(
      (tmp_path / "rori" / "stats.json").read_text())
  learned = [run.LearnedSystem("rori", config, str(tmp_path / "rori")),
             run.LearnedSystem("broken", config, str(tmp_path / "empty")),
             run.LearnedSystem("nockpt", config, str(tmp_path / "nockpt")),
             run.LearnedSystem("rori_again", config, str(tmp_path / "rori"))]
  messages = []
  out = tmp_path / "eval"
  result = run.evaluate_systems(
      learned, ["binning", "dtw_pitch", "nonsense"], str(manifest), str(out), "test",
      figure7_rows=("binning", "rori"), skipped={"racc": "not trained"},
      log=messages.append)

  # One records build for the two systems with the same features, own stats each.
  assert builds == [(str(out / "records_original"), str(tmp_path / "rori" /
                                                         "stats.json"))]
  assert set(result["failed"]) == {"broken", "nockpt", "nonsense", "racc"}
  assert result["failed"]["broken"].startswith("FileNotFoundError: ")
  assert "stats.json: training statistics not found" in result["failed"]["broken"]
  assert result["failed"]["nockpt"] == (
      f"FileNotFoundError: no checkpoint under {tmp_path / 'nockpt'}/checkpoints")
  assert result["failed"]["nonsense"].startswith("KeyError: ")
  assert "unknown baseline" in result["failed"]["nonsense"]
  assert result["failed"]["racc"] == "not trained"
  assert list(result["scores"]) == ["rori", "rori_again", "binning", "dtw_pitch"]
  assert len(result["scores"]["rori"]) == 8
  doc = json.loads((out / "pearson.json").read_text())
  assert set(doc) == {"rori", "rori_again", "binning", "dtw_pitch", "_meta"}
  assert doc["rori"]["mix"]["n"] == 8 and len(doc["rori"]["mix"]["ci95"]) == 2
  assert doc["rori"] == doc["rori_again"]  # same model, same records, same seed
  assert doc["_meta"]["bootstrap"]["resamples"] == 200  # config.eval
  assert doc["_meta"]["inter_judge"]["overall"]["n_judges"] == 3
  assert doc["_meta"]["inter_judge"]["overall"]["n_performances"] == 8
  assert set(doc["_meta"]["failed"]) == {"broken", "nockpt", "nonsense", "racc"}
  # The other papers' metrics are written for every scored system.
  emb = json.loads((out / "embedding_metrics.json").read_text())
  assert str(out / "embedding_metrics.json") in result["figures"]
  assert set(emb) == {"rori", "rori_again", "binning", "dtw_pitch"}
  assert "embeddings" in emb["rori"] and "embeddings" not in emb["binning"]
  from sklearn.metrics import r2_score  # pylint: disable=g-import-not-at-top
  binning = result["scores"]["binning"]
  assert emb["binning"]["r2"] == pytest.approx(
      r2_score([s.human for s in binning], [s.predicted for s in binning]))
  table = (out / "table.md").read_text()
  rows = [[c.strip() for c in l.strip("|").split("|")]
          for l in table.splitlines() if l.startswith("| ")]
  assert [r[:3] for r in rows[1:]] == [
      ["Proposed", "Rori", "Original Track"],
      ["Proposed", "rori_again", "Original Track"],
      ["Histogram", "binning", "None"], ["DTWDist", "pitch", "Original Track f0"]]
  assert "Inter-judge agreement" in table and "Not evaluated: " in table
  with open(out / "scores.csv", newline="") as f:
    assert len(list(csv.DictReader(f))) == 32
  for name in ("figure6.png", "figure7.png", "scatter_rori.png", "scatter_binning.png",
               "clip_embeddings_rori.npz"):
    assert (out / name).stat().st_size > 0, name
  assert not (out / "clip_embeddings_broken.npz").exists()
  npz = np.load(out / "clip_embeddings_rori.npz")
  assert npz["performance"].shape == (24, config.model.embedding_dim)
  assert any("[broken] FAILED" in m for m in messages)
  assert any("[nockpt] FAILED, skipped: FileNotFoundError: no checkpoint under" in m
             for m in messages)

  # evaluate() (eval.py, one system) raises a system's error instead of skipping.
  monkeypatch.setattr(build, "build_records", fake_build)
  with pytest.raises(FileNotFoundError, match="no checkpoint under .*nockpt/checkpoints"):
    run.evaluate(config, str(tmp_path / "nockpt"), str(manifest),
                 str(tmp_path / "eval_one"), "test", log=messages.append)
  with pytest.raises(FileNotFoundError, match="training statistics not found"):
    run.evaluate(config, str(tmp_path / "empty"), str(manifest),
                 str(tmp_path / "eval_two"), "test", log=messages.append)


# --- The Table 2 script: plan, train, resume ----------------------------------------

FAKE_TRAIN = """
import json, os, sys
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
name = os.path.basename(args["workdir"])
with open(os.environ["FAKE_TRAIN_CALLS"], "a") as f:
  f.write(json.dumps({"name": name, "argv": sys.argv[1:]}) + "\\n")
print("fake training", name)
sys.exit(3 if name in open(os.environ["FAKE_TRAIN_FAIL"]).read().split() else 0)
"""


def _suite():
  s = ml_collections.ConfigDict()
  s.suite = "test"
  s.split = "test"
  s.systems = (("rori", "configs/rori.py:demo"), ("direct", "configs/direct.py:demo"),
               ("embdirect", "configs/embdirect.py:demo"),
               ("rori_spec", "configs/rori.py:demo,ablation_spec"),
               ("missing", "configs/nonexistent.py:demo"))
  s.rori_spec = "configs/rori.py:demo"
  s.baselines = ()
  s.baseline_crepe_capacity = "tiny"
  s.figure6_system = "rori"
  s.figure7_rows = ("rori_spec", "rori")
  return s


def _calls(path):
  if not path.exists():
    return []
  return [json.loads(l) for l in path.read_text().splitlines()]


def test_table2_resume_skips_done_and_reports_failures(tmp_path, monkeypatch):
  script = tmp_path / "fake_train.py"
  script.write_text(FAKE_TRAIN)
  calls, fail = tmp_path / "calls.jsonl", tmp_path / "fail.txt"
  monkeypatch.setenv("FAKE_TRAIN_CALLS", str(calls))
  monkeypatch.setenv("FAKE_TRAIN_FAIL", str(fail))
  root = tmp_path / "root"
  manifest = tmp_path / "manifest.csv"
  base = [sys.executable, str(script)]
  evaluated = []

  def fake_evaluate(learned, baselines, manifest_path, output_dir, split, **kw):
    evaluated.append(([s.name for s in learned], dict(kw["skipped"])))
    return {"failed": dict(kw["skipped"])}

  monkeypatch.setattr(run, "evaluate_systems", fake_evaluate)
  run_suite = lambda **kw: pipeline.run_suite(
      _suite(), str(manifest), str(root), train_base=base,
      extra_overrides=["train.max_steps=5"], log=lambda m: None, **kw)

  # Run 1: rori fails -> embdirect is not started; direct, rori_spec train.
  fail.write_text("rori")
  assert run_suite() == 1
  assert [c["name"] for c in _calls(calls)] == ["rori", "direct", "rori_spec"]
  assert not (root / "rori" / pipeline.DONE).exists()
  assert (root / "direct" / pipeline.DONE).exists()
  assert "fake training rori" in (root / "rori" / "train.log").read_text()
  summary = json.loads((root / "summary.json").read_text())
  assert summary["training"]["rori"].startswith("failed: train.py exited with status 3")
  assert "needs a trained Rori" in summary["training"]["embdirect"]
  assert "does not load" in summary["training"]["missing"]
  learned, skipped = evaluated[-1]
  assert learned == ["direct", "rori_spec"]  # only DONE systems are evaluated
  assert set(skipped) == {"rori", "embdirect", "missing"}

  # Run 2: rori now trains; DONE systems are not retrained; embdirect follows rori.
  fail.write_text("")
  assert run_suite() == 1  # 'missing' still fails
  assert [c["name"] for c in _calls(calls)][3:] == ["rori", "embdirect"]
  emb = _calls(calls)[-1]["argv"]
  assert f"--workdir={root / 'embdirect'}" in emb
  assert f"--config.embdirect.rori_workdir={root / 'rori'}" in emb
  assert "--config.embdirect.rori_config=configs/rori.py:demo" in emb
  assert f"--config.data.records_dir={root / 'records_original'}" in emb
  assert f"--config.data.manifest={manifest}" in emb
  assert emb[-1] == "--config.train.max_steps=5" and emb[0] == "--config=configs/embdirect.py:demo"
  done = json.loads((root / "rori" / pipeline.DONE).read_text())
  assert done["spec"] == "configs/rori.py:demo"
  assert evaluated[-1][0] == ["rori", "direct", "embdirect", "rori_spec"]

  # Run 3: everything trained is skipped; --only restricts; exit 0 without failures.
  assert run_suite(only=["rori", "embdirect"]) == 0
  assert len(_calls(calls)) == 5
  assert evaluated[-1] == (["rori", "embdirect"], {})
  assert run_suite(skip_training=True, only=["direct"]) == 0
  with pytest.raises(ValueError, match="unknown system"):
    run_suite(only=["nope"])


def test_plan_jobs_records_per_reference_and_suites_load(tmp_path):
  suite = pipeline.load_suite("demo")
  assert [n for n, _ in suite.systems] == [
      "rori", "racc", "direct", "delta", "embdirect", "hinge_rank", "siamese",
      "contrastive_regression", "rori_spec", "rori_spec_f0", "rori_spec_f0_chroma"]
  jobs = {j.name: j for j in pipeline.plan_jobs(suite, str(tmp_path), "m.csv")}
  assert all(j.error is None for j in jobs.values()), [j.error for j in jobs.values()]
  assert f"data.records_dir={tmp_path / 'records_accompaniment'}" in jobs["racc"].overrides
  assert f"data.records_dir={tmp_path / 'records_original'}" in jobs["delta"].overrides
  for name, job in jobs.items():  # every spec loads and names its row as the suite does
    assert report.system_name(specs.load_config(job.spec, job.overrides)) == name
  ssvd = pipeline.load_suite("ssvd")
  assert "racc" not in [n for n, _ in ssvd.systems]
  assert ssvd.manifest == "data/ssvd/manifest.csv"
  assert pipeline.load_suite("paper").systems[0] == ("rori", "configs/rori.py")


def test_specs_overrides():
  config = specs.load_config("configs/rori.py:demo", [
      "train.max_steps=7", "train.learning_rate=0.5", "features.channels=('spec',)",
      "data.key_align=shift", "train.progress_bar=false"])
  assert config.train.max_steps == 7 and config.train.learning_rate == 0.5
  assert config.features.channels == ("spec",) and config.data.key_align == "shift"
  assert config.train.progress_bar is False
  with pytest.raises(KeyError, match="no config field"):
    specs.apply_override(config, "train.nope=1")
  with pytest.raises(ValueError, match="dotted.key=value"):
    specs.apply_override(config, "train.max_steps")
  with pytest.raises(FileNotFoundError, match="config file 'configs/nope.py' not found"):
    specs.load_config("configs/nope.py")
