"""Load test of asa-serve (issue 21): loopback only, bounded in count and time.

  python benchmarks/serve_load.py [--count=200] [--clients=16] [--references=5]
      [--seconds=30] [--workers=2] [--queue=32] [--max_minutes=60]
      [--default | --workdir=W | --baseline=dtw_melody] [--inprocess=40]
      [--out=FILE.json]

Starts `asa-serve` on 127.0.0.1 (a free port), uploads `--references` generated sung
references of `--seconds` s (cached), scores every reference once per worker as a
warm-up (not counted), then
`--count` scorings of `--seconds` s performances (each reference's own melody, sung
with other errors) from `--clients` concurrent clients (httpx, one thread each; a
503 is counted and retried after its Retry-After). Prints and writes:
  throughput (scorings/s), p50/p95 latency (s), 503s, errors (other non-200 and
  transport errors), unanswered requests, the server's peak RSS over the run (the
  service process plus its workers, sampled every 0.25 s), RSS right after the
  warm-up and the growth after it (flat = within 10%), the peak of each quarter of
  the run, the warm-up's own peak and the second half's peak over the first's (the
  trend, busy against busy), the load average;
  and the same pairs scored in one process through the Python API (the Assessor
  loaded once, each reference's contours computed once, performances decoded from
  the same files), for `--inprocess` pairs: its throughput and the ratio.
--default serves the default scorer shipped with the package (`asa-serve` with no
scorer flag: the contour comparator and measured-terms fusion); otherwise
--workdir, or the dtw_melody baseline (no training needed).
"""

import argparse
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
SR = 16000


