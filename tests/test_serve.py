"""Tests of asa-serve (issue 21): the worker pool, the API through httpx, and a real
uvicorn on 127.0.0.1 (bad inputs, a full queue, a client that leaves, a killed
worker, a restart that keeps the reference cache)."""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import numpy as np
import pytest

import asa_jax.assess as assess_lib
from asa_jax.assess.serve import app as app_lib
from asa_jax.assess.serve import http_errors as errors_lib
from asa_jax.assess.serve import pool as pool_lib
from asa_jax.assess.serve import scorer as scorer_lib
from tests import serve_helpers

START_S = 600  # a worker's load and warm-up on a busy 2-core machine.


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
  return serve_helpers.write_audio(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
  return serve_helpers.calibration_file(tmp_path_factory.mktemp("cal") / "cal.json")


# --- the worker pool --------------------------------------------------------------


@pytest.mark.timeout(600)
def test_pool_time_limit_full_queue_and_cancel(audio, tmp_path):
  """Past the time limit: 504 and the worker is replaced; a full queue: 503 with
  Retry-After; a cancelled waiting job frees its place; a cancelled running job
  frees its worker (replaced)."""

  def payload(perf, name):
    return {"performance": audio[perf], "cache_file": str(tmp_path / f"{name}.npz"),
            "reference": audio["reference"],
            "result_base": str(tmp_path / name)}

  async def run():
    pool = pool_lib.WorkerPool(
        scorer_lib.ScorerSpec(factory="tests.serve_fakes:sleepy"), workers=1,
        queue_size=1, timeout_s=8.0, start_timeout_s=START_S)
    await pool.start()
    try:
      first_pid = pool.worker_pids()[0]
      slow = await pool.submit("a" * 32, "score", payload("performance", "a"))
      while pool.queued():  # until a worker takes it.
        await asyncio.sleep(0.05)
      queued = await pool.submit("b" * 32, "score", payload("performance", "b"))
      with pytest.raises(errors_lib.ServiceError) as full:
        await pool.submit("c" * 32, "score", payload("performance", "c"))
      assert full.value.status == 503 and "queue is full" in full.value.message
      assert int(full.value.headers["Retry-After"]) >= 1
      pool.cancel(queued)  # the client left: its place is free at once.
      replacement = await pool.submit("d" * 32, "score", payload("performance", "d"))
      with pytest.raises(errors_lib.ServiceError) as late:
        await asyncio.wait_for(slow.future, 60)
      assert late.value.status == 504 and "time limit of 8 s" in late.value.message
      # The next job ran on a new worker (the sleeping one was killed).
      with pytest.raises(errors_lib.ServiceError):
        await asyncio.wait_for(replacement.future, START_S)
      second_pid = pool.worker_pids()[0]
      assert second_pid != first_pid
      running = await pool.submit("e" * 32, "score", payload("performance", "e"))
      while pool.queued():
        await asyncio.sleep(0.05)
      await asyncio.sleep(2.0)  # dispatched to the worker, which sleeps.
      pool.cancel(running)
      for _ in range(600):
        if pool.worker_pids() and pool.worker_pids()[0] != second_pid:
          break
        await asyncio.sleep(0.5)
      assert pool.worker_pids() and pool.worker_pids()[0] != second_pid
      assert not running.future.done()  # nobody waits for it: never answered.
    finally:
      await pool.close()
    assert not pool.worker_pids()

  asyncio.run(run())


def test_not_same_melody_maps_to_422():
  """The Assessor's 'different song' exception answers 422, not 400 (it is a
  ValueError too)."""
  import asa_jax.assess as assess  # pylint: disable=g-import-not-at-top
  error = errors_lib.classify(assess.NotSameMelodyError("perf.wav", "ref.wav",
                                                         reason="no alignment"))
  assert error.status == 422 and error.message.startswith("not the same melody")
  assert "perf.wav" in error.message
  assert errors_lib.classify(assess.AudioError("performance", "silent")).status == 400
  assert errors_lib.classify(RuntimeError("boom")).status == 500


def test_no_flag_serves_the_shipped_default_scorer():
  assessor = scorer_lib.load_assessor(scorer_lib.ScorerSpec())
  assert assessor.name == assess_lib.Assessor.default().name
  assert scorer_lib.ScorerSpec().describe() == "the default scorer"


@pytest.mark.timeout(600)
def test_asa_serve_with_an_unloadable_scorer_exits_with_a_clear_message(tmp_path):
  proc = subprocess.run([sys.executable, "-m", "asa_jax.assess.serve.command",
                         f"--workdir={tmp_path / 'no_such_run'}",
                         f"--port={serve_helpers.free_port()}",
                         f"--state-dir={tmp_path / 'state'}"],
                        capture_output=True, text=True, timeout=500,
                        cwd=serve_helpers.REPO,
                        env={**os.environ, "PYTHONPATH": serve_helpers.REPO})
  assert proc.returncode == 3, proc.stderr[-2000:]
  assert "no_such_run" in proc.stderr and "cannot load" in proc.stderr


# --- the API through httpx (in-process app, worker processes) -----------------------


@pytest.fixture(scope="module")
def client(calibration, tmp_path_factory):
  from fastapi.testclient import TestClient  # pylint: disable=g-import-not-at-top
  state = tmp_path_factory.mktemp("state")
  os.environ["ASA_TEST_CALIBRATION"] = calibration  # read by the spawned worker.
  settings = app_lib.ServiceSettings(
      scorer_lib.ScorerSpec(factory="tests.serve_fakes:melody_checking_baseline"),
      state_dir=str(state), api_key="secret", start_timeout_s=START_S)
  app = app_lib.create_app(settings)
  with TestClient(app, headers={"X-API-Key": "secret"}) as c:
    end = time.monotonic() + START_S
    while c.get("/healthz").status_code != 200:
      assert time.monotonic() < end, "not ready"
      time.sleep(0.5)
    c.state_dir = state
    yield c


def _files(audio, **names):
  return {field: (f"../../etc/{field}.wav", open(audio[name], "rb"), "audio/wav")
          for field, name in names.items()}


@pytest.mark.timeout(900)
def test_api_scores_caches_and_reports(client, audio):
  assert client.get("/healthz").json()["status"] == "ready"
  schema = client.get("/openapi.json").json()
  assert {"/v1/score", "/v1/references", "/v1/report/{score_id}"} <= set(schema["paths"])
  # The API key guards everything but /healthz.
  bare = httpx.Client(transport=client._transport, base_url=str(client.base_url))
  for path in ("/", "/openapi.json", "/v1/report/" + "0" * 32):
    answer = bare.get(path)
    assert answer.status_code == 401 and "X-API-Key" in answer.json()["detail"]
  assert bare.get("/healthz").status_code == 200
  # CORS is off: no Access-Control header for another origin.
  assert "access-control-allow-origin" not in client.get(
      "/healthz", headers={"Origin": "http://elsewhere.example"}).headers

  first = client.post("/v1/references", files=_files(audio, reference="reference"))
  assert first.status_code == 200, first.text
  ref_id = first.json()["reference_id"]
  assert re.fullmatch("[0-9a-f]{32}", ref_id) and first.json()["cached"] is False
  assert os.path.exists(client.state_dir / "references" / f"{ref_id}.npz")
  again = client.post("/v1/references", files=_files(audio, reference="reference"))
  assert again.json() == {**first.json(), "cached": True}

  by_id = client.post("/v1/score", files=_files(audio, performance="performance"),
                      data={"reference_id": ref_id})
  assert by_id.status_code == 200, by_id.text
  result = by_id.json()
  # The JSON of asa-score --json: Assessment.to_dict().
  assert {"score", "raw", "system", "segments", "warnings", "key_offset_semitones",
          "tempo_ratio", "calibration"} <= set(result)
  assert 0 <= result["score"] <= 100 and result["system"] == "dtw_melody"
  assert "wrong_note" in result["segments"][2]["flags"]  # the phrase 100 cents off.
  by_file = client.post("/v1/score", files=_files(audio, performance="performance",
                                                  reference="reference"))
  assert by_file.status_code == 200 and by_file.json() == result
  assert by_file.headers["X-Reference-Id"] == ref_id  # same content, same cache entry.
  # Exactly what `asa-score --json` writes for the same pair (cached contours too).
  from asa_jax.assess import cli  # pylint: disable=g-import-not-at-top
  out = client.state_dir / "asa_score.json"
  assert cli.main(["--baseline=dtw_melody",
                   f"--calibration={os.environ['ASA_TEST_CALIBRATION']}",
                   f"--performance={audio['performance']}",
                   f"--reference={audio['reference']}", f"--json={out}"]) == 0
  with open(out) as f:
    assert json.load(f) == result

  report = client.get(f"/v1/report/{by_id.headers['X-Score-Id']}")
  assert report.status_code == 200 and 'id="pitch-plot"' in report.text
  assert f"{result['score']:.0f} / 100" in report.text
  page = client.get("/")
  assert page.status_code == 200 and "MediaRecorder" in page.text
  assert os.listdir(client.state_dir / "tmp") == []  # temporary uploads removed.


@pytest.mark.timeout(900)
def test_api_refuses_bad_requests(client, audio):
  ref_id = client.post("/v1/references", files=_files(
      audio, reference="reference")).json()["reference_id"]
  cases = [
      # (files, data, status, message)
      (_files(audio, performance="performance"), {}, 400, "exactly one of"),
      (_files(audio, performance="performance", reference="reference"),
       {"reference_id": ref_id}, 400, "exactly one of"),
      (_files(audio, performance="performance"), {"reference_id": "../../etc/passwd"},
       400, "32 hex digits"),
      (_files(audio, performance="performance"), {"reference_id": "f" * 32}, 404,
       "unknown reference_id"),
      (_files(audio, reference="reference"), {"reference_id": ref_id}, 400,
       "performance"),
      (_files(audio, performance="short"), {"reference_id": ref_id}, 400,
       "performance: too short"),
  ]
  for files, data, status, message in cases:
    answer = client.post("/v1/score", files=files, data=data)
    assert answer.status_code == status, (message, answer.text)
    assert message in answer.json()["detail"], answer.text
  # A performance under half the reference: the stand-in melody check.
  wrong = client.post("/v1/score", files=_files(audio, performance="silent"),
                      data={"reference_id": ref_id})
  assert wrong.status_code == 400 and "performance: " in wrong.json()["detail"]
  other = client.post("/v1/score", files=_files(audio, performance="noise"),
                      data={"reference_id": ref_id})
  assert other.status_code == 422
  assert other.json()["detail"].startswith("not the same melody")
  assert client.get("/v1/report/" + "0" * 32).status_code == 404
  assert client.get("/v1/report/..%2F..%2Fetc").status_code == 404
  assert os.listdir(client.state_dir / "tmp") == []


# --- a real uvicorn on 127.0.0.1 ----------------------------------------------------


@pytest.fixture(scope="module")
def server(calibration, tmp_path_factory):
  state = tmp_path_factory.mktemp("server_state")
  args = ["--baseline=dtw_melody", f"--calibration={calibration}", f"--state-dir={state}",
          "--workers=1", "--queue=1", "--max-upload-mb=2", "--max-seconds=100",
          "--timeout=300"]
  srv = serve_helpers.Server(args, tmp_path_factory.mktemp("log") / "serve.log")
  srv.args, srv.state = args, state
  try:
    srv.wait_ready(START_S)
    yield srv
  finally:
    srv.stop()


def _post(server, path, files, data=None, timeout=300):
  opened = {k: (os.path.basename(v), open(v, "rb")) for k, v in files.items()}
  try:
    return httpx.post(server.url + path, files=opened, data=data or {},
                      timeout=timeout)
  finally:
    for _, f in opened.values():
      f.close()


@pytest.mark.timeout(1200)
def test_server_answers_every_bad_input_with_its_status(server, audio, tmp_path):
  ref = _post(server, "/v1/references", {"reference": audio["reference"]})
  assert ref.status_code == 200, ref.text
  ref_id = ref.json()["reference_id"]
  big = tmp_path / "big.wav"
  big.write_bytes(b"\0" * (3 * 2**20))
  cases = {  # performance file -> (status, words of the message)
      str(big): (413, "size limit of 2097152 bytes"),
      audio["too_long"]: (413, "performance: 135.0 s long; the duration limit is 100 s"),
      audio["corrupt"]: (400, "performance: unreadable"),
      audio["text"]: (400, "performance: unreadable"),
      audio["silent"]: (400, "performance: silent"),
      audio["short"]: (400, "performance: too short"),
      audio["noise"]: (400, "performance: no voice found"),
  }
  for path, (status, message) in cases.items():
    answer = _post(server, "/v1/score", {"performance": path}, {"reference_id": ref_id})
    assert answer.status_code == status, (path, answer.text)
    assert message in answer.json()["detail"], (path, answer.text)
    assert str(server.state) not in answer.text  # no server path in the answer.
  empty = tmp_path / "empty.wav"
  empty.write_bytes(b"")
  answer = _post(server, "/v1/score", {"performance": str(empty)}, {"reference_id": ref_id})
  assert answer.status_code == 400 and "performance: empty upload" in answer.text
  answer = _post(server, "/v1/references", {"reference": audio["corrupt"]})
  assert answer.status_code == 400 and "reference: unreadable" in answer.text
  assert os.listdir(server.state / "tmp") == []


def _raw_request(server, files: dict, data: dict) -> socket.socket:
  """Sends a whole multipart POST /v1/score on a socket it returns (unread)."""
  request = httpx.Request("POST", server.url + "/v1/score", data=data, files={
      k: (os.path.basename(v), open(v, "rb").read()) for k, v in files.items()})
  body = request.read()
  head = "".join(f"{k}: {v}\r\n" for k, v in request.headers.items())
  sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
  sock.sendall(f"POST /v1/score HTTP/1.1\r\n{head}\r\n".encode() + body)
  return sock


def _queued(server) -> int:
  return httpx.get(server.url + "/healthz", timeout=10).json()["queued"]


@pytest.mark.timeout(1800)
def test_server_full_queue_client_leaving_and_killed_worker(server, audio):
  """A long scoring runs; one more waits (queue of 1); a third gets 503 with
  Retry-After; the waiting client leaves and frees the place; the running worker
  is killed: 500 with an id that the log names; the next request succeeds."""
  ref_id = _post(server, "/v1/references",
                 {"reference": audio["reference"]}).json()["reference_id"]
  long_answer = {}

  def long_request():
    long_answer["r"] = _post(server, "/v1/score", {"performance": audio["long"]},
                             {"reference_id": ref_id}, timeout=600)

  since = len(server.log())
  thread = threading.Thread(target=long_request)
  thread.start()
  try:
    dispatched = server.wait_log("score on worker 0", 300, since)
    pid = int(re.search(r"pid (\d+)", dispatched).group(1))
    request_id = re.search(r"request ([0-9a-f]{32})", dispatched).group(1)
    leaving = _raw_request(server, {"performance": audio["performance"]},
                           {"reference_id": ref_id})
    end = time.monotonic() + 60
    while _queued(server) != 1:
      assert time.monotonic() < end, "the second request was not queued"
      time.sleep(0.2)
    full = _post(server, "/v1/score", {"performance": audio["performance"]},
                 {"reference_id": ref_id})
    assert full.status_code == 503 and "queue is full" in full.json()["detail"]
    assert int(full.headers["Retry-After"]) >= 1
    leaving.close()  # the client goes away: its place in the queue is freed.
    end = time.monotonic() + 60
    while _queued(server) != 0:
      assert time.monotonic() < end, "the departed client's place was not freed"
      time.sleep(0.2)
    assert thread.is_alive(), "the long scoring ended before the worker was killed"
    os.kill(pid, signal.SIGKILL)
    thread.join(120)
    answer = long_answer["r"]
    assert answer.status_code == 500, answer.text
    assert answer.json()["error_id"] == request_id
    died = server.wait_log(f"request {request_id}: worker 0 (pid {pid}) died", 30,
                           since)
    assert "exit code -9" in died
    after = _post(server, "/v1/score", {"performance": audio["performance"]},
                  {"reference_id": ref_id}, timeout=START_S)
    assert after.status_code == 200, after.text
    assert "client disconnected while queued" in server.log()
  finally:
    thread.join(600)


@pytest.mark.timeout(1800)
def test_restart_keeps_the_reference_cache(server, audio):
  ref_id = _post(server, "/v1/references",
                 {"reference": audio["reference"]}).json()["reference_id"]
  server.stop()
  again = serve_helpers.Server(server.args, server.log_path)
  try:
    again.wait_ready(START_S)
    answer = _post(again, "/v1/score", {"performance": audio["performance"]},
                   {"reference_id": ref_id})
    assert answer.status_code == 200, answer.text
    cached = _post(again, "/v1/references", {"reference": audio["reference"]})
    assert cached.json()["cached"] is True and cached.json()["reference_id"] == ref_id
  finally:
    again.stop()


def test_worker_keys_cached_references_by_the_scorers_own_settings(monkeypatch):
  from asa_jax.assess.serve import worker as worker_lib  # pylint: disable=g-import-not-at-top

  class Contours:
    hop_s = 0.032

  class Scorer:
    name = "fake"
    reference_fingerprint = None

    def reference_contours(self, ref):
      return Contours()

    def assess_audio(self, *a, **k):
      return None

  monkeypatch.setattr(worker_lib, "_warm_up_audio", lambda seed: np.zeros(16000))
  plain = worker_lib.Worker(Scorer(), 60.0).fingerprint
  Scorer.reference_fingerprint = "0123456789abcdef"
  assert worker_lib.Worker(Scorer(), 60.0).fingerprint == "0123456789abcdef"
  assert plain != "0123456789abcdef" and len(plain) == 16


def test_worker_returns_freed_heap_after_each_answer(monkeypatch):
  """Each job's answer (a result or an error) is sent first, then the heap is trimmed
  (`host_memory.release`): the trim costs the client no latency, and no request's
  temporaries stay in malloc's arenas into the next one (issue 21)."""
  from asa_jax import host_memory  # pylint: disable=g-import-not-at-top
  from asa_jax.assess.serve import worker as worker_lib  # pylint: disable=g-import-not-at-top
  events = []

  class FakeWorker:
    def __init__(self, assessor, max_seconds):
      self.assessor, self.fingerprint = assessor, "0" * 16

    def run(self, kind, payload):
      if payload.get("fail"):
        raise assess_lib.AudioError("performance", "silent")
      return {"score": 50.0}

  class Conn:
    jobs = [(1, "score", {}), (2, "score", {"fail": True})]

    def recv(self):
      if not self.jobs:
        raise EOFError
      return self.jobs.pop(0)

    def send(self, message):
      events.append("send ready" if message[0] == "ready" else
                    f"send {message[0]} {message[1]}")

  class Assessor:
    name = "fake"

  monkeypatch.setattr(signal, "signal", lambda *a: None)  # pytest's own SIGINT stays.
  monkeypatch.setattr(scorer_lib, "load_assessor", lambda spec: Assessor())
  monkeypatch.setattr(worker_lib, "Worker", FakeWorker)
  monkeypatch.setattr(host_memory, "release", lambda: events.append("release"))
  worker_lib.main(Conn(), None, 60.0)
  assert events == ["send ready", "send 1 ok", "release", "send 2 error", "release"]
