"""`asa-score`: score recordings against their reference from the command line.

One recording with the default scorer shipped in the package (no workdir, no
training; prints the score, why ("why this score": each measured term's
contribution), a per-segment table and a per-note table):

  asa-score --reference=ref.wav --performance=perf.wav \\
      [--json=out.json] [--plot=out.png] [--html=report.html]

Any trained system instead: `--workdir=runs/demo [--accompaniment=acc.wav]`.

A whole manifest (input_pipeline/manifest.py format; batch scoring, not Pearson):

  asa-score --workdir=runs/demo --manifest=m.csv [--split=test] --output=scores.csv

Each reference's contours are computed once and kept on disk, keyed by its decoded
samples and the scorer's feature settings (issue 20, part 2): `--reference-cache=DIR`
(default $XDG_CACHE_HOME/asa-jax/references, else ~/.cache/asa-jax/references),
`--no-reference-cache` to neither read nor write it. A manifest of many singers
against one reference analyses that reference once.

A rule-based baseline instead of a trained system: `--baseline=dtw_melody
--calibration=cal.json` (fit one with `python -m asa_jax.assess.calibrate`).
`--config=configs/rori.py:demo` names the config of a workdir trained before
config.json was stored.

Exit codes:
  0  scored (batch: every row scored);
  1  a bad input: missing, unreadable, empty, silent, too short, a sample rate
     under 8 kHz, no voice found, or a performance that does not follow the
     reference's melody (one line on stderr names the file(s) and the reason);
  2  bad usage (argparse);
  3  the system cannot be loaded: no workdir, checkpoint, stats.json, config.json or
     calibration, an unknown baseline, or a default scorer pickled with another
     scikit-learn version;
  4  batch: some rows could not be scored (reported, the others are in --output).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Sequence

EXIT_OK, EXIT_INPUT, EXIT_USAGE, EXIT_SYSTEM, EXIT_PARTIAL = 0, 1, 2, 3, 4
NOTE_FLAGS = ("wrong_note", "flat", "sharp", "early", "late", "missed", "octave")
FLAG_ORDER = ("wrong_note", "flat", "sharp", "early", "late", "missed", "octave",
              "unvoiced", "silent")


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(
      prog="asa-score", description="Score a singing performance against its "
      "reference (calibrated 0-100 score, why, and per-note feedback) with the "
      "default scorer shipped in the package, or a trained asa-jax system.", epilog="Exit codes: 0 ok, 1 bad input, 2 usage, "
      "3 system not loadable, 4 batch rows failed.")
  system = p.add_argument_group("system")
  system.add_argument("--workdir", help="trained run (checkpoints, stats.json, "
                      "calibration.json, config.json; a contour system's run has no "
                      "stats.json, its calibration comes from contour_scores); "
                      "default: the scorer shipped in the package")
  system.add_argument("--config", help="config spec of a workdir without config.json, "
                      "e.g. configs/rori.py:demo")
  system.add_argument("--baseline", help="a rule-based baseline name instead of "
                      "--workdir (needs --calibration)")
  system.add_argument("--calibration", help="calibration JSON of --baseline")
  one = p.add_argument_group("one recording")
  one.add_argument("--performance", help="the singer's recording")
  one.add_argument("--reference", help="the original singer's vocal")
  one.add_argument("--accompaniment", help="the backing track")
  one.add_argument("--json", help="write the assessment as JSON here")
  one.add_argument("--plot", help="write the pitch plot (PNG) here")
  one.add_argument("--html", help="write the self-contained HTML report here")
  cache = p.add_argument_group("reference cache")
  cache.add_argument("--reference-cache", metavar="DIR", help="keep references' "
                     "contours here, keyed by content and feature settings, so a "
                     "reference is analysed once (default: $XDG_CACHE_HOME/asa-jax/"
                     "references, else ~/.cache/asa-jax/references)")
  cache.add_argument("--no-reference-cache", action="store_true", help="neither "
                     "read nor write the reference cache")
  batch = p.add_argument_group("a manifest")
  batch.add_argument("--manifest", help="manifest CSV to score row by row")
  batch.add_argument("--split", default="all", help="split to score (default all)")
  batch.add_argument("--output", help="scores CSV to write (--manifest)")
  return p


def reference_cache_dir(args) -> str | None:
  """The --reference-cache folder: the flag, else the per-user default
  (`refcache.default_directory`); None with --no-reference-cache."""
  from asa_jax.assess import refcache  # pylint: disable=g-import-not-at-top
  if args.no_reference_cache:
    return None
  return args.reference_cache or refcache.default_directory()


def _load(args):
  from asa_jax.assess import Assessor  # pylint: disable=g-import-not-at-top
  cache = reference_cache_dir(args)
  if not args.baseline and not args.workdir:
    return Assessor.default(reference_cache=cache)
  if args.baseline:
    if not args.calibration:
      raise ValueError("--baseline needs --calibration")
    return Assessor.from_baseline(args.baseline, calibration=args.calibration,
                                  reference_cache=cache)
  return Assessor.from_workdir(args.workdir, config=args.config,
                               reference_cache=cache)


def segment_table(assessment) -> str:
  """The per-segment feedback as a plain-text table."""
  lines = [f"{'#':>3} {'perf (s)':>13} {'ref (s)':>13} {'score':>5} {'cents':>6} "
           f"{'timing':>7} {'voiced':>6}  flags"]
  for i, s in enumerate(assessment.segments):
    ref = ("" if s.reference_start_s is None else
           f"{s.reference_start_s:5.1f}-{s.reference_end_s:5.1f}")
    lines.append(
        f"{i + 1:>3} {s.start_s:6.1f}-{s.end_s:6.1f} {ref:>13} "
        f"{'' if s.score is None else format(s.score, '.0f'):>5} "
        f"{'' if s.pitch_deviation_cents is None else format(s.pitch_deviation_cents, '+.0f'):>6} "
        f"{'' if s.timing_offset_s is None else format(s.timing_offset_s, '+.2f'):>7} "
        f"{s.voiced_fraction:6.0%}  {' '.join(s.flags)}")
  return "\n".join(lines)


def note_table(assessment) -> str:
  """The per-note feedback as a plain-text table."""
  lines = [f"{'note':>4} {'ref (s)':>7} {'perf (s)':>8} {'pitch':>6} {'cents':>6} "
           f"{'timing':>7}  flags"]
  for n in assessment.notes:
    lines.append(
        f"{n.index + 1:>4} {n.reference_onset_s:7.2f} {n.performance_onset_s:8.2f} "
        f"{n.reference_midi:6.1f} "
        f"{'' if n.cents_error is None else format(n.cents_error, '+.0f'):>6} "
        f"{'' if n.timing_error_s is None else format(n.timing_error_s, '+.2f'):>7}"
        f"  {' '.join(n.flags)}")
  return "\n".join(lines)


def contribution_table(assessment) -> str:
  """'Why this score': each term's value and contribution, largest first."""
  lines = [f"{'term':<24} {'value':>10} {'unit':<18} {'points':>7}"]
  for t in assessment.contributions:
    value = "" if t.value != t.value else format(t.value, ".4g")  # nan: blank.
    lines.append(f"{t.name:<24} {value:>10} {t.unit:<18} {t.contribution:+7.1f}")
  return "\n".join(lines)


