"""Pitch trackers for the contour and scoring path on MIR-1K (issue 20, part 1).

  PYTHONPATH=. python benchmarks/pitch_trackers.py [--clips=0] [--trackers=...]
      [--out_dir=runs/pitch] [--data_dir=../shared/data]

For every tracker and every MIR-1K clip (`voice/<clip>.opus` against
`PitchLabel/<clip>.pv`, MIDI per 20 ms frame, 0 = unvoiced), `mir_eval.melody`
gives raw pitch accuracy (50 cents), raw chroma accuracy, voicing recall and
voicing false alarm. The label of line i is at (i + 1) * 20 ms: the centre of
MIR-1K's i-th 40 ms frame (with i * 20 ms every tracker loses 8-9 points: CREPE
tiny 0.898 against 0.978 on a 40-clip pilot). A tracker's voiced frames are given
as positive f0, its unvoiced frames as negative f0 where it has a pitch guess
(mir_eval's convention), so raw pitch accuracy does not depend on the voicing
decision; the voicing figures do.

Speed: output frames on the 10 ms grid per second of the tracker's wall time
(decoding and onsets not counted; energy, gating and interpolation counted), on
this machine's shared cores: compare rows of one run only.

Trackers (the voicing rule of `asa_jax.baselines.contours` everywhere: confidence
>= 0.5 and RMS within 40 dB of the loudest frame):
  crepe_tiny        `extract_contours` (CREPE tiny, 10 ms, energy-gated).
  crepe_tiny_nogate the same without the gate (speed only: same f0).
  crepe_tiny_20ms   `extract_contours(network_hop=320)`: the network every 20 ms,
                    the frames between interpolated. MIR-1K's label points then
                    fall on network frames, so:
  crepe_tiny_20ms_odd  the same on the audio delayed by 10 ms: every label point
                    falls on an INTERPOLATED frame (the figure for those frames).
  crepe_full_20ms   CREPE full at a 20 ms network hop (label points on network
                    frames: CREPE full's accuracy there; 13x slower than tiny, so
                    use --clips for a seeded subset).
  praat_ac          Praat's autocorrelation pitch (parselmouth `to_pitch_ac`,
                    10 ms, 60-1100 Hz), the same energy rule; Praat's unvoiced
                    frames give no pitch guess (0 Hz).
  praat             `extract_contours(tracker="praat")`: the same Praat pitch with
                    octave outliers folded and every frame's guess filled
                    (`asa_jax.features.praat_pitch.praat_f0`); voicing unchanged.
  student           `extract_contours(tracker="student")`: the MLP distilled from
                    CREPE tiny (`asa_jax.features.pitch_student`), its own voicing
                    threshold.

Results are cached per tracker and clip (`OUT_DIR/<tracker>.jsonl`, appended
after every clip: an interrupted run resumes). Prints one table.
"""

import argparse
import glob
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL_HOP_S = 0.02  # MIR-1K PitchLabel frame period.
LABEL_OFFSET_S = 0.02  # line i -> (i + 1) * 20 ms.
TRACKERS = ("crepe_tiny", "crepe_tiny_nogate", "crepe_tiny_20ms",
            "crepe_tiny_20ms_odd", "crepe_full_20ms", "praat_ac", "praat", "student")


def track(name: str, audio: np.ndarray):
  """(f0 Hz float64 (T,), voiced bool (T,), times s (T,)) of one tracker."""
  from asa_jax.baselines import contours  # pylint: disable=g-import-not-at-top
  from asa_jax.features import crepe  # pylint: disable=g-import-not-at-top
  hop = contours.FRAME_SECONDS
  if name in ("crepe_tiny", "crepe_tiny_20ms", "crepe_tiny_20ms_odd",
              "crepe_full_20ms"):
    delay = 160 if name.endswith("_odd") else 0
    x = np.concatenate([np.zeros(delay, np.float32), audio]) if delay else audio
    c = contours.extract_contours(
        x, capacity="full" if "full" in name else "tiny",
        network_hop=160 if name == "crepe_tiny" else 320)
    f0 = _raw_f0(c)
    times = np.arange(c.n_frames) * hop - delay / 16000
    return f0, c.voiced, times
  if name == "crepe_tiny_nogate":
    f0, conf = crepe.crepe_f0(audio, hop_length=160, capacity="tiny")
    db = contours.energy_db(audio)
    n = min(len(f0), len(db))
    c = contours._voiced_contours(f0[:n], conf[:n], db[:n], hop, None)  # pylint: disable=protected-access
    raw = np.asarray(f0[:n], np.float64)
    return raw, c.voiced, np.arange(n) * hop
  if name in ("praat", "student"):
    c = contours.extract_contours(audio, tracker=name)
    return _raw_f0(c), c.voiced, np.arange(c.n_frames) * hop
  if name == "praat_ac":
    import parselmouth  # pylint: disable=g-import-not-at-top
    db = contours.energy_db(audio)
    p = parselmouth.Sound(audio.astype(np.float64), 16000).to_pitch_ac(
        time_step=hop, pitch_floor=60.0, pitch_ceiling=1100.0)
    ts, f = p.xs(), p.selected_array["frequency"]
    grid = np.arange(len(db)) * hop
    idx = np.clip(np.round((grid - ts[0]) / hop).astype(int), 0, len(ts) - 1)
    f0 = np.where(np.abs(ts[idx] - grid) <= 0.6 * hop, f[idx], 0.0)
    voiced = (f0 > 0) & (db >= db.max() - contours.VOICING_RANGE_DB)
    return f0, voiced, grid
  raise ValueError(f"unknown tracker {name!r}; known: {', '.join(TRACKERS)}")


