"""A scoring worker process: loads the Assessor once, then runs jobs from its pipe.

Protocol (multiprocessing Connection, pickled tuples):
  worker -> parent, once:  ("ready", {"pid", "system", "fingerprint"})
                       or  ("failed", message)   then exits;
  parent -> worker:        (job_id, kind, payload)  kind in JOBS;
  worker -> parent:        (job_id, "ok", result) or (job_id, "error", (status, msg)).
Jobs name only files the service wrote itself (its temporary uploads, cache and
result files); the uploads' own names never reach here.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal

import numpy as np

from asa_jax import atomic
from asa_jax import host_memory
from asa_jax.assess.serve import http_errors as errors_lib
from asa_jax.assess import refcache
from asa_jax.assess.serve import scorer as scorer_lib

log = logging.getLogger("asa_jax.serve.worker")
WARM_UP_SECONDS = 6.0
_REFERENCES_IN_MEMORY = 8  # decoded cache entries kept per worker (LRU).


def _warm_up_audio(seed: int) -> np.ndarray:
  """6 s of a generated sung melody (compiles CREPE and the model once)."""
  from input_pipeline.corpora import synth_voice  # pylint: disable=g-import-not-at-top
  notes = [synth_voice.Note(onset=0.2 + 0.7 * i, duration=0.65, midi=60 + (2 * i) % 7,
                            vowel=i % 5) for i in range(8)]
  return synth_voice.render_voice(notes, synth_voice.Voice(vibrato_depth=20.0),
                                  total_seconds=WARM_UP_SECONDS,
                                  rng=np.random.default_rng(seed))


class Worker:
  """The state of one worker process: its Assessor and its decoded references."""

  def __init__(self, assessor, max_seconds: float):
    from asa_jax.assess import assessor as assessor_lib  # pylint: disable=g-import-not-at-top
    from asa_jax.features import constants  # pylint: disable=g-import-not-at-top
    self.assessor = assessor
    self.max_seconds = max_seconds
    self._refs: collections.OrderedDict = collections.OrderedDict()
    ref = _warm_up_audio(1)
    contours = assessor.reference_contours(ref)
    try:
      assessor.assess_audio(_warm_up_audio(2), ref, reference_contours=contours)
    except ValueError as e:  # e.g. a system that needs an accompaniment.
      log.warning("warm-up scoring skipped: %s", e)
    # The scorer's own settings (its CREPE capacity, hop, constants) when it says
    # them, so a scorer computing contours another way never reads these.
    self.fingerprint = getattr(assessor, "reference_fingerprint", None) or (
        refcache.fingerprint(assessor.name, contours.hop_s,
                             assessor_lib.FEEDBACK_CAPACITY, constants.SAMPLE_RATE))

  def _decode(self, path: str, field: str) -> np.ndarray:
    """float32 (n,) 16 kHz audio of an upload; errors name the field, not the path."""
    import soundfile as sf  # pylint: disable=g-import-not-at-top
    from asa_jax.assess import AudioError, load_input  # pylint: disable=g-import-not-at-top
    from asa_jax.features import constants  # pylint: disable=g-import-not-at-top
    try:  # The header's duration, before decoding a long file.
      seconds = sf.info(path).duration
    except Exception:  # pylint: disable=broad-except
      seconds = 0.0  # Not a libsndfile format: decoded below (audioread).
    if seconds <= self.max_seconds:
      try:
        audio, _ = load_input(path, role=field)
      except AudioError as e:
        # The decoders' messages may quote the temporary path: name the field.
        raise AudioError(field, e.reason.replace(path, field)) from None
      seconds = len(audio) / constants.SAMPLE_RATE
    if seconds > self.max_seconds:
      raise errors_lib.ServiceError(
          413, f"{field}: {seconds:.1f} s long; the duration limit is "
          f"{self.max_seconds:g} s (--max-seconds)")
    return audio

  def reference(self, cache_file: str, upload: str | None) -> tuple:
    """(audio, contours) of a reference: memory, else the cache, else the upload
    (decoded, analysed and written to the cache)."""
    if cache_file in self._refs:
      self._refs.move_to_end(cache_file)
      return self._refs[cache_file]
    if os.path.exists(cache_file):
      entry = refcache.load(cache_file)
    elif upload is None:
      raise errors_lib.ServiceError(404, "unknown reference_id (upload it with "
                                    "POST /v1/references)")
    else:
      audio = self._decode(upload, "reference")
      entry = audio, self.assessor.reference_contours(audio)
      refcache.save(cache_file, *entry)
    self._refs[cache_file] = entry
    while len(self._refs) > _REFERENCES_IN_MEMORY:
      self._refs.popitem(last=False)
    return entry

  def job_reference(self, cache_file: str, upload: str) -> dict:
    """Decodes an uploaded reference and caches its contours in cache_file;
    {"duration_s": seconds}. Raises AudioError (a bad upload, named by its field)
    or ServiceError 413 (longer than max_seconds)."""
    audio, _ = self.reference(cache_file, upload)
    return {"duration_s": round(len(audio) / 16000.0, 3)}

  def job_score(self, performance: str, cache_file: str, reference: str | None,
                result_base: str) -> dict:
    """Scores a performance file against a cached (or uploaded) reference; writes
    the Assessment to result_base.json (+ .npz: the pitch curves, MIDI per frame)
    atomically and returns its dict. Raises AudioError or AssessmentError (bad
    audio, not the same melody), ServiceError 404 (unknown reference) or 413."""
    perf = self._decode(performance, "performance")
    ref, contours = self.reference(cache_file, reference)
    result = self.assessor.assess_audio(perf, ref, performance_name="performance",
                                        reference_name="reference",
                                        reference_contours=contours)
    out = result.to_dict()
    atomic.write_json(result_base + ".json", out)
    with atomic.atomic_path(result_base + ".npz") as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, times_s=result.pitch.times_s,
                 performance_midi=result.pitch.performance_midi,
                 reference_midi=result.pitch.reference_midi)
    return out

  def job_report(self, result_base: str) -> str:
    """The HTML report (str) of a result job_score stored under result_base."""
    from asa_jax.assess import html_report  # pylint: disable=g-import-not-at-top
    return html_report.html_report(load_result(result_base))

  def run(self, kind: str, payload: dict):
    """Runs job `kind` (reference | score | report) with its payload's keywords."""
    return getattr(self, f"job_{kind}")(**payload)


