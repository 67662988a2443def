"""ROC of the "not the same melody" test on real pairs (issue 19, section 3).

  PYTHONPATH=. python benchmarks/melody_confidence.py [--cache_dir=runs/contours32]
      [--out_dir=runs/melody_confidence] [--per_recording=2] [--mast_performances=300]
      [--tracker=crepe|praat]

Pairs (performance, reference):
  SSVD v1 (../shared/data/ssvd, melodies.csv): each recording against up to
    --per_recording other recordings of its melody and as many of other melodies
    (seeded). Contours: the assessor's own feedback contours (`baselines.contours.
    stream_contours`, CREPE tiny, 512-sample = 32 ms frames, as `Assessor` makes for
    learned systems), computed once into --cache_dir (npz per recording); with
    --tracker=praat, the 10 ms Praat contours (`extract_contours(tracker="praat")`).
  MAST (../shared/data/mast): --mast_performances performances (seeded), each against
    its melody's reference (`mast_data.pair_references`, first ref) and against the
    first reference of another melody; the f0 curves at 30 ms (`contours_from_f0`).
For each pair: `alignment.align`, then `confidence.band_share` (at several band
widths) and `confidence.costs` (octave-tolerant, the product's; and with plain
distances, `*_exact`, the measures before), plus the note-sequence measures of
`note_sequence.py` (measured, not shipped), the pitch-class histogram correlation and
the log ratio of voiced durations. Each set's melodies are split in two halves (seeded);
the logistic model (scikit-learn) and the threshold are fitted on the --fit_sets pairs
whose melodies are both in half A (threshold: the FIT_REFUSAL quantile of their
same-melody confidences),
and the refusal rates, roc_curve and roc_auc_score are reported on half B and on all
pairs, with the true-positive rate (same-melody pairs accepted) at 2 % and 5 % of
different-melody pairs accepted, and, for MAST, the share of jury-passed and
jury-failed same-melody pairs refused at the threshold that refuses 95 % of its
different-melody pairs. Prints the tables for BUILD_NOTES.md and writes pairs.csv
and roc.json.
"""

import argparse
import csv
import dataclasses
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from asa_jax import atomic  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.assess import alignment  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.assess import confidence  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.baselines import dtw_melody  # pylint: disable=g-import-not-at-top,wrong-import-position
from asa_jax.assess import notes as notes_lib  # pylint: disable=g-import-not-at-top,wrong-import-position
from input_pipeline.corpora import mast_data  # pylint: disable=g-import-not-at-top,wrong-import-position
import note_sequence  # pylint: disable=g-import-not-at-top,wrong-import-position

DATA = os.path.join(REPO, "..", "shared", "data")
BANDS = (0.5, 1.0, 2.0, 4.0)
HOP = 512  # samples at 16 kHz: the assessor's feedback contours (assessor.FEEDBACK_HOP).
FIT_REFUSAL = 0.01  # same-melody refusals allowed on the fitting half (target 2%).
SEED = 0
NOTE_TERMS = ("note_cost_ratio", "interval_cost_ratio", "note_match_gain")
# The first is the model before the octave tolerance; the last is the one the
# assessor uses (confidence.COEFFICIENTS).
FEATURE_SETS = (("band_2.0", "cost_ratio_exact", "match_gain_exact"),
                ("cost_ratio",), ("match_gain",), ("band_2.0",),
                ("note_cost_ratio_exact",), ("note_cost_ratio",),
                ("interval_cost_ratio",), ("note_match_gain",),
                ("sub_note_cost_ratio",), ("pcp_corr",), ("log_len_ratio",),
                NOTE_TERMS,
                ("band_2.0", "cost_ratio", "match_gain") + NOTE_TERMS,
                ("band_2.0", "cost_ratio", "match_gain") + NOTE_TERMS
                + ("sub_note_cost_ratio", "pcp_corr", "log_len_ratio"),
                ("band_2.0", "cost_ratio", "match_gain"))
_NOTES = {}  # recording name -> its note pitches (cents).


def note_cents(name: str, c: contours_lib.Contours) -> np.ndarray:
  """float64 (K,) median pitches (cents) of a recording's notes, cached by name."""
  if name not in _NOTES:
    _NOTES[name] = np.array([n.cents for n in notes_lib.segment(c)], np.float64)
  return _NOTES[name]