def _melody(seconds: float, song: int, *, detune: float, shift: float, seed: int):
  """A generated sung melody of song `song` (its own notes), with errors."""
  from input_pipeline.corpora import synth_voice  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(1000 + song)
  pitches = 55 + rng.integers(0, 12, size=int(seconds / 0.6) + 1)
  notes, t, k = [], 0.3, 0
  while t + 0.6 < seconds:
    wrong = k % 7 == 3
    notes.append(synth_voice.Note(onset=t + (shift if wrong else 0.0), duration=0.55,
                                  midi=float(pitches[k]),
                                  offset_cents=detune if wrong else 0.0, vowel=k % 5))
    t += 0.6 if k % 4 != 3 else 1.2  # a breath every four notes.
    k += 1
  return synth_voice.render_voice(notes, synth_voice.Voice(vibrato_depth=20.0),
                                  total_seconds=seconds, rng=np.random.default_rng(seed))


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class RssSampler(threading.Thread):
  """Samples the RSS of a process and its children (bytes) every `period` s."""

  def __init__(self, pid: int, period: float = 0.25):
    super().__init__(daemon=True)
    import psutil  # pylint: disable=g-import-not-at-top
    self.proc, self.period = psutil.Process(pid), period
    self.samples: list[tuple[float, int]] = []
    self.stop = threading.Event()

  def run(self):
    import psutil  # pylint: disable=g-import-not-at-top
    while not self.stop.is_set():
      try:
        procs = [self.proc, *self.proc.children(recursive=True)]
        total = 0
        for p in procs:
          try:
            total += p.memory_info().rss
          except psutil.NoSuchProcess:
            pass
        self.samples.append((time.monotonic(), total))
      except psutil.NoSuchProcess:
        return
      self.stop.wait(self.period)

  def peak(self, since: float = 0.0, until: float = float("inf")) -> int:
    return max((r for t, r in self.samples if since <= t <= until), default=0)

  def at(self, when: float) -> int:
    before = [r for t, r in self.samples if t <= when]
    return before[-1] if before else 0


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--count", type=int, default=200)
  p.add_argument("--clients", type=int, default=16)
  p.add_argument("--references", type=int, default=5)
  p.add_argument("--seconds", type=float, default=30.0)
  p.add_argument("--workers", type=int, default=2)
  p.add_argument("--queue", type=int, default=32)
  p.add_argument("--max_minutes", type=float, default=60.0)
  p.add_argument("--default", action="store_true",
                 help="serve the shipped default scorer (Assessor.default()).")
  p.add_argument("--workdir")
  p.add_argument("--baseline", default="dtw_melody")
  p.add_argument("--inprocess", type=int, default=40)
  p.add_argument("--out")
  args = p.parse_args()
  import httpx  # pylint: disable=g-import-not-at-top
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  tmp = tempfile.mkdtemp(prefix="serve_load_")
  deadline = time.monotonic() + 60 * args.max_minutes

  # Recordings: one reference per song, 4 performances of each song.
  refs, perfs = [], []
  for song in range(args.references):
    path = os.path.join(tmp, f"ref{song}.wav")
    sf.write(path, _melody(args.seconds, song, detune=0, shift=0, seed=song), SR)
    refs.append(path)
    for v in range(4):
      path = os.path.join(tmp, f"perf{song}_{v}.wav")
      sf.write(path, _melody(args.seconds, song, detune=(-80, 40, 120, 0)[v],
                             shift=(0.0, 0.25, -0.15, 0.4)[v], seed=100 + v), SR)
      perfs.append((song, path))
  pairs = [perfs[(i * 7) % len(perfs)] for i in range(args.count)]

  if args.default:
    scorer = []
  elif args.workdir:
    scorer = [f"--workdir={args.workdir}"]
  else:
    from tests import serve_helpers  # pylint: disable=g-import-not-at-top
    cal = serve_helpers.calibration_file(os.path.join(tmp, "cal.json"))
    scorer = [f"--baseline={args.baseline}", f"--calibration={cal}"]
  port = _free_port()
  url = f"http://127.0.0.1:{port}"
  log = open(os.path.join(tmp, "serve.log"), "wb")
  server = subprocess.Popen(
      [sys.executable, "-m", "asa_jax.assess.serve.command", f"--port={port}", *scorer,
       f"--workers={args.workers}", f"--queue={args.queue}", "--timeout=600",
       f"--state-dir={os.path.join(tmp, 'state')}"], cwd=REPO, stdout=log,
      stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": REPO})
  out = {"count": args.count, "clients": args.clients, "references": args.references,
         "seconds": args.seconds, "workers": args.workers, "queue": args.queue,
         "scorer": " ".join(scorer) or "default", "loadavg_start": os.getloadavg()}
  sampler = RssSampler(server.pid)
  sampler.start()
  try:
    t0 = time.monotonic()
    while True:
      assert server.poll() is None, "asa-serve exited"
      assert time.monotonic() < deadline, "asa-serve not ready in time"
      try:
        if httpx.get(url + "/healthz", timeout=5).status_code == 200:
          break
      except httpx.HTTPError:
        pass
      time.sleep(0.5)
    out["ready_s"] = round(time.monotonic() - t0, 1)
    ref_ids = []
    for path in refs:
      with open(path, "rb") as f:
        r = httpx.post(url + "/v1/references", files={"reference": ("r.wav", f)},
                       timeout=600)
      r.raise_for_status()
      ref_ids.append(r.json()["reference_id"])

    def score(pair, client):
      song, path = pair
      started, rejected = time.monotonic(), 0
      while time.monotonic() < deadline:
        with open(path, "rb") as f:
          try:
            r = client.post(url + "/v1/score", files={"performance": ("p.wav", f)},
                            data={"reference_id": ref_ids[song]}, timeout=900)
          except httpx.HTTPError as e:
            return time.monotonic() - started, f"transport: {e!r}", rejected
        if r.status_code != 503:
          return time.monotonic() - started, r.status_code, rejected
        rejected += 1
        time.sleep(float(r.headers.get("Retry-After", "1")))
      return time.monotonic() - started, "unanswered (time bound)", rejected

    local = threading.local()

    def task(pair):
      if not hasattr(local, "client"):
        local.client = httpx.Client()
      return score(pair, local.client)

    with concurrent.futures.ThreadPoolExecutor(args.clients) as ex:
      # Warm-up, not counted: every reference on every worker (in order, so that
      # each worker sees each of them with high likelihood).
      warmup = [next(q for q in perfs if q[0] == s) for s in range(args.references)]
      warm_start = time.monotonic()
      list(ex.map(task, warmup * args.workers))
      warm = time.monotonic()
      time.sleep(0.5)
      t0 = time.monotonic()
      results = list(ex.map(task, pairs))
      wall = time.monotonic() - t0
    latencies = np.array([r[0] for r in results])
    statuses = [r[1] for r in results]
    rss_warm, rss_peak = sampler.at(warm + 0.5), sampler.peak(warm)
    out.update(
        wall_s=round(wall, 1),
        throughput_per_s=round(sum(r[1] == 200 for r in results) / wall, 4),
        p50_s=round(float(np.percentile(latencies, 50)), 2),
        p95_s=round(float(np.percentile(latencies, 95)), 2),
        ok=statuses.count(200), rejected_503=sum(r[2] for r in results),
        errors=[s for s in statuses if s != 200],
        server_5xx_other_than_503=sum(isinstance(s, int) and s >= 500 for s in statuses),
        rss_after_warmup_mb=round(rss_warm / 2**20, 1),
        rss_peak_mb=round(rss_peak / 2**20, 1),
        rss_growth_after_warmup=round(rss_peak / max(rss_warm, 1) - 1, 4),
        rss_peak_whole_run_mb=round(sampler.peak() / 2**20, 1),
        # RSS at 0, 25, 50, 75 and 100% of the measured run: flat or growing.
        rss_by_quarter_mb=[round(sampler.at(t0 + k * wall / 4) / 2**20, 1)
                           for k in range(5)],
        # Busy against busy: the peak of each quarter, the warm-up's own peak (the
        # workers scoring, as after it), and the second half's peak over the
        # first half's (a leak grows it; the working set of a scoring does not).
        rss_peak_by_quarter_mb=[
            round(sampler.peak(t0 + k * wall / 4, t0 + (k + 1) * wall / 4) / 2**20, 1)
            for k in range(4)],
        rss_peak_warmup_mb=round(sampler.peak(warm_start, warm) / 2**20, 1),
        rss_growth_second_half=round(
            sampler.peak(t0 + wall / 2, t0 + wall)
            / max(sampler.peak(t0, t0 + wall / 2), 1) - 1, 4))
  finally:
    sampler.stop.set()
    server.terminate()
    try:
      server.wait(60)
    except subprocess.TimeoutExpired:
      server.kill()
    log.close()
  out["loadavg_after_service"] = os.getloadavg()

  # The same pairs in one process through the Python API.
  n = min(args.inprocess, len(pairs))
  if n:  # bounded by its count (--inprocess), not by --max_minutes.
    from asa_jax.assess import Assessor, load_input  # pylint: disable=g-import-not-at-top
    if args.default:
      assessor = Assessor.default()
    elif args.workdir:
      assessor = Assessor.from_workdir(args.workdir)
    else:
      assessor = Assessor.from_baseline(args.baseline, calibration=cal)
    ref_audio = [load_input(p, role="reference")[0] for p in refs]
    ref_contours = [assessor.reference_contours(a) for a in ref_audio]
    for song, path in pairs[:2]:  # warm-up (compiles), as the service's.
      assessor.assess_audio(load_input(path, role="performance")[0], ref_audio[song],
                            reference_contours=ref_contours[song])
    t0, done = time.monotonic(), 0
    for song, path in pairs[:n]:
      assessor.assess_audio(load_input(path, role="performance")[0], ref_audio[song],
                            reference_contours=ref_contours[song])
      done += 1
    api = done / (time.monotonic() - t0)
    out.update(inprocess_pairs=done, inprocess_throughput_per_s=round(api, 4),
               service_over_inprocess=round(out["throughput_per_s"] / api, 3))
  out["loadavg_end"] = os.getloadavg()
  print(json.dumps(out, indent=1))
  if args.out:
    with open(args.out, "w") as f:
      json.dump(out, f, indent=1)


if __name__ == "__main__":
  main()