def _say(text: str) -> None:
  """Prints one line of the report to stdout.

  A reader that closes the pipe early (`asa-score ... | head`) ends the text, not the
  work: stdout is pointed at /dev/null, so the files asked for are still written and
  the exit code is still the scoring's, with no traceback. (Python's advice for
  SIGPIPE, in the `signal` module's documentation.)
  """
  try:
    print(text, flush=True)
  except BrokenPipeError:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _one(assessor, args) -> int:
  from asa_jax import atomic  # pylint: disable=g-import-not-at-top
  from asa_jax.assess import load_input  # pylint: disable=g-import-not-at-top
  from asa_jax.assess import html_report  # pylint: disable=g-import-not-at-top
  # Decoded once: the assessment and the report's players use the same samples.
  perf, perf_name = load_input(args.performance, role="performance")
  ref, ref_name = ((None, None) if args.reference is None else
                   load_input(args.reference, role="reference"))
  acc = (None if args.accompaniment is None else
         load_input(args.accompaniment, role="accompaniment")[0])
  result = assessor.assess_audio(perf, ref, acc, performance_name=perf_name,
                                 reference_name=ref_name)
  _say(f"score {result.score:.1f} / 100  (raw {result.raw:.4g}, {result.system}, "
       f"calibration {result.calibration})")
  if result.key_offset_cents is not None:
    # "x the reference's": the measured term tempo_ratio is the inverse
    # (performance s per reference s), so the header names its direction.
    _say(f"key offset {result.key_offset_cents:+.0f} cents, tempo "
         f"{result.tempo_ratio:.3f}x the reference's, latency {result.latency_s:+.3f} s")
  if result.alignment is not None:
    _say(f"follows the reference: {result.alignment.describe()}")
  for w in result.warnings:
    _say(f"warning: {w}")
  if result.contributions:
    _say("why this score (points against a typical performance):")
    _say(contribution_table(result))
  _say(segment_table(result))
  if result.notes:
    flagged = sum(bool(n.flags) for n in result.notes)
    _say(f"{len(result.notes)} notes, {flagged} flagged")
    _say(note_table(result))
  if args.json:
    atomic.write_text(args.json, json.dumps(result.to_dict(), indent=1))
    _say(f"wrote {args.json}")
  if args.plot:
    html_report.write_png(result, args.plot)
    _say(f"wrote {args.plot}")
  if args.html:
    html_report.write_html(result, args.html, performance_audio=perf,
                           reference_audio=ref,
                           titles=(os.path.basename(args.performance),
                                   os.path.basename(args.reference or "")))
    _say(f"wrote {args.html}")
  return EXIT_OK