def sequence_measures(perf_name, perf, ref_name, ref) -> dict:
  """The note-sequence and histogram measures of one pair (module doc); nan where
  there are too few notes."""
  pn, rn = note_cents(perf_name, perf), note_cents(ref_name, ref)
  p, r = dtw_melody.melody_cents(perf), dtw_melody.melody_cents(ref)
  out = {"pcp_corr": note_sequence.pitch_class_correlation(p, r),
         "log_len_ratio": float(np.log(len(p) / len(r)))}
  try:
    folded = note_sequence.measure(pn, rn)
    exact = note_sequence.measure(pn, rn, fold=False)
    sub = note_sequence.measure(pn, rn, subseq=True)
  except ValueError:
    return {**out, **{k: float("nan") for k in NOTE_TERMS + (
        "note_cost_ratio_exact", "sub_note_cost_ratio")}}
  return {**out, **dataclasses.asdict(folded),
          "note_cost_ratio_exact": exact.note_cost_ratio,
          "sub_note_cost_ratio": sub.note_cost_ratio}


def feedback_contours(path: str, cache_dir: str, tracker: str = "crepe"
                      ) -> contours_lib.Contours:
  """The assessor's feedback contours of an audio file, cached as npz; with tracker
  'praat', the 10 ms Praat contours of `extract_contours(tracker="praat")`."""
  os.makedirs(cache_dir, exist_ok=True)
  suffix = f".hop{HOP}.npz" if tracker == "crepe" else f".{tracker}10ms.npz"
  out = os.path.join(cache_dir, os.path.basename(path) + suffix)
  if os.path.exists(out):
    with np.load(out) as z:
      return contours_lib.Contours(f0_hz=z["f0_hz"], hop_s=float(z["hop_s"]))
  audio = audio_lib.load_audio(path)
  c = (contours_lib.stream_contours(audio, capacity="tiny", hop_length=HOP)
       if tracker == "crepe" else contours_lib.extract_contours(audio, tracker=tracker))
  with atomic.atomic_path(out) as tmp, open(tmp, "wb") as f:
    np.savez(f, f0_hz=c.f0_hz, hop_s=np.float64(c.hop_s))
  return contours_lib.Contours(f0_hz=c.f0_hz, hop_s=c.hop_s)


