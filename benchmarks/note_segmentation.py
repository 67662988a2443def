"""Reference-note segmentation (`asa_jax.assess.notes.segment`) against SSVD's notes.

  PYTHONPATH=. python benchmarks/note_segmentation.py [--cache_dir=runs/contours32]
      [--recordings=40]

The SSVD v2 labels (../shared/data/ssvd_v2/labels/test/<id>.txt: onset, offset, MIDI)
annotate every sung note of the 127 SSVD v1 recordings. For the first --recordings of
melodies.csv that have a label file, the notes `notes.segment` finds on the assessor's feedback contours
(32 ms, `benchmarks/melody_confidence.feedback_contours`, cached) are compared with
them: onset precision / recall / F (one-to-one matches within 100 ms, found by
scipy's linear_sum_assignment on |time difference|; mir_eval is not in the lock), the
number of notes, and, for matched onsets, the median |pitch difference| in cents.
Prints one line of totals (BUILD_NOTES.md, issue 19).
"""

import argparse
import csv
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "benchmarks"))

import melody_confidence  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.assess import notes  # pylint: disable=g-import-not-at-top,wrong-import-position

DATA = os.path.join(REPO, "..", "shared", "data")


def match(ref: np.ndarray, est: np.ndarray, window: float) -> list[tuple[int, int]]:
  """One-to-one (ref index, est index) pairs within window seconds."""
  from scipy.optimize import linear_sum_assignment  # pylint: disable=g-import-not-at-top
  if not len(ref) or not len(est):
    return []
  d = np.abs(ref[:, None] - est[None, :])
  rows, cols = linear_sum_assignment(np.where(d <= window, d, 1e6))
  return [(i, j) for i, j in zip(rows, cols) if d[i, j] <= window]


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--cache_dir", default=os.path.join(REPO, "runs", "contours32"))
  p.add_argument("--recordings", type=int, default=40)
  args = p.parse_args()
  with open(os.path.join(DATA, "ssvd", "melodies.csv"), newline="",
            encoding="utf-8") as f:
    ids = [r["recording_id"] for r in csv.DictReader(f)]
  label_dir = os.path.join(DATA, "ssvd_v2", "labels", "test")
  ids = [i for i in ids if os.path.isfile(os.path.join(label_dir, f"{i}.txt"))]
  ids = ids[:args.recordings]
  found = truth = 0
  prf, pitch = [], []
  for rid in ids:
    labels = np.loadtxt(os.path.join(label_dir, f"{rid}.txt"), ndmin=2)
    c = melody_confidence.feedback_contours(
        os.path.join(DATA, "ssvd", rid, f"{rid}.mp3"), args.cache_dir)
    seg = notes.segment(c)
    est = np.array([n.onset_s for n in seg])
    ref = labels[:, 0]
    pairs = match(ref, est, 0.1)
    precision, recall = len(pairs) / max(len(est), 1), len(pairs) / max(len(ref), 1)
    prf.append((2 * precision * recall / max(precision + recall, 1e-9), precision,
                recall))
    found += len(est)
    truth += len(ref)
    for i, j in pairs:
      pitch.append(abs(69 + seg[j].cents / 100 - labels[i, 2]) * 100)
  f, precision, recall = np.mean(prf, axis=0)
  print(f"{len(ids)} recordings: {found} notes found, {truth} annotated; onset F "
        f"{f:.3f} (precision {precision:.3f}, recall {recall:.3f}, 100 ms, mean over "
        f"recordings); matched notes' |pitch - annotation| median "
        f"{np.median(pitch):.0f} cents, 90th percentile {np.percentile(pitch, 90):.0f}")


if __name__ == "__main__":
  main()
