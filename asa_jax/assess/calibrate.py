"""Fits a calibration from an evaluation's scores.csv (e.g. for a baseline).

  python -m asa_jax.assess.calibrate --scores=runs/x/eval/scores.csv \\
      --system=dtw_melody --output=dtw_melody_calibration.json [--method=isotonic]

A learned system gets its calibration at the end of training (calibration.json in its
workdir); a rule-based baseline has no training run, so fit it on the labelled scores
of an evaluation (prefer a split you will not report on). Prints the fit's metrics.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Sequence

from asa_jax.evaluation import calibration as calibration_lib
from asa_jax.evaluation import report


def read_scores(path: str, system: str) -> tuple[list[float], list[float | None]]:
  """(raw, human) of one system's rows of an eval scores.csv.

  Raises:
    FileNotFoundError: no such file.
    ValueError: no row of that system (names the systems present).
  """
  raw, human, present = [], [], set()
  for row in report.read_scores_csv(path):
    present.add(row["system"])
    if row["system"] != system:
      continue
    raw.append(float("nan") if row["predicted"] is None else row["predicted"])
    human.append(row["human"])
  if not raw:
    raise ValueError(f"{path}: no row of system {system!r}; systems: {sorted(present)}")
  return raw, human


def main(argv: Sequence[str] | None = None) -> int:
  """CLI entry point; returns the exit code (0 ok, 1 bad input)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--scores", required=True, help="an eval.py scores.csv")
  p.add_argument("--system", required=True, help="its 'system' column value")
  p.add_argument("--output", required=True, help="calibration JSON to write")
  p.add_argument("--method", default="linear", choices=calibration_lib.METHODS)
  args = p.parse_args(argv)
  try:
    raw, human = read_scores(args.scores, args.system)
  except (OSError, ValueError, KeyError) as e:
    print(f"calibrate: {e}", file=sys.stderr)
    return 1
  cal = calibration_lib.fit(raw, human, method=args.method,
                            source=f"{args.scores} ({args.system})")
  calibration_lib.save(cal, args.output)
  m = cal.fit_metrics
  fmt = lambda v: "nan" if v is None or math.isnan(v) else f"{v:.3f}"
  print(f"{cal.method} calibration of {cal.n} scores -> {args.output}: Pearson raw "
        f"{fmt(m['pearson_raw'])}, calibrated {fmt(m['pearson_calibrated'])}, MAE "
        f"{fmt(m['mae'])}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