def ssvd_items(cache_dir: str, tracker: str = "crepe"
               ) -> list[tuple[str, str, contours_lib.Contours]]:
  """(recording id, melody, contours) of every SSVD v1 recording."""
  root = os.path.join(DATA, "ssvd")
  with open(os.path.join(root, "melodies.csv"), newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
  items = []
  for row in rows:
    rid = row["recording_id"]
    path = os.path.join(root, rid, f"{rid}.mp3")
    items.append((rid, "ssvd:" + row["melody"],
                  feedback_contours(path, cache_dir, tracker)))
  return items


def mast_items(n_performances: int, rng) -> list[tuple[tuple, tuple]]:
  """Pairs ((name, melody, contours) performance, same-melody ref, other ref)."""
  curves = mast_data.load_curves(os.path.join(DATA, "mast"))
  pairs = mast_data.pair_references(curves)
  refs = {}
  for c in curves:
    if c.kind == "ref":
      refs.setdefault(c.melody, []).append(c)
  melodies = sorted(refs)
  per = [c for c in curves if c.kind == "per" and pairs[c.name][1]]
  chosen = [per[i] for i in sorted(rng.choice(len(per), min(n_performances, len(per)),
                                              replace=False))]
  to_c = lambda c: contours_lib.contours_from_f0(c.times_s, c.f0_hz,
                                                 hop_s=HOP / 16000)
  out = []
  for p in chosen:
    same = pairs[p.name][1][0]
    other_melody = melodies[rng.integers(len(melodies))]
    while other_melody == p.melody:
      other_melody = melodies[rng.integers(len(melodies))]
    other = refs[other_melody][0]
    out.append(((p.name, "mast:" + p.melody, to_c(p), p.passed),
                (same.name, "mast:" + same.melody, to_c(same)),
                (other.name, "mast:" + other.melody, to_c(other))))
  return out


def measure_pair(perf_name, perf, ref_name, ref) -> dict:
  """The confidence measures of one (perf contours, ref contours) pair."""
  try:
    m = alignment.align(perf, ref)
    p, r = dtw_melody.melody_cents(perf), dtw_melody.melody_cents(ref)
    c = confidence.costs(p, r, perf.hop_s, m.offset_cents, fold_octaves=True)
    e = confidence.costs(p, r, perf.hop_s, m.offset_cents, fold_octaves=False)
  except ValueError as err:
    return {"error": str(err)}
  out = {f"band_{b}": confidence.band_share(m, b) for b in BANDS}
  out.update(cost_cents=c.cost_cents, random_cost_cents=c.random_cost_cents,
             cost_ratio=c.cost_cents / max(c.random_cost_cents, 1e-6),
             match=c.match, random_match=c.random_match,
             match_gain=c.match - c.random_match, tempo_ratio=m.tempo_ratio,
             cost_ratio_exact=e.cost_cents / max(e.random_cost_cents, 1e-6),
             match_gain_exact=e.match - e.random_match, error="")
  out.update(sequence_measures(perf_name, perf, ref_name, ref))
  return out


def collect_ssvd(args) -> list[dict]:
  """Measures of the SSVD pairs (module doc)."""
  rng = np.random.default_rng(SEED)
  rows = []
  items = ssvd_items(args.cache_dir, args.tracker)
  by_melody = {}
  for k, (_, mel, _) in enumerate(items):
    by_melody.setdefault(mel, []).append(k)
  jobs = []
  for k, (rid, mel, _) in enumerate(items):
    same = [j for j in by_melody[mel] if j != k]
    other = [j for j in range(len(items)) if items[j][1] != mel]
    for j in rng.permutation(same)[:args.per_recording]:
      jobs.append((k, int(j), 1))
    for j in rng.choice(other, args.per_recording, replace=False):
      jobs.append((k, int(j), 0))
  t0 = time.time()
  for n, (k, j, same) in enumerate(jobs):
    rec = {"set": "ssvd", "performance": items[k][0], "reference": items[j][0],
           "perf_melody": items[k][1], "ref_melody": items[j][1], "same": same,
           "passed": ""}
    rec.update(measure_pair(items[k][0], items[k][2], items[j][0], items[j][2]))
    rows.append(rec)
    if n % 50 == 0:
      print(f"ssvd {n}/{len(jobs)} {time.time() - t0:.0f} s", flush=True)
  return rows


def collect_mast(args) -> list[dict]:
  """Measures of the MAST pairs (module doc)."""
  rng = np.random.default_rng(SEED)
  rows, t0 = [], time.time()
  for n, (perf, same_ref, other_ref) in enumerate(
      mast_items(args.mast_performances, rng)):
    for ref, same in ((same_ref, 1), (other_ref, 0)):
      rec = {"set": "mast", "performance": perf[0], "reference": ref[0],
             "perf_melody": perf[1], "ref_melody": ref[1], "same": same,
             "passed": int(bool(perf[3]))}
      rec.update(measure_pair(perf[0], perf[2], ref[0], ref[2]))
      rows.append(rec)
    if n % 50 == 0:
      print(f"mast {n} {time.time() - t0:.0f} s", flush=True)
  return rows


def _rates(same, refused):
  same = np.asarray(same, bool)
  return (float(np.mean(refused[same])) if same.any() else float("nan"),
          float(np.mean(refused[~same])) if (~same).any() else float("nan"))


def _half_a(rows: list[dict]) -> set:
  """Half of each set's melodies (seeded): the fitting half A."""
  half_a = set()
  for name in sorted({r["set"] for r in rows}):
    melodies = sorted({r["perf_melody"] for r in rows if r["set"] == name}
                      | {r["ref_melody"] for r in rows if r["set"] == name})
    rng = np.random.default_rng(SEED)
    half_a |= set(rng.permutation(melodies)[:len(melodies) // 2])
  return half_a


def analyse(rows: list[dict], features: tuple[str, ...],
            fit_sets: tuple[str, ...] = ("ssvd", "mast"),
            fit_passed_only: bool = False) -> dict:
  """Fit on half A of fit_sets' pairs, report on half B and all (module doc);
  fit_passed_only leaves MAST's jury-failed same-melody pairs out of the fit."""
  from sklearn.linear_model import LogisticRegression  # pylint: disable=g-import-not-at-top
  from sklearn.metrics import roc_auc_score, roc_curve  # pylint: disable=g-import-not-at-top
  ok = [r for r in rows if not r.get("error")
        and all(np.isfinite(float(r[f])) for f in features)]
  half_a = _half_a(ok)
  x = np.array([[float(r[f]) for f in features] for r in ok])
  y = np.array([int(r["same"]) for r in ok])
  in_a = np.array([r["perf_melody"] in half_a and r["ref_melody"] in half_a
                   and r["set"] in fit_sets
                   and not (fit_passed_only and r["set"] == "mast"
                            and int(r["same"]) and r.get("passed") not in ("1", 1))
                   for r in ok])
  in_b = np.array([r["perf_melody"] not in half_a and r["ref_melody"] not in half_a
                   for r in ok])
  model = LogisticRegression(C=10.0).fit(x[in_a], y[in_a])
  prob = model.predict_proba(x)[:, 1]
  threshold = float(np.quantile(prob[in_a & (y == 1)], FIT_REFUSAL))
  refused = prob < threshold
  out = {"features": list(features), "fit_sets": list(fit_sets),
         "intercept": float(model.intercept_[0]),
         "coefficients": [float(v) for v in model.coef_[0]],
         "threshold": threshold, "n_failed": len(rows) - len(ok)}
  sets = np.array([r["set"] for r in ok])
  passed = np.array([r.get("passed") in ("1", 1) for r in ok])
  for name, mask in (("A (fit)", in_a), ("B (held out)", in_b),
                     ("all", np.ones(len(ok), bool)),
                     ("all ssvd", sets == "ssvd"), ("all mast", sets == "mast"),
                     ("B ssvd", in_b & (sets == "ssvd")),
                     ("B mast", in_b & (sets == "mast")),
                     # MAST same-melody pairs of candidates the jury passed only.
                     ("mast passed", (sets == "mast") & (passed | (y == 0)))):
    same_rate, diff_rate = _rates(y[mask] == 1, refused[mask])
    auc = (float(roc_auc_score(y[mask], prob[mask]))
           if len(set(y[mask])) == 2 else float("nan"))
    fpr, tpr, thr = (roc_curve(y[mask], prob[mask]) if len(set(y[mask])) == 2
                     else ([], [], []))
    tpr_at = {f"tpr_at_fpr_{x}": (float(np.max(np.asarray(tpr)[np.asarray(fpr) <= x]))
                                  if len(fpr) else float("nan")) for x in (0.02, 0.05)}
    out[name] = {**tpr_at, "same_pairs": int(np.sum(y[mask] == 1)),
                 "different_pairs": int(np.sum(y[mask] == 0)),
                 "same_refused": same_rate, "different_refused": diff_rate,
                 "auc": auc, "roc": {"fpr": list(map(float, fpr)),
                                     "tpr": list(map(float, tpr)),
                                     "thresholds": [float(t) if np.isfinite(t) else None
                                                    for t in thr]}}
  # What limits MAST (BUILD_NOTES.md): at the threshold that refuses 95 % of its
  # different-melody pairs, the share of its jury-passed and jury-failed
  # same-melody pairs refused.
  mast = sets == "mast"
  if mast.any() and (~passed[mast & (y == 1)]).any():
    at = float(np.quantile(prob[mast & (y == 0)], 0.95))
    out["mast_at_95"] = {
        "threshold": at,
        "passed_refused": float(np.mean(prob[mast & (y == 1) & passed] < at)),
        "failed_refused": float(np.mean(prob[mast & (y == 1) & ~passed] < at)),
        "passed": int(np.sum(mast & (y == 1) & passed)),
        "failed": int(np.sum(mast & (y == 1) & ~passed))}
  return out


SHIPPED_COLUMNS = {"band_share": "band_2.0", "cost_ratio": "cost_ratio",
                   "match_gain": "match_gain"}  # confidence.COEFFICIENTS -> CSV.


def print_shipped(rows: list[dict]) -> None:
  """Refusal rates of the SHIPPED model (confidence.probability and THRESHOLD, no
  refit) on the same halves as `analyse` (a new tracker's check)."""
  ok = [r for r in rows if not r.get("error")
        and all(np.isfinite(float(r[c])) for c in SHIPPED_COLUMNS.values())]
  half_a = _half_a(ok)
  prob = np.array([confidence.probability(
      {k: float(r[c]) for k, c in SHIPPED_COLUMNS.items()}) for r in ok])
  refused = prob < confidence.THRESHOLD
  y = np.array([int(r["same"]) == 1 for r in ok])
  sets = np.array([r["set"] for r in ok])
  in_b = np.array([r["perf_melody"] not in half_a and r["ref_melody"] not in half_a
                   for r in ok])
  print(f"\nshipped model (no refit), threshold {confidence.THRESHOLD}; "
        f"failed alignments {len(rows) - len(ok)}")
  for name in sorted(set(sets)):
    for label, mask in (("B (held out)", in_b & (sets == name)), ("all", sets == name)):
      same_rate, diff_rate = _rates(y[mask], refused[mask])
      print(f"{name} {label:13} same {int(np.sum(y[mask])):4d} refused {same_rate:6.1%}"
            f"; different {int(np.sum(~y[mask])):4d} refused {diff_rate:6.1%}")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--cache_dir", default=os.path.join(REPO, "runs", "contours32"))
  p.add_argument("--out_dir", default=os.path.join(REPO, "runs", "melody_confidence"))
  p.add_argument("--tracker", default="crepe", choices=contours_lib.TRACKERS,
                 help="SSVD contours: crepe (32 ms feedback contours) or praat "
                 "(the 10 ms contours of extract_contours(tracker='praat'))")
  p.add_argument("--per_recording", type=int, default=2)
  p.add_argument("--mast_performances", type=int, default=300)
  p.add_argument("--sets", default="ssvd,mast", help="which pairs to measure")
  p.add_argument("--fit_sets", default="ssvd",
                 help="pairs the model and threshold are fitted on (half A)")
  p.add_argument("--fit_passed_only", action="store_true",
                 help="leave MAST's jury-failed same-melody pairs out of the fit")
  p.add_argument("--reuse", action="store_true",
                 help="analyse OUT_DIR/pairs_*.csv again instead of measuring")
  args = p.parse_args()
  os.makedirs(args.out_dir, exist_ok=True)
  rows = []
  for name in args.sets.split(","):
    pairs_csv = os.path.join(args.out_dir, f"pairs_{name}.csv")
    if args.reuse:
      with open(pairs_csv, newline="", encoding="utf-8") as f:
        rows += list(csv.DictReader(f))
      continue
    part = {"ssvd": collect_ssvd, "mast": collect_mast}[name](args)
    fields = sorted({k for r in part for k in r})
    with atomic.atomic_path(pairs_csv) as tmp, open(tmp, "w", newline="",
                                                     encoding="utf-8") as f:
      w = csv.DictWriter(f, fieldnames=fields)
      w.writeheader()
      w.writerows(part)
    rows += part
  results = [analyse(rows, features, tuple(args.fit_sets.split(",")),
                     args.fit_passed_only)
             for features in FEATURE_SETS]
  atomic.write_text(os.path.join(args.out_dir, "roc.json"), json.dumps(results))
  print_shipped(rows)
  for res in results:
    terms = " ".join(f"{c:+.3f} x {f}" for f, c in zip(res["features"],
                                                        res["coefficients"]))
    print(f"\nfitted on {','.join(res['fit_sets'])}"
          f"{' (MAST jury-passed same pairs only)' if args.fit_passed_only else ''}"
          f": logit {res['intercept']:+.3f} "
          f"{terms}; threshold "
          f"{res['threshold']:.4f}; failed alignments {res['n_failed']}")
    print(f"{'pairs':14} {'same':>5} {'diff':>5} {'same refused':>13} "
          f"{'diff refused':>13} {'AUC':>6} {'TPR@.02':>7} {'TPR@.05':>7}")
    for name in ("A (fit)", "B (held out)", "all", "all ssvd", "all mast", "B ssvd",
                 "B mast", "mast passed"):
      s = res[name]
      print(f"{name:14} {s['same_pairs']:5d} {s['different_pairs']:5d} "
            f"{s['same_refused']:13.1%} {s['different_refused']:13.1%} "
            f"{s['auc']:6.3f} {s['tpr_at_fpr_0.02']:7.3f} {s['tpr_at_fpr_0.05']:7.3f}")
    if "mast_at_95" in res:
      m = res["mast_at_95"]
      print(f"MAST at the threshold refusing 95% of its different pairs "
            f"({m['threshold']:.3f}): same refused {m['passed_refused']:.1%} of "
            f"{m['passed']} jury-passed, {m['failed_refused']:.1%} of {m['failed']} "
            f"jury-failed")


if __name__ == "__main__":
  main()
