"""asa_jax.evaluation.ranking: mean per-source Spearman of degraded versions."""

import numpy as np
import pytest

from asa_jax.evaluation import ranking


def test_ranking_per_source_spearman(tmp_path):
  manifest = tmp_path / "manifest.csv"
  lines = ["song_id,performance_id,score,split,source_id,corpus"]
  score_lines = ["system,song_id,performance_id,predicted,human"]
  rng = np.random.default_rng(0)
  for s in range(6):
    labels = [100.0, 80.0, 55.0, 30.0]
    for k, label in enumerate(labels):
      pid = f"src{s}_v{k}"
      lines.append(f"song{s},{pid},{label},test,src{s},mir1k")
      score_lines.append(f"good,song{s},{pid},{label / 100 + 0.01 * rng.random()},{label}")
      score_lines.append(f"reversed,song{s},{pid},{-label},{label}")
      score_lines.append(f"mixed,song{s},{pid},{label if s % 2 else -label},{label}")
  # A source with 2 versions has no defined rho; an unlabelled row is ignored.
  lines += ["song9,tiny_v0,90,test,tiny,ssvd", "song9,tiny_v1,20,test,tiny,ssvd"]
  score_lines += ["good,song9,tiny_v0,0.9,90", "good,song9,tiny_v1,0.2,20",
                  "good,song9,unknown,0.5,"]
  manifest.write_text("\n".join(lines) + "\n")
  scores = tmp_path / "scores.csv"
  scores.write_text("\n".join(score_lines) + "\n")
  out = ranking.ranking(str(scores), ranking.read_sources(str(manifest)),
                        resamples=200)
  assert out["good"]["mean_rho"] == pytest.approx(1.0)
  assert out["good"]["sources"] == 6 and out["good"]["ci95"] is None  # All equal.
  assert out["reversed"]["mean_rho"] == pytest.approx(-1.0)
  mixed = out["mixed"]
  assert mixed["mean_rho"] == pytest.approx(0.0)
  assert mixed["ci95"][0] < 0.0 < mixed["ci95"][1]
  assert out["good"]["per_corpus"] == {"mir1k": pytest.approx(1.0)}
  assert out["good"]["pearson_per_corpus"]["mir1k"][0] > 0.99
  assert out["good"]["pearson_per_corpus"]["mir1k"][1] == 24
  assert out["good"]["pearson_per_corpus"]["ssvd"] == [None, 2]
  with pytest.raises(ValueError, match="source_id"):
    bad = tmp_path / "plain.csv"
    bad.write_text("song_id,performance_id\n")
    ranking.read_sources(str(bad))
