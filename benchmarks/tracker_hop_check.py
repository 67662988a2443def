"""The shipped default scorer on SSVD v1 with other contour trackers.

  PYTHONPATH=. python benchmarks/tracker_hop_check.py [--variants=160,320,praat]
      [--out=runs/pitch/ssvd_hop.csv]

Issue 20, part 1 ("the 20 ms hop where the scorer does not need 10 ms"; "a faster
tracker only if its accuracy holds"): the same fitted scorer (`Assessor.default()`,
no refit) scores every SSVD v1 performance of `input_pipeline.corpora.ssvd.
build_manifest` against its reference (the melody's best-scored recording) once per
variant: 160 (CREPE every 10 ms: the fit's contours), 320 (CREPE every 20 ms, the
frames between interpolated), praat (`extract_contours(tracker="praat")`). The
first variant is the baseline. Prints Pearson's r of each with the note-label score,
the median and largest |score difference| from the baseline, refusals and the
time. Rows are appended to --out as they finish (resumes; the student's rows are
keyed by its weights, `contours.tracker_tag`).
Note: the fusion was fitted on these same rows (in-sample for every variant), so the
difference from the baseline, not the level, is the figure.
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
  p.add_argument("--variants", default="160,320",
                 help="comma-separated: a CREPE network hop in samples, 'praat' or "
                 "'student'")
  args = p.parse_args()
  variants = args.variants.split(",")
  sys.path.insert(0, REPO)
  from asa_jax.assess import Assessor, AssessmentError  # pylint: disable=g-import-not-at-top
  from asa_jax.baselines import contours  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  # A row's variant names the student's weights too: retrained ones never resume
  # from the old ones' rows.
  key = {v: contours.tracker_tag(v) for v in variants}
  rows = ssvd.build_manifest(args.ssvd_dir)["rows"]
  done = {}
  if os.path.exists(args.out):
    with open(args.out, encoding="utf-8") as f:
      for r in csv.DictReader(f):
        done[(r["performance_id"], r.get("variant") or r["network_hop"])] = r
  assessors = {}
  for v in variants:
    a = Assessor.default()
    if v in ("praat", "student"):
      a._scorer.tracker = v  # pylint: disable=protected-access
    else:
      a._scorer.network_hop = int(v)  # pylint: disable=protected-access
    assessors[v] = a
  new = not os.path.exists(args.out)
  os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
  with open(args.out, "a", encoding="utf-8", newline="") as f:
    w = csv.writer(f)
    if new:
      w.writerow(["performance_id", "variant", "target", "score", "seconds", "error"])
    for r in rows:
      for hop, a in assessors.items():
        if (r["performance_id"], key[hop]) in done:
          continue
        t = time.perf_counter()
        try:
          score, err = a.assess(r["performance_audio"], r["reference_audio"]).score, ""
        except AssessmentError as e:
          score, err = float("nan"), str(e).replace("\n", " ")[:200]
        row = [r["performance_id"], key[hop], r["score"], score, time.perf_counter() - t, err]
        w.writerow(row)
        f.flush()
        done[(r["performance_id"], key[hop])] = dict(zip(
            ["performance_id", "variant", "target", "score", "seconds", "error"],
            map(str, row)))
  from scipy import stats  # pylint: disable=g-import-not-at-top
  ids = sorted({k[0] for k in done})
  ids = [i for i in ids if all((i, key[v]) in done for v in variants)]
  tab = {v: np.array([float(done[(i, key[v])]["score"]) for i in ids]) for v in variants}
  target = np.array([float(done[(i, key[variants[0]])]["target"]) for i in ids])
  secs = {v: sum(float(done[(i, key[v])]["seconds"]) for i in ids) for v in variants}
  base = variants[0]
  for v in variants:
    ok = np.isfinite(tab[v])
    print(f"{v}: r {stats.pearsonr(tab[v][ok], target[ok])[0]:.4f} "
          f"(n {ok.sum()}, refused {(~ok).sum()}), total {secs[v]:.1f} s")
  for v in variants[1:]:
    both = np.isfinite(tab[base]) & np.isfinite(tab[v])
    d = np.abs(tab[base] - tab[v])[both]
    print(f"{base} vs {v} on rows scored by both (n {both.sum()}): "
          f"r {stats.pearsonr(tab[base][both], target[both])[0]:.4f} vs "
          f"{stats.pearsonr(tab[v][both], target[both])[0]:.4f}; |score difference| "
          f"median {np.median(d):.2f}, p90 {np.percentile(d, 90):.2f}, max {d.max():.2f}")


if __name__ == "__main__":
  main()