def _raw_f0(c) -> np.ndarray:
  """The tracker's pitch guess on every frame, voiced or not (extract_contours
  zeroes unvoiced frames; `_capture_raw` keeps the f0 before that)."""
  return np.asarray(_LAST_RAW["f0"], np.float64)[:c.n_frames]


_LAST_RAW = {}


def _capture_raw():
  """Wraps contours._voiced_contours to keep the unmasked f0 of the last call."""
  from asa_jax.baselines import contours  # pylint: disable=g-import-not-at-top
  inner = contours._voiced_contours  # pylint: disable=protected-access

  def wrapped(f0, conf, db, hop_s, onsets, **kw):
    _LAST_RAW["f0"] = np.array(f0, np.float64)
    return inner(f0, conf, db, hop_s, onsets, **kw)
  contours._voiced_contours = wrapped  # pylint: disable=protected-access
  contours.onset_times = lambda audio: np.zeros(0)  # onsets are not timed here.


def evaluate(f0, voiced, times, midi) -> dict:
  """mir_eval.melody figures of one clip against its PitchLabel."""
  import mir_eval  # pylint: disable=g-import-not-at-top
  ref_hz = np.where(midi > 0, 440.0 * 2.0 ** ((midi - 69.0) / 12.0), 0.0)
  ref_t = np.arange(len(midi)) * LABEL_HOP_S + LABEL_OFFSET_S
  est = np.where(voiced, np.abs(f0), -np.abs(f0))
  keep = times >= 0
  s = mir_eval.melody.evaluate(ref_t, ref_hz, times[keep], est[keep])
  return {"rpa": s["Raw Pitch Accuracy"], "rca": s["Raw Chroma Accuracy"],
          "vr": s["Voicing Recall"], "vfa": s["Voicing False Alarm"],
          "ref_voiced": int((midi > 0).sum()), "ref_unvoiced": int((midi <= 0).sum())}


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"))
  p.add_argument("--clips", type=int, default=0,
                 help="a seeded subset of this many clips (0: all 1,000); subsets nest")
  p.add_argument("--trackers", default="crepe_tiny,crepe_tiny_20ms,"
                 "crepe_tiny_20ms_odd,praat_ac")
  p.add_argument("--out_dir", default=os.path.join(REPO, "runs", "pitch"))
  args = p.parse_args()
  sys.path.insert(0, REPO)
  from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
  _capture_raw()
  d = os.path.join(args.data_dir, "mir1k")
  names = sorted(os.path.basename(x)[:-3]
                 for x in glob.glob(os.path.join(d, "PitchLabel", "*.pv")))
  if not names:
    sys.exit(f"{d}/PitchLabel: no .pv files")
  if args.clips:
    # The first N of one seeded permutation: a smaller subset is inside a larger.
    pick = np.random.default_rng(0).permutation(len(names))[:args.clips]
    names = [names[i] for i in sorted(pick)]
  trackers = args.trackers.split(",")
  os.makedirs(args.out_dir, exist_ok=True)
  done = {}
  for t in trackers:
    path = os.path.join(args.out_dir, f"{t}.jsonl")
    done[t] = {}
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        for line in f:
          if line.strip():
            row = json.loads(line)
            done[t][row["clip"]] = row
  warm = audio_lib.load_audio(os.path.join(d, "voice", f"{names[0]}.opus"))
  for t in trackers:  # compiles (CREPE per chunk shape) are not timed.
    if len(done[t]) < len(names):
      for k in (1, 2, 3, 4):
        track(t, warm[:len(warm) * k // 4])
  for name in names:
    todo = [t for t in trackers if name not in done[t]]
    if not todo:
      continue
    audio = audio_lib.load_audio(os.path.join(d, "voice", f"{name}.opus"))
    midi = np.loadtxt(os.path.join(d, "PitchLabel", f"{name}.pv"), ndmin=1)
    for t in todo:
      start = time.perf_counter()
      f0, voiced, times = track(t, audio)
      seconds = time.perf_counter() - start
      row = {"clip": name, "frames": int((times >= 0).sum()), "seconds": seconds,
             **evaluate(f0, voiced, times, midi)}
      with open(os.path.join(args.out_dir, f"{t}.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
      done[t][name] = row
  print(f"MIR-1K, {len(names)} clips; accuracies pooled over the labelled frames "
        "(voiced-frame weighted), false alarm over unvoiced frames")
  print("| tracker | clips | raw pitch acc. | raw chroma acc. | voicing recall | "
        "voicing false alarm | 10 ms frames/s |")
  print("|---|---|---|---|---|---|---|")
  for t in trackers:
    rows = [done[t][n] for n in names if n in done[t]]
    if not rows:
      continue
    wv = np.array([r["ref_voiced"] for r in rows], float)
    wu = np.array([r["ref_unvoiced"] for r in rows], float)

    def avg(key, w):
      return float(np.average([r[key] for r in rows], weights=w))
    fps = sum(r["frames"] for r in rows) / sum(r["seconds"] for r in rows)
    print(f"| {t} | {len(rows)} | {avg('rpa', wv):.4f} | {avg('rca', wv):.4f} | "
          f"{avg('vr', wv):.4f} | {avg('vfa', wu):.4f} | {fps:,.0f} |")


if __name__ == "__main__":
  main()