BATCH_COLUMNS = ("song_id", "performance_id", "split", "score", "raw", "human",
                 "key_offset_semitones", "key_offset_cents", "tempo_ratio",
                 "latency_s", "alignment_confidence", *FLAG_ORDER, "error")


def _batch(assessor, args) -> int:
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  from asa_jax import atomic  # pylint: disable=g-import-not-at-top
  from asa_jax.assess import AudioError  # pylint: disable=g-import-not-at-top
  from input_pipeline import manifest as manifest_lib  # pylint: disable=g-import-not-at-top
  rows, problems = manifest_lib.read_manifest(args.manifest, on_error="skip")
  for problem in problems:
    print(f"skipped manifest row: {problem}", file=sys.stderr)
  if args.split != "all":
    rows = [r for r in rows if r.split == args.split]
  out, failed = [], len(problems)
  for row in tqdm(rows, desc="scoring", unit="row"):
    rec = {"song_id": row.song_id, "performance_id": row.performance_id,
           "split": row.split, "human": row.score}
    try:
      result = assessor.assess(row.performance_audio, row.reference_audio,
                               accompaniment=row.accompaniment_audio)
      rec.update(score=round(result.score, 3), raw=result.raw,
                 key_offset_semitones=result.key_offset_semitones,
                 key_offset_cents=result.key_offset_cents,
                 tempo_ratio=result.tempo_ratio, latency_s=result.latency_s,
                 alignment_confidence=(None if result.alignment is None else
                                       result.alignment.confidence),
                 # Notes carry the pitch/timing flags; windows unvoiced/silent.
                 **{f: (sum(f in n.flags for n in result.notes) if f in NOTE_FLAGS
                        else sum(f in s.flags for s in result.segments))
                    for f in FLAG_ORDER})
    except (AudioError, ValueError) as e:
      failed += 1
      rec["error"] = str(e)
      tqdm.write(f"failed: {row.song_id}/{row.performance_id}: {e}", file=sys.stderr)
    out.append(rec)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=BATCH_COLUMNS)
  writer.writeheader()
  writer.writerows(out)
  atomic.write_text(args.output, buf.getvalue())
  scored = sum(not rec.get("error") for rec in out)
  _say(f"scored {scored} of {len(out) + len(problems)} row(s); wrote {args.output}")
  return EXIT_PARTIAL if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of `asa-score` (console script); returns the exit code."""
  parser = _parser()
  args = parser.parse_args(argv)
  if args.workdir and args.baseline:
    parser.error("give at most one of --workdir and --baseline")
  if bool(args.manifest) == bool(args.performance):
    parser.error("give --performance (one recording) or --manifest (batch)")
  if args.manifest and not args.output:
    parser.error("--manifest needs --output")
  if args.reference_cache and args.no_reference_cache:
    parser.error("give at most one of --reference-cache and --no-reference-cache")
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  from asa_jax import logs  # pylint: disable=g-import-not-at-top
  from asa_jax.assess import AssessmentError, AudioError, DefaultScorerError  # pylint: disable=g-import-not-at-top
  logs.quiet_libraries()
  try:
    assessor = _load(args)
  except (FileNotFoundError, ValueError, KeyError, DefaultScorerError) as e:
    print(f"asa-score: cannot load the system: {e}", file=sys.stderr)
    return EXIT_SYSTEM
  try:
    return _batch(assessor, args) if args.manifest else _one(assessor, args)
  except (AudioError, AssessmentError) as e:  # bad audio; not the same melody.
    print(f"asa-score: {e}", file=sys.stderr)
    return EXIT_INPUT
  except (ValueError, TypeError) as e:  # e.g. the system needs a reference.
    print(f"asa-score: {e}", file=sys.stderr)
    return EXIT_INPUT
  except FileNotFoundError as e:  # the manifest itself.
    print(f"asa-score: {e}", file=sys.stderr)
    return EXIT_INPUT


if __name__ == "__main__":
  sys.exit(main())
