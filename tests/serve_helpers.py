"""A real `asa-serve` on 127.0.0.1 for the tests, audio files, and headless Chromium
driven over the DevTools protocol on a pipe (no WebSocket library needed)."""

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import soundfile as sf

from tests import assess_audio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SR = assess_audio.SAMPLE_RATE


def calibration_file(path) -> str:
  """A dtw_melody calibration (raw DTW cost -> 0..100) written to path."""
  from asa_jax.evaluation import calibration  # pylint: disable=g-import-not-at-top
  calibration.save(calibration.fit([-300.0, -100.0, -20.0, 0.0], [10, 40, 80, 95]),
                   path)
  return str(path)


def write_audio(folder) -> dict:
  """Test recordings in folder: name -> path."""
  folder = str(folder)
  files = {}

  def wav(name, audio, rate=SR, subtype="PCM_16"):
    files[name] = os.path.join(folder, name + ".wav")
    sf.write(files[name], audio, rate, subtype=subtype)

  reference = assess_audio.melody(seed=1)
  wav("reference", reference)
  wav("performance", assess_audio.melody(detune_phrase=2, detune_cents=100))
  wav("silent", np.zeros(5 * SR, np.float32))
  wav("short", reference[:SR])
  wav("noise", 0.003 * np.random.default_rng(0).standard_normal(5 * SR))
  # 60 s (four melodies) at 8 kHz: a long scoring in a small upload.
  wav("long", np.concatenate([assess_audio.melody(seed=s) for s in range(4)])[::2],
      rate=SR // 2)
  wav("too_long", np.tile(reference[::2], 9), rate=SR // 2, subtype="PCM_U8")  # 135 s
  files["corrupt"] = os.path.join(folder, "corrupt.wav")
  with open(files["corrupt"], "wb") as f:
    f.write(b"RIFF\x00\x00not really a wave file" * 10)
  files["text"] = os.path.join(folder, "notes.txt")
  with open(files["text"], "w") as f:
    f.write("not audio at all\n" * 100)
  return files


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


class Server:
  """`python -m asa_jax.assess.serve.command ARGS` on a free port; log in LOG."""

  def __init__(self, args, log_path, env=None):
    self.port = free_port()
    self.url = f"http://127.0.0.1:{self.port}"
    self.log_path = str(log_path)
    self._log = open(self.log_path, "ab")
    self.proc = subprocess.Popen(
        [sys.executable, "-m", "asa_jax.assess.serve.command", f"--port={self.port}",
         *args], cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": REPO, **(env or {})})

  def log(self) -> str:
    with open(self.log_path, encoding="utf-8", errors="replace") as f:
      return f.read()

  def wait_ready(self, timeout: float) -> None:
    """Polls /healthz until 200. Raises: RuntimeError (exited or timed out)."""
    import httpx  # pylint: disable=g-import-not-at-top
    end = time.monotonic() + timeout
    while time.monotonic() < end:
      if self.proc.poll() is not None:
        raise RuntimeError(f"asa-serve exited ({self.proc.returncode}):\n{self.log()}")
      with contextlib.suppress(httpx.HTTPError):
        if httpx.get(self.url + "/healthz", timeout=5).status_code == 200:
          return
      time.sleep(0.5)
    raise RuntimeError(f"asa-serve not ready in {timeout} s:\n{self.log()}")

  def wait_log(self, pattern: str, timeout: float, since: int = 0) -> str:
    """The first log line holding pattern after character `since` of the log
    (polls). Raises: TimeoutError."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
      for line in self.log()[since:].splitlines():
        if pattern in line:
          return line
      time.sleep(0.2)
    raise TimeoutError(f"no log line with {pattern!r} in {timeout} s")

  def stop(self) -> None:
    """SIGTERM (uvicorn stops its workers), then SIGKILL after 30 s."""
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGTERM)
      try:
        self.proc.wait(30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait(10)
    self._log.close()


class Chromium:
  """Headless Chromium with the DevTools protocol on fds 3 and 4
  (--remote-debugging-pipe): JSON messages separated by NUL bytes."""

  FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync")

  def __init__(self, binary: str, profile: str):
    to_chrome_r, self._to_chrome = os.pipe()
    self._from_chrome, from_chrome_w = os.pipe()

    def fds():  # Chromium reads commands on fd 3 and writes answers on fd 4.
      os.dup2(to_chrome_r, 3)
      os.dup2(from_chrome_w, 4)

    self.proc = subprocess.Popen(
        [binary, *self.FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
         "about:blank"], preexec_fn=fds, pass_fds=(3, 4),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    self._answers: queue.Queue = queue.Queue()
    self._next_id = 0
    threading.Thread(target=self._read, daemon=True).start()
    self.session = None

  def _read(self):
    buf = b""
    while True:
      chunk = os.read(self._from_chrome, 1 << 16)
      if not chunk:
        return
      buf += chunk
      while b"\0" in buf:
        message, buf = buf.split(b"\0", 1)
        message = json.loads(message)
        if "id" in message:
          self._answers.put(message)

  def send(self, method: str, timeout: float = 60, **params) -> dict:
    """One command (in the attached page's session once `open` ran); its result.
    Raises: RuntimeError (a protocol error), queue.Empty (no answer in time)."""
    self._next_id += 1
    message = {"id": self._next_id, "method": method, "params": params}
    if self.session and not method.startswith("Target."):
      message["sessionId"] = self.session
    os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
    end = time.monotonic() + timeout
    while True:
      answer = self._answers.get(timeout=max(0.01, end - time.monotonic()))
      if answer["id"] == self._next_id:
        if "error" in answer:
          raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

  def open(self, url: str, timeout: float = 60) -> None:
    """Attaches to the page and loads url (waits for readyState complete)."""
    targets = self.send("Target.getTargets")["targetInfos"]
    page = next(t for t in targets if t["type"] == "page")
    self.session = self.send("Target.attachToTarget", targetId=page["targetId"],
                             flatten=True)["sessionId"]
    self.send("Page.navigate", url=url)
    end = time.monotonic() + timeout
    while self.evaluate("document.readyState") != "complete" or self.evaluate(
        "location.href") != url:
      if time.monotonic() > end:
        raise TimeoutError(f"{url} not loaded in {timeout} s")
      time.sleep(0.2)

  def evaluate(self, expression: str):
    return self.send("Runtime.evaluate", expression=expression,
                     returnByValue=True)["result"].get("value")

  def set_file(self, selector: str, path: str) -> None:
    root = self.send("DOM.getDocument")["root"]["nodeId"]
    node = self.send("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
    self.send("DOM.setFileInputFiles", nodeId=node, files=[path])

  def close(self) -> None:
    with contextlib.suppress(Exception):
      self.send("Browser.close", timeout=10)
    try:
      self.proc.wait(15)
    except subprocess.TimeoutExpired:
      self.proc.kill()
      self.proc.wait(10)
    for fd in (self._to_chrome, self._from_chrome):
      with contextlib.suppress(OSError):
        os.close(fd)
