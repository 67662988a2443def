"""Speed and memory of scoring one recording (asa_jax.assess; issue 10 targets).

  python benchmarks/assess.py [--workdir=W] [--minutes=3] [--memory_minutes=1,10]

Speed: a `--minutes` performance against a `--minutes` reference (generated sung
melodies, 16 kHz), scored by the `:small` Rori (CREPE tiny) in a fresh process:
  cold  = process start -> imports, checkpoint load, compiles, first Assessment;
  warm  = a second performance against a new reference in the same process;
  warm, same reference = a third performance against that reference (its clip
          features and contours are kept, as in a product scoring many singers).
Memory: peak RSS (VmHWM) of a fresh process scoring a pair of each length in
`--memory_minutes`, and the ratio of the longest to the shortest.
Reference cache (issue 20, part 2), `--reference_cache`: only these figures, for the
default scorer (`Assessor.default(reference_cache=DIR)`) in a fresh process, after a
first pair has compiled CREPE:
  new reference      = a performance against a reference not in the cache (its
                       contours are computed and written to DIR);
  cached reference   = another performance against that reference by a new Assessor
                       (nothing in memory: the contours are read from DIR, as in a
                       second `asa-score` run);
  same reference     = a third performance with the same Assessor (in memory);
  no cache           = a performance against a new reference with the cache off;
and the reference's contours alone: computed vs read from the cache. Wall and
process CPU seconds (all threads; on a shared machine CPU time is the steadier).

Default scorer (issue 20's acceptance), `--default_scorer=160,320,praat,manifest`:
for each variant (a CREPE network hop in samples, `extract_contours(network_hop=)`;
`praat`, `extract_contours(tracker="praat")`; `manifest`, the shipped setting), a
fresh process: cold
(process start -> first result), warm with a new reference, warm with the same
reference, peak RSS; the same generated pairs for every hop.

Without --workdir a workdir with an untrained `:small` Rori (initial weights, unit
statistics, an identity-like calibration) is made in a temporary folder: the time and
memory do not depend on the weights. Prints a table; figures go into BUILD_NOTES.md.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_workdir(path: str) -> str:
  """An untrained configs/rori.py:small workdir (checkpoint, stats, config, calibration)."""
  sys.path.insert(0, REPO)
  from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
  from asa_jax.evaluation import calibration  # pylint: disable=g-import-not-at-top
  from asa_jax.features.constants import CHANNELS  # pylint: disable=g-import-not-at-top
  from asa_jax.train import loop, mesh as mesh_lib  # pylint: disable=g-import-not-at-top
  from asa_jax.train.checkpoint import Checkpoints  # pylint: disable=g-import-not-at-top
  config = config_specs.load_config("configs/rori.py:small")
  _, state = loop.init_state(config, mesh_lib.make_mesh())
  ckpts = Checkpoints(path)
  try:
    ckpts.save_latest(state, loop.initial_meta())
  finally:
    ckpts.close()
  with open(os.path.join(path, "stats.json"), "w", encoding="utf-8") as f:
    json.dump({"mean": [0.0] * 5, "std": [1.0] * 5, "channels": list(CHANNELS)}, f)
  config_specs.save_workdir_config(config, path)
  calibration.save(calibration.fit([-1.0, 1.0], [0.0, 100.0]),
                   os.path.join(path, calibration.FILENAME))
  return path


def song(minutes: float, seed: int, detune: float = 0.0):
  """float32 16 kHz audio: `minutes` of 4-note phrases (random steps), sung."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import synth_voice  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1000 + int(minutes * 10))  # same tune per length.
  notes, t, pitch = [], 0.3, 62
  while t < minutes * 60 - 1.0:
    pitch = int(np.clip(pitch + rng.choice([-2, -1, 1, 2]), 55, 72))
    notes.append(synth_voice.Note(onset=t, duration=0.55, midi=pitch,
                                  offset_cents=detune, vowel=int(rng.integers(5))))
    t += 0.6 if len(notes) % 4 else 1.2
  return synth_voice.render_voice(notes, synth_voice.Voice(), total_seconds=minutes * 60,
                                  rng=np.random.default_rng(seed))


