"""asa_jax.evaluation.embedding_metrics: retrieval, k-NN, Davies-Bouldin, R^2."""

import numpy as np
import pytest

from asa_jax.evaluation import embedding_metrics as em


def test_retrieval_by_hand():
  emb = np.array([[0.0], [1.0], [10.0], [11.0], [30.0]])
  labels = ["a", "a", "b", "b", "c"]  # "c" has no other item: not a query.
  out = em.retrieval(emb, labels, ks=(1, 2))
  assert out["queries"] == 4
  assert out["P@1"] == 1.0 and out["R@1"] == 1.0
  assert out["P@2"] == 0.5 and out["R@2"] == 1.0
  assert out["mAP"] == pytest.approx(1.0)
  worse = em.retrieval(emb, ["a", "b", "a", "b", "c"], ks=(1,))
  assert worse["P@1"] == 0.0 and worse["mAP"] < 1.0
  with pytest.raises(ValueError, match="one label each"):
    em.retrieval(emb, ["a"])


def test_knn_davies_bouldin_and_performance_means():
  rng = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 5.0]])
  labels = np.repeat(["x", "y", "z"], 10)
  emb = centres[np.repeat(np.arange(3), 10)] + 0.1 * rng.standard_normal((30, 2))
  assert em.knn_accuracy(emb, labels, k=3) == 1.0
  shuffled = rng.permutation(labels)
  assert em.knn_accuracy(emb, shuffled, k=3) < 0.8
  good, bad = em.davies_bouldin(emb, labels), em.davies_bouldin(emb, shuffled)
  assert good < 0.2 < bad
  assert em.davies_bouldin(emb, ["one"] * 30) is None
  with pytest.raises(ValueError, match="k-NN"):
    em.knn_accuracy(emb[:3], labels[:3], k=3)
  clips = np.array([[0.0, 2.0], [2.0, 4.0], [10.0, 10.0]])
  perf, order = em.performance_embeddings(clips, ["p", "p", "q"])
  assert order == ["p", "q"]
  np.testing.assert_allclose(perf, [[1.0, 3.0], [10.0, 10.0]])
  report = em.embedding_report(emb, [f"p{i}" for i in range(30)],
                               {"song": {f"p{i}": str(labels[i]) for i in range(30)},
                                "singer": {"p0": "s"}}, k=3)
  assert report["song"]["knn_accuracy"] == 1.0 and report["song"]["labels"] == 3
  assert report["singer"]["performances"] == 1 and report["singer"]["retrieval"] is None


def test_r2_by_hand():
  human = np.array([1.0, 2.0, 3.0, 4.0])
  pred = np.array([1.5, 2.0, 2.5, 4.0])
  ss_res = np.sum((human - pred) ** 2)
  ss_tot = np.sum((human - human.mean()) ** 2)
  assert em.r2(pred, human) == pytest.approx(1 - ss_res / ss_tot)
  assert em.r2([1.0], [1.0]) is None


def test_evaluation_reports_r2_and_embedding_metrics(tmp_path):
  from asa_jax.evaluation import run, scoring  # pylint: disable=g-import-not-at-top
  manifest = tmp_path / "m.csv"
  manifest.write_text("song_id,performance_id,singer\n" + "".join(
      f"s{i % 2},p{i},v{i % 3}\n" for i in range(12)))
  scores = {"sys": [scoring.PerformanceScore(f"s{i % 2}", f"p{i}", 10.0 * i, 10.0 * i)
                    for i in range(12)],
            "base": [scoring.PerformanceScore("s0", "p0", 1.0, None)]}
  meta = [{"song_id": f"s{i % 2}", "performance_id": f"p{i}"} for i in range(12)
          for _ in range(2)]
  emb = np.array([[i % 2 * 10.0, 0.0] for i in range(12) for _ in range(2)])
  clips = {"sys": scoring.ClipEmbeddings(meta, emb, np.zeros((24, 0)), np.zeros(24))}
  out = run.other_metrics(scores, clips, str(manifest))
  assert out["sys"]["r2"] == pytest.approx(1.0) and out["base"]["r2"] is None
  song = out["sys"]["embeddings"]["song"]
  assert song["performances"] == 12 and song["knn_accuracy"] == 1.0
  assert out["sys"]["embeddings"]["singer"]["labels"] == 3
  assert "embeddings" not in out["base"]