def load_result(result_base: str):
  """The Assessment stored by `Worker.job_score` (floats as rounded by to_dict)."""
  from asa_jax.assess import Assessment, PitchCurves  # pylint: disable=g-import-not-at-top
  with open(result_base + ".json", encoding="utf-8") as f:
    d = json.load(f)
  with np.load(result_base + ".npz", allow_pickle=False) as z:
    pitch = PitchCurves(z["times_s"], z["performance_midi"], z["reference_midi"])
  return Assessment.from_dict(d, pitch)


def main(conn, spec: scorer_lib.ScorerSpec, max_seconds: float) -> None:
  """Entry point of a worker process (module doc); returns when the pipe closes."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  signal.signal(signal.SIGINT, signal.SIG_IGN)  # The parent stops its workers.
  logging.basicConfig(level=logging.INFO, format=(
      f"%(asctime)s worker[{os.getpid()}] %(levelname)s %(message)s"))
  from asa_jax import logs  # pylint: disable=g-import-not-at-top
  logs.quiet_libraries()
  try:
    worker = Worker(scorer_lib.load_assessor(spec), max_seconds)
  except Exception as e:  # pylint: disable=broad-except
    log.exception("cannot start")
    conn.send(("failed", str(e)))
    return
  conn.send(("ready", {"pid": os.getpid(), "system": worker.assessor.name,
                       "fingerprint": worker.fingerprint}))
  while True:
    try:
      job_id, kind, payload = conn.recv()
    except (EOFError, OSError):
      return
    try:
      conn.send((job_id, "ok", worker.run(kind, payload)))
    except Exception as e:  # pylint: disable=broad-except
      error = errors_lib.classify(e)
      if error.status >= 500:
        log.exception("request %s failed", job_id)
      conn.send((job_id, "error", (error.status, error.message)))
    # After the answer is sent, so it costs no latency: the request's freed
    # temporaries (DTW matrices, audio) go back to the OS, not into the next one's
    # high-water mark (issue 21: RSS flat under load).
    host_memory.release()