def write_pair(folder: str, minutes: float, seed: int, detune: float) -> tuple:
  """Writes (performance, reference) WAV files of `minutes`; returns their paths."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  perf = os.path.join(folder, f"perf_{minutes:g}_{seed}.wav")
  ref = os.path.join(folder, f"ref_{minutes:g}_{seed}.wav")
  sf.write(perf, song(minutes, seed + 1, detune=detune), 16000)
  sf.write(ref, song(minutes, seed), 16000)
  return perf, ref


def child_speed(workdir: str, files: list) -> None:
  """Runs in a fresh process: prints JSON timings. files: perf1, ref1, perf2, ref2,
  perf3 (scored against ref2)."""
  t0 = time.perf_counter()
  from asa_jax.assess import Assessor  # pylint: disable=g-import-not-at-top
  assessor = Assessor.from_workdir(workdir)
  assessor.assess(files[0], files[1])
  cold = time.perf_counter() - t0 + (t0 - START)
  t1 = time.perf_counter()
  assessor.assess(files[2], files[3])
  warm = time.perf_counter() - t1
  t2 = time.perf_counter()
  assessor.assess(files[4], files[3])
  same_ref = time.perf_counter() - t2
  print(json.dumps({"cold_s": cold, "warm_s": warm, "warm_same_reference_s": same_ref}))


def child_refcache(cache_dir: str, files: list) -> None:
  """Runs in a fresh process: prints JSON timings of the default scorer with a
  reference cache in `cache_dir`. files: perf1, ref1 (warm-up), perf2, ref2 (new
  reference), perf3, perf4 (against ref2), perf5, ref5 (no cache)."""
  from asa_jax.assess import Assessor  # pylint: disable=g-import-not-at-top
  assessor = Assessor.default(reference_cache=cache_dir)
  assessor.assess(files[0], files[1])  # compiles CREPE; not timed.
  timed = {}

  cpu = {}

  def clock(name, scorer, perf, ref):
    t, c = time.perf_counter(), time.process_time()
    timed[name] = (scorer.assess(perf, ref).score, time.perf_counter() - t)
    cpu[name] = time.process_time() - c  # all threads: less shared-machine noise.
  clock("new_reference", assessor, files[2], files[3])
  clock("cached_reference", Assessor.default(reference_cache=cache_dir), files[4],
        files[3])
  clock("same_reference", assessor, files[5], files[3])
  clock("no_cache", Assessor.default(), files[6], files[7])
  # What a hit saves and costs, alone: the reference's contours vs reading them.
  from asa_jax.assess import load_input, refcache  # pylint: disable=g-import-not-at-top
  ref, _ = load_input(files[3], role="reference")
  t = time.perf_counter()
  digest = refcache.samples_sha256(ref)
  timed["hash"] = (0.0, time.perf_counter() - t)
  t = time.perf_counter()
  assessor._scorer.contours(ref)  # pylint: disable=protected-access
  timed["reference_contours"] = (0.0, time.perf_counter() - t)
  t = time.perf_counter()
  assert assessor.reference_cache.load_contours(
      digest, assessor.reference_fingerprint) is not None
  timed["cache_read"] = (0.0, time.perf_counter() - t)
  entry = os.path.join(cache_dir, sorted(os.listdir(cache_dir))[-1])
  print(json.dumps({**{f"{k}_s": v[1] for k, v in timed.items()},
                    **{f"{k}_score": v[0] for k, v in timed.items()},
                    **{f"{k}_cpu_s": v for k, v in cpu.items()},
                    "entries": len(os.listdir(cache_dir)),
                    "entry_kib": os.path.getsize(entry) / 1024}))


def child_default(network_hop: str, files: list) -> None:
  """Runs in a fresh process: the default scorer's issue-20 figures with CREPE
  every `network_hop` samples (the manifest's own when empty). files: perf1, ref1,
  perf2, ref2, perf3 (against ref2). Prints JSON: cold (process start -> first
  result), warm new reference, warm same reference (s), peak RSS (MiB)."""
  t0 = time.perf_counter()
  from asa_jax.assess import Assessor  # pylint: disable=g-import-not-at-top
  assessor = Assessor.default()
  if network_hop in ("praat", "student"):
    assessor._scorer.tracker = network_hop  # pylint: disable=protected-access
  elif network_hop and network_hop != "manifest":
    assessor._scorer.tracker = "crepe"  # pylint: disable=protected-access
    assessor._scorer.network_hop = int(network_hop)  # pylint: disable=protected-access
  scores = [assessor.assess(files[0], files[1]).score]
  cold = time.perf_counter() - t0 + (t0 - START)
  t1 = time.perf_counter()
  scores.append(assessor.assess(files[2], files[3]).score)
  warm = time.perf_counter() - t1
  t2 = time.perf_counter()
  scores.append(assessor.assess(files[4], files[3]).score)
  same = time.perf_counter() - t2
  print(json.dumps({"cold_s": cold, "warm_s": warm, "warm_same_reference_s": same,
                    "peak_rss_mib": peak_rss_mib(), "scores": scores}))


def default_scorer(tmp: str, minutes: float, hops: list) -> None:
  """Prints the default scorer's issue-20 figures for each CREPE network hop,
  one fresh process each, on the same generated pairs."""
  p1, r1 = write_pair(tmp, minutes, 1, 30.0)
  p2, r2 = write_pair(tmp, minutes, 3, 0.0)
  p3, _ = write_pair(tmp, minutes, 5, -40.0)
  print(f"{minutes:g}-minute performance vs {minutes:g}-minute reference, default "
        "scorer (targets: cold <= 15 s, warm new reference <= 5 s, same reference "
        "<= 2.5 s, peak RSS <= 1024 MiB):")
  print("| contour tracker | cold s | warm, new reference s | warm, same reference s "
        "| peak RSS MiB | scores |")
  print("|---|---|---|---|---|---|")
  for hop in hops:
    t = _child("default", hop, [p1, r1, p2, r2, p3])
    print(f"| {hop or 'manifest'} | {t['cold_s']:.1f} | {t['warm_s']:.1f} | "
          f"{t['warm_same_reference_s']:.1f} | {t['peak_rss_mib']:.0f} | "
          f"{', '.join(f'{x:.1f}' for x in t['scores'])} |")


def peak_rss_mib() -> float:
  """This process's peak resident set size, MiB: VmHWM of /proc/self/status. Not
  getrusage's ru_maxrss, which Linux keeps across execve, so a child started by a
  parent that held 2 GB of generated audio would report the parent's peak."""
  with open("/proc/self/status", encoding="ascii") as f:
    for line in f:
      if line.startswith("VmHWM:"):
        return int(line.split()[1]) / 1024
  raise RuntimeError("no VmHWM in /proc/self/status")


def child_memory(workdir: str, files: list) -> None:
  """Runs in a fresh process: prints JSON peak RSS of one assessment of files[0]
  against files[1]."""
  from asa_jax.assess import Assessor  # pylint: disable=g-import-not-at-top
  result = Assessor.from_workdir(workdir).assess(files[0], files[1])
  peak = peak_rss_mib()
  print(json.dumps({"peak_rss_mib": peak, "segments": len(result.segments)}))


START = time.perf_counter()


def _child(kind: str, workdir: str, files: list) -> dict:
  proc = subprocess.run([sys.executable, __file__, f"--child={kind}",
                         f"--workdir={workdir}", f"--files={','.join(files)}"],
                        capture_output=True, text=True, cwd=REPO,
                        env={**os.environ, "PYTHONPATH": REPO}, timeout=3600)
  if proc.returncode:
    raise RuntimeError(f"{kind} {files} failed:\n{proc.stderr[-3000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def reference_cache(tmp: str, minutes: float) -> None:
  """Prints the reference-cache figures (module doc) of `minutes`-long pairs."""
  p1, r1 = write_pair(tmp, minutes, 1, 0.0)
  p2, r2 = write_pair(tmp, minutes, 3, 30.0)
  p3, _ = write_pair(tmp, minutes, 5, -40.0)
  p4, _ = write_pair(tmp, minutes, 7, 20.0)
  p5, r5 = write_pair(tmp, minutes, 9, 10.0)
  t = _child("refcache", os.path.join(tmp, "references"),
             [p1, r1, p2, r2, p3, p4, p5, r5])
  print(f"{minutes:g}-minute performance vs {minutes:g}-minute reference, default "
        f"scorer, warm (CREPE compiled):")
  for key, text in (("new_reference", "new reference (computed, written)"),
                    ("cached_reference", "cached reference (new Assessor, disk)"),
                    ("same_reference", "same reference (same Assessor, memory)"),
                    ("no_cache", "new reference, no cache")):
    print(f"  {text:<40} {t[key + '_s']:6.2f} s wall, {t[key + '_cpu_s']:6.2f} s CPU "
          f"(score {t[key + '_score']:.1f})")
  print(f"  the reference's contours alone: computed {t['reference_contours_s']:.2f} s,"
        f" read from the cache {1000 * t['cache_read_s']:.1f} ms (+ SHA-256 of the "
        f"samples {1000 * t['hash_s']:.1f} ms)")
  print(f"  cache: {t['entries']} entries, {t['entry_kib']:.0f} KiB each; new / cached "
        f"reference {t['new_reference_s'] / t['cached_reference_s']:.2f}x wall, "
        f"{t['new_reference_cpu_s'] / t['cached_reference_cpu_s']:.2f}x CPU")


def main() -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", default="")
  p.add_argument("--minutes", type=float, default=3.0)
  p.add_argument("--memory_minutes", default="1,10")
  p.add_argument("--reference_cache", action="store_true",
                 help="only the reference-cache figures (module doc)")
  p.add_argument("--default_scorer", default="",
                 help="only the default scorer's figures, for these comma-separated "
                 "CREPE network hops in samples, 'praat' or 'manifest' (e.g. "
                 "160,praat)")
  p.add_argument("--child", default="")
  p.add_argument("--files", default="")
  args = p.parse_args()
  if args.child:
    sys.path.insert(0, REPO)
    {"speed": child_speed, "memory": child_memory, "refcache": child_refcache,
     "default": child_default}[
        args.child](
        args.workdir, args.files.split(","))
    return
  sys.path.insert(0, REPO)
  with tempfile.TemporaryDirectory() as tmp:
    if args.reference_cache:
      reference_cache(tmp, args.minutes)
      return
    if args.default_scorer:
      default_scorer(tmp, args.minutes, args.default_scorer.split(","))
      return
    workdir = args.workdir or make_workdir(os.path.join(tmp, "rori_small"))
    m = args.minutes
    p1, r1 = write_pair(tmp, m, 1, 30.0)
    p2, r2 = write_pair(tmp, m, 3, 0.0)
    p3, _ = write_pair(tmp, m, 5, -40.0)
    speed = _child("speed", workdir, [p1, r1, p2, r2, p3])
    print(f"{args.minutes:g}-minute performance vs {args.minutes:g}-minute reference, "
          f"{os.path.basename(workdir)}:")
    print(f"  cold (process start to first result): {speed['cold_s']:6.1f} s "
          f"(target <= 40 s)")
    print(f"  warm, new reference:                   {speed['warm_s']:6.1f} s "
          f"(target <= 15 s)")
    print(f"  warm, same reference:                  "
          f"{speed['warm_same_reference_s']:6.1f} s")
    mems = {}
    for m in [float(x) for x in args.memory_minutes.split(",")]:
      mems[m] = _child("memory", workdir, list(write_pair(tmp, m, 7, 30.0)))
      print(f"  peak RSS, {m:g}-minute pair: {mems[m]['peak_rss_mib']:7.0f} MiB")
    lo, hi = min(mems), max(mems)
    print(f"  peak RSS ratio {hi:g} min / {lo:g} min: "
          f"{mems[hi]['peak_rss_mib'] / mems[lo]['peak_rss_mib']:.2f} (target <= 2)")


if __name__ == "__main__":
  main()
