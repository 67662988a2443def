"""The shipped default scorer on SSVD v1 with CREPE at a 10 ms and a 20 ms hop.

  PYTHONPATH=. python benchmarks/tracker_hop_check.py [--out=runs/pitch/ssvd_hop.csv]

Issue 20, part 1 ("the 20 ms hop where the scorer does not need 10 ms"): the same
fitted scorer (`Assessor.default()`, no refit) scores every SSVD v1 performance of
`input_pipeline.corpora.ssvd.build_manifest` against its reference (the melody's
best-scored recording) twice: with `network_hop` 160 (the fit's contours) and 320
(CREPE every 20 ms, the frames between interpolated). Prints Pearson's r of each
with the note-label score, the median and largest |score difference|, refusals and
the CREPE share of the time. Rows are appended to --out as they finish (resumes).
Note: the fusion was fitted on these same rows (in-sample for both hops), so the
difference between the two, not their level, is the figure.
"""

import argparse
import csv
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--ssvd_dir", default=os.path.join(REPO, "..", "shared", "data", "ssvd"))
  p.add_argument("--out", default=os.path.join(REPO, "runs", "pitch", "ssvd_hop.csv"))
  args = p.parse_args()
  sys.path.insert(0, REPO)
  from asa_jax.assess import Assessor, AssessmentError  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  rows = ssvd.build_manifest(args.ssvd_dir)["rows"]
  done = {}
  if os.path.exists(args.out):
    with open(args.out, encoding="utf-8") as f:
      for r in csv.DictReader(f):
        done[(r["performance_id"], r["network_hop"])] = r
  assessors = {}
  for hop in (160, 320):
    a = Assessor.default()
    a._scorer.network_hop = hop  # pylint: disable=protected-access
    assessors[hop] = a
  new = not os.path.exists(args.out)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "a", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    if new:
      w.writerow(["performance_id", "network_hop", "target", "score", "seconds", "error"])
    for r in rows:
      for hop, a in assessors.items():
        if (r["performance_id"], str(hop)) in done:
          continue
        t = time.perf_counter()
        try:
          score, err = a.assess(r["performance_audio"], r["reference_audio"]).score, ""
        except AssessmentError as e:
          score, err = float("nan"), str(e).replace("\n", " ")[:200]
        row = [r["performance_id"], hop, r["score"], score, time.perf_counter() - t, err]
        w.writerow(row)
        f.flush()
        done[(r["performance_id"], str(hop))] = dict(zip(
            ["performance_id", "network_hop", "target", "score", "seconds", "error"],
            map(str, row)))
  from scipy import stats  # pylint: disable=g-import-not-at-top
  ids = sorted({k[0] for k in done})
  tab = {hop: np.array([float(done[(i, str(hop))]["score"]) for i in ids]) for hop in (160, 320)}
  target = np.array([float(done[(i, "160")]["target"]) for i in ids])
  secs = {hop: sum(float(done[(i, str(hop))]["seconds"]) for i in ids) for hop in (160, 320)}
  both = np.isfinite(tab[160]) & np.isfinite(tab[320])
  d = np.abs(tab[160] - tab[320])[both]
  for hop in (160, 320):
    ok = np.isfinite(tab[hop])
    print(f"network_hop {hop}: r {stats.pearsonr(tab[hop][ok], target[ok])[0]:.4f} "
          f"(n {ok.sum()}, refused {(~ok).sum()}), total {secs[hop]:.1f} s")
  print(f"r on rows scored by both (n {both.sum()}): "
        f"{stats.pearsonr(tab[160][both], target[both])[0]:.4f} vs "
        f"{stats.pearsonr(tab[320][both], target[both])[0]:.4f}; |score difference| "
        f"median {np.median(d):.2f}, p90 {np.percentile(d, 90):.2f}, max {d.max():.2f}")


if __name__ == "__main__":
  main()
