r"""Metrics of the other papers' systems: embedding retrieval and clustering, R^2.

    python -m asa_jax.evaluation.embedding_metrics \
        --embeddings=runs/eval/clip_embeddings_rori.npz [--manifest=data/real/manifest.csv]

For embeddings (Lee & Nam 2019; the singer-embedding study), on performance
embeddings (the mean of a performance's clip embeddings, as the singer-embedding study
summarises a performance), labelled by song and, where the manifest has a `singer`
column, by singer:
  * top-k retrieval: each performance queries all others by Euclidean distance;
    relevant = same label. P@k (precision in the top k), R@k (recall of the
    relevant ones in the top k) and mAP (scikit-learn `average_precision_score` per
    query, mean over queries with a relevant item);
  * leave-one-out k-NN classification accuracy (majority label of the k nearest
    others; ties to the nearest);
  * Davies-Bouldin index (scikit-learn `davies_bouldin_score`; lower = tighter,
    better separated clusters).
For regression (Seshadri & Lerch 2021): R^2 of predicted vs human scores
(scikit-learn `r2_score`), beside Pearson's r.
"""

from __future__ import annotations

import collections
import json
import math
import sys
from typing import Sequence

import numpy as np


def performance_embeddings(clip_emb: np.ndarray, performance_ids: Sequence[str]
                           ) -> tuple[np.ndarray, list[str]]:
  """Mean clip embedding per performance.

  Args:
    clip_emb: float (N, D) clip embeddings.
    performance_ids: N performance ids (clip order).

  Returns:
    (float64 (P, D) embeddings, P performance ids in first-seen order).
  """
  order = list(dict.fromkeys(performance_ids))
  rows = collections.defaultdict(list)
  for i, p in enumerate(performance_ids):
    rows[p].append(i)
  emb = np.stack([np.asarray(clip_emb, np.float64)[rows[p]].mean(axis=0) for p in order])
  return emb, order


def _ranked_neighbours(emb: np.ndarray) -> np.ndarray:
  """(P, P-1) indices of the other items, nearest first (Euclidean; stable ties)."""
  d = np.sum((emb[:, None, :] - emb[None, :, :]) ** 2, axis=-1)
  np.fill_diagonal(d, np.inf)
  return np.argsort(d, axis=1, kind="stable")[:, :-1]


def retrieval(emb: np.ndarray, labels: Sequence[str], ks: Sequence[int] = (1, 5, 10)
              ) -> dict:
  """Top-k retrieval of same-label items: {"P@k", "R@k" per k, "mAP", "queries"}.

  Queries without any other item of their label are left out (counted in
  "queries" only when they have one). Values are None when no query qualifies.

  Raises:
    ValueError: fewer than 2 items, or labels of another length.
  """
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  labels = np.asarray(labels, dtype=object)
  if len(emb) < 2 or len(labels) != len(emb):
    raise ValueError(f"need >= 2 embeddings and one label each; got {len(emb)} and "
                     f"{len(labels)}")
  ranked = _ranked_neighbours(np.asarray(emb, np.float64))
  d = np.sum((emb[:, None, :] - emb[None, :, :]) ** 2, axis=-1)
  out: dict = {}
  precision = {k: [] for k in ks}
  recall = {k: [] for k in ks}
  aps = []
  for q in range(len(emb)):
    rel = labels[ranked[q]] == labels[q]
    if not rel.any():
      continue
    for k in ks:
      top = rel[:k]
      precision[k].append(top.sum() / min(k, len(rel)))
      recall[k].append(top.sum() / rel.sum())
    others = np.delete(np.arange(len(emb)), q)
    aps.append(metrics.average_precision_score(labels[others] == labels[q],
                                               -d[q, others]))
  for k in ks:
    out[f"P@{k}"] = float(np.mean(precision[k])) if precision[k] else None
    out[f"R@{k}"] = float(np.mean(recall[k])) if recall[k] else None
  out["mAP"] = float(np.mean(aps)) if aps else None
  out["queries"] = len(aps)
  return out


