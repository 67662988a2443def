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
    ckpts.save_latest(state, {"step": 0, "epoch": 0, "batch_in_epoch": 0,
                              "best_val_loss": None, "bad_epochs": 0, "stopped": False,
                              "val_loss": None, "train_loss": None})
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


def main() -> None:
  import argparse  # pylint: disable=g-import-not-at-top
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--workdir", default="")
  p.add_argument("--minutes", type=float, default=3.0)
  p.add_argument("--memory_minutes", default="1,10")
  p.add_argument("--child", default="")
  p.add_argument("--files", default="")
  args = p.parse_args()
  if args.child:
    sys.path.insert(0, REPO)
    {"speed": child_speed, "memory": child_memory}[args.child](
        args.workdir, args.files.split(","))
    return
  sys.path.insert(0, REPO)
  with tempfile.TemporaryDirectory() as tmp:
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