def knn_accuracy(emb: np.ndarray, labels: Sequence[str], k: int = 5) -> float:
  """Leave-one-out k-NN accuracy (majority of the k nearest others; ties: nearest).

  Raises:
    ValueError: k < 1 or fewer than k + 1 items.
  """
  labels = np.asarray(labels, dtype=object)
  if k < 1 or len(emb) < k + 1:
    raise ValueError(f"k-NN needs k >= 1 and more than k items; got k={k}, "
                     f"{len(emb)} items")
  ranked = _ranked_neighbours(np.asarray(emb, np.float64))[:, :k]
  correct = 0
  for q in range(len(emb)):
    votes = collections.Counter(labels[ranked[q]])
    best = max(votes.values())
    winner = next(lab for lab in labels[ranked[q]] if votes[lab] == best)
    correct += winner == labels[q]
  return correct / len(emb)


def davies_bouldin(emb: np.ndarray, labels: Sequence[str]) -> float | None:
  """scikit-learn's Davies-Bouldin index; None with < 2 labels or as many as items."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  n_labels = len(set(labels))
  if n_labels < 2 or n_labels >= len(emb):
    return None
  return float(metrics.davies_bouldin_score(np.asarray(emb, np.float64), list(labels)))


def r2(predicted: Sequence[float], human: Sequence[float]) -> float | None:
  """scikit-learn's R^2 of predictions against human scores (None with < 2 pairs)."""
  from sklearn import metrics  # pylint: disable=g-import-not-at-top
  if len(predicted) < 2:
    return None
  return float(metrics.r2_score(np.asarray(human, np.float64),
                                np.asarray(predicted, np.float64)))


def embedding_report(clip_emb: np.ndarray, performance_ids: Sequence[str],
                     label_sets: dict[str, dict[str, str]], *, k: int = 5) -> dict:
  """Retrieval, k-NN accuracy and Davies-Bouldin index per label set.

  Args:
    clip_emb: (N, D) clip embeddings; performance_ids: their N performances.
    label_sets: name (e.g. "song", "singer") -> {performance_id: label}; a
      performance without a label in a set is left out of that set.
    k: k of the k-NN accuracy.

  Returns:
    {name: {"performances", "labels", "retrieval", "knn_accuracy", "davies_bouldin"}}
    (entries None where too few items or labels).
  """
  emb, order = performance_embeddings(clip_emb, performance_ids)
  out = {}
  for name, label_of in label_sets.items():
    keep = [i for i, p in enumerate(order) if label_of.get(p)]
    e = emb[keep]
    labels = [label_of[order[i]] for i in keep]
    entry = {"performances": len(keep), "labels": len(set(labels)),
             "retrieval": None, "knn_accuracy": None, "davies_bouldin": None}
    if len(keep) >= 2:
      entry["retrieval"] = retrieval(e, labels)
      entry["davies_bouldin"] = davies_bouldin(e, labels)
    if len(keep) > k:
      entry["knn_accuracy"] = knn_accuracy(e, labels, k)
    out[name] = entry
  return out


def main(argv) -> int:
  """CLI (see module doc): prints the JSON report of one clip_embeddings npz."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  z = np.load(f.embeddings)
  pids = [str(p) for p in z["performance_id"]]
  sets = {"song": dict(zip(pids, (str(s) for s in z["song_id"])))}
  if f.manifest:
    from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
    singers = manifest_lib.column(f.manifest, "singer")
    if singers:
      sets["singer"] = {pid: singer for pid, singer in singers.items() if singer}
  report = embedding_report(z["performance"], pids, sets, k=f.k)
  human = np.asarray(z["human"], np.float64)
  emb_pred, order = performance_embeddings(
      np.stack([z["similarity"], human], axis=1), pids)
  ok = np.isfinite(emb_pred[:, 1])
  report["r2_performance_scores"] = r2(emb_pred[ok, 0], emb_pred[ok, 1])
  print(json.dumps(report, indent=1, default=lambda x: None if x is None or (
      isinstance(x, float) and math.isnan(x)) else x))
  return 0


if __name__ == "__main__":
  from absl import app, flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("embeddings", None, "eval.py clip_embeddings_<system>.npz",
                      required=True)
  flags.DEFINE_string("manifest", "", "Manifest with a singer column (optional).")
  flags.DEFINE_integer("k", 5, "k of the k-NN accuracy.")
  sys.exit(app.run(main))
