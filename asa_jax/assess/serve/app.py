"""The FastAPI app of `asa-serve` (issue 21): `create_app(ServiceSettings(...))`.

Endpoints (OpenAPI schema at /openapi.json, docs at /docs):
  GET  /healthz          200 once every worker has loaded and warmed up, else 503.
  POST /v1/references    form file `reference` -> {"reference_id", "cached",
                         "duration_s"}; its audio and contours go to the cache.
  POST /v1/score         form file `performance` and either file `reference` or
                         field `reference_id` -> the JSON of `asa-score --json`; the
                         X-Score-Id header names the report.
  GET  /v1/report/{id}   the HTML report of a scoring.
  GET  /                 the page (static/index.html).
Errors answer {"detail": message} (and "error_id" on 500) with the status of
`errors.py`, 401 without the API key, 404 for unknown ids, 413 over the upload
limit, 503 + Retry-After when the queue is full.

Uploads are copied to fresh files named by the service in STATE/tmp (removed when
the request ends, and at start-up after a crash); the client's file names are never
used. Scorings are kept in STATE/results (the newest `results_kept`) for their
reports; references in STATE/references.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import importlib.resources
import json
import logging
import os
import re
import shutil
import tempfile
from typing import Callable
import uuid

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException

from asa_jax.assess.serve import http_errors as errors_lib
from asa_jax.assess.serve import pool as pool_lib
from asa_jax.assess import refcache
from asa_jax.assess.serve import scorer as scorer_lib

log = logging.getLogger("asa_jax.serve")
API_KEY_HEADER = "X-API-Key"
_RESULT_ID = re.compile(r"^[0-9a-f]{32}$")
_DISCONNECT_POLL_S = 0.25


def default_state_dir() -> str:
  """$ASA_JAX_CACHE_DIR/serve, else ~/.cache/asa-jax/serve."""
  root = os.environ.get("ASA_JAX_CACHE_DIR") or os.path.join(
      os.path.expanduser("~"), ".cache", "asa-jax")
  return os.path.join(root, "serve")


@dataclasses.dataclass
class ServiceSettings:
  """Everything `create_app` needs (the `asa-serve` flags).

  Attributes:
    scorer: what to serve.
    state_dir: reference cache, kept results, temporary uploads.
    workers: scoring processes.
    queue_size: requests that may wait for a worker; more get 503.
    timeout_s: time limit of a request (queue time included), seconds.
    max_upload_bytes: request body limit (413).
    max_seconds: duration limit of a recording after decoding, seconds (413).
    api_key: required in the X-API-Key header on everything but /healthz (None:
      no key).
    cors_origins: origins allowed by CORS (empty: CORS off).
    results_kept: scorings kept for /v1/report (oldest removed first).
    start_timeout_s: time a worker may take to load and warm up, seconds.
    on_start_failure: called in the event loop when the workers cannot start (the
      command stops uvicorn with it); None: /healthz keeps answering 503.
  """
  scorer: scorer_lib.ScorerSpec
  state_dir: str = dataclasses.field(default_factory=default_state_dir)
  workers: int = 1
  queue_size: int = 32
  timeout_s: float = 120.0
  max_upload_bytes: int = 50 * 2**20
  max_seconds: float = 600.0
  api_key: str | None = None
  cors_origins: tuple[str, ...] = ()
  results_kept: int = 1000
  start_timeout_s: float = 900.0
  on_start_failure: Callable[[], None] | None = None


def _json_error(status: int, message: str, headers: dict | None = None, **extra):
  return JSONResponse({"detail": message, **extra}, status_code=status,
                      headers=headers or {})


class _Guard:
  """ASGI middleware: the API key (everything but /healthz) and the body limit.

  A body over the limit is refused from its Content-Length, or while it streams
  in (chunked uploads) by raising 413 out of `receive` into the form parser.
  """

  def __init__(self, app, *, api_key: str | None, max_bytes: int):
    self.app, self.api_key, self.max_bytes = app, api_key, max_bytes

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    if self.api_key and scope["path"] != "/healthz" and not hmac.compare_digest(
        headers.get(API_KEY_HEADER.lower(), "").encode(), self.api_key.encode()):
      return await _json_error(401, f"missing or wrong {API_KEY_HEADER} header")(
          scope, receive, send)
    too_large = (f"upload over the size limit of {self.max_bytes} bytes "
                 "(--max-upload-mb)")
    length = headers.get("content-length", "")
    if length.isdigit() and int(length) > self.max_bytes:
      return await _json_error(413, too_large, {"Connection": "close"})(
          scope, receive, send)
    seen = 0

    async def limited_receive():
      nonlocal seen
      message = await receive()
      if message["type"] == "http.request":
        seen += len(message.get("body", b""))
        if seen > self.max_bytes:
          raise HTTPException(413, too_large)
      return message

    return await self.app(scope, limited_receive, send)


def _prune(folder: str, keep: int) -> None:
  """Removes the oldest result files beyond `keep` scorings (2 files each)."""
  try:
    entries = sorted(os.scandir(folder), key=lambda e: e.stat().st_mtime)
  except FileNotFoundError:
    return
  for entry in entries[:max(0, len(entries) - 2 * keep)]:
    with contextlib.suppress(FileNotFoundError):
      os.remove(entry.path)


def create_app(settings: ServiceSettings):
  """The ASGI app (FastAPI wrapped in the API-key and size guard); module doc."""
  refs_dir = os.path.join(settings.state_dir, "references")
  results_dir = os.path.join(settings.state_dir, "results")
  tmp_root = os.path.join(settings.state_dir, "tmp")
  pool = pool_lib.WorkerPool(
      settings.scorer, workers=settings.workers, queue_size=settings.queue_size,
      timeout_s=settings.timeout_s, max_seconds=settings.max_seconds,
      start_timeout_s=settings.start_timeout_s)

  @contextlib.asynccontextmanager
  async def lifespan(_):
    shutil.rmtree(tmp_root, ignore_errors=True)  # uploads of a crashed run.
    for d in (refs_dir, results_dir, tmp_root):
      os.makedirs(d, exist_ok=True)
    log.info("asa-serve: %s, %d worker(s), queue %d, state %s",
             settings.scorer.describe(), settings.workers, settings.queue_size,
             settings.state_dir)
    starting = asyncio.create_task(pool.start())

    def started(task):
      if task.cancelled() or task.exception() is None:
        return
      log.error("asa-serve cannot start its workers: %s", task.exception())
      if settings.on_start_failure is not None:
        settings.on_start_failure()
    starting.add_done_callback(started)
    try:
      yield
    finally:
      starting.cancel()
      await pool.close()
      shutil.rmtree(tmp_root, ignore_errors=True)

  app = FastAPI(title="asa-serve", version="1",
                description="Singing assessment (asa-jax): score a performance "
                "against its reference.", lifespan=lifespan)
  app.state.pool = pool
  app.state.settings = settings

  @app.exception_handler(errors_lib.ServiceError)
  async def _service_error(_, e: errors_lib.ServiceError):
    extra = {"error_id": e.headers.pop("X-Error-Id")} if "X-Error-Id" in e.headers \
        else {}
    return _json_error(e.status, e.message, e.headers, **extra)

  @app.exception_handler(RequestValidationError)
  async def _bad_form(_, e: RequestValidationError):
    # 400, not FastAPI's 422: 422 means "not the same melody" here.
    problems = "; ".join(f"{'.'.join(str(x) for x in err.get('loc', ())[1:])}: "
                         f"{err.get('msg')}" for err in e.errors())
    return _json_error(400, f"bad form: {problems}")

  async def _save(upload: UploadFile, folder: str, field: str) -> tuple[str, str]:
    """Copies an upload to FOLDER/FIELD; returns (path, SHA-256 of its bytes)."""
    path, digest, size = os.path.join(folder, field), hashlib.sha256(), 0
    with open(path, "wb") as f:
      while chunk := await upload.read(1 << 20):
        digest.update(chunk)
        f.write(chunk)
        size += len(chunk)
    if not size:
      raise errors_lib.ServiceError(400, f"{field}: empty upload (0 bytes)")
    return path, digest.hexdigest()

  async def _run(request: Request, kind: str, payload: dict, job_id: str):
    """Submits a job and waits for it; a client that disconnects cancels it."""
    job = await pool.submit(job_id, kind, payload)
    loop = asyncio.get_running_loop()
    while not job.future.done():
      await asyncio.wait({job.future}, timeout=_DISCONNECT_POLL_S)
      if job.future.done():
        break
      if await request.is_disconnected():
        pool.cancel(job)
        raise errors_lib.ServiceError(499, "client disconnected")
      if loop.time() > job.deadline:
        pool.expire(job)  # a running job is stopped by its slot at the deadline.
    try:
      return job.future.result()
    except errors_lib.ServiceError as e:
      if e.status >= 500 and e.status != 503:
        e.headers["X-Error-Id"] = job_id
      raise

  def _reference_file(ref_id: str) -> str:
    try:
      return refcache.path_of(refs_dir, ref_id)
    except ValueError as e:
      raise errors_lib.ServiceError(400, str(e)) from None

  def _require_ready():
    if not pool.ready:
      raise errors_lib.ServiceError(503, "the service is warming up",
                                    {"Retry-After": "10"})

  @app.get("/healthz", summary="Ready once every worker has loaded and warmed up")
  async def healthz():
    if pool.failure:
      return _json_error(503, f"failed: {pool.failure}")
    if not pool.ready:
      return _json_error(503, "starting", {"Retry-After": "10"})
    return {"status": "ready", "system": pool.info.get("system"),
            "workers": len(pool.worker_pids()), "queued": pool.queued()}

  @app.post("/v1/references", summary="Upload a reference once; returns its id")
  async def add_reference(request: Request, reference: UploadFile = File(
      ..., description="the original singer's vocal (any audio format)")):
    _require_ready()
    job_id = uuid.uuid4().hex
    folder = tempfile.mkdtemp(dir=tmp_root)
    try:
      path, digest = await _save(reference, folder, "reference")
      ref_id = refcache.reference_id(digest, pool.info["fingerprint"])
      cache_file = _reference_file(ref_id)
      cached = os.path.exists(cache_file)
      out = await _run(request, "reference", {"cache_file": cache_file,
                                              "upload": path}, job_id)
      return {"reference_id": ref_id, "cached": cached, **out}
    finally:
      shutil.rmtree(folder, ignore_errors=True)

  @app.post("/v1/score", summary="Score a performance against a reference",
            description="Form: file `performance`, and file `reference` or field "
            "`reference_id`. Answers the JSON of `asa-score --json`; the header "
            "X-Score-Id names its report (GET /v1/report/{id}).")
  async def score(request: Request,
                  performance: UploadFile = File(..., description="the singer's "
                                                 "recording"),
                  reference: UploadFile | None = File(None, description="the "
                                                      "original vocal"),
                  reference_id: str | None = Form(None, description="id from "
                                                  "POST /v1/references")):
    _require_ready()
    if (reference is None) == (not reference_id):
      raise errors_lib.ServiceError(400, "give exactly one of the form fields "
                                    "`reference` (a file) and `reference_id`")
    job_id = uuid.uuid4().hex
    folder = tempfile.mkdtemp(dir=tmp_root)
    try:
      perf_path, _ = await _save(performance, folder, "performance")
      ref_path = None
      if reference is not None:
        ref_path, digest = await _save(reference, folder, "reference")
        reference_id = refcache.reference_id(digest, pool.info["fingerprint"])
      cache_file = _reference_file(reference_id)
      if ref_path is None and not os.path.exists(cache_file):
        raise errors_lib.ServiceError(404, "unknown reference_id (upload it with "
                                      "POST /v1/references)")
      out = await _run(request, "score", {
          "performance": perf_path, "cache_file": cache_file, "reference": ref_path,
          "result_base": os.path.join(results_dir, job_id)}, job_id)
      pool.counts["scored"] += 1
      if pool.counts["scored"] % 100 == 0:
        _prune(results_dir, settings.results_kept)
      return JSONResponse(out, headers={"X-Score-Id": job_id,
                                        "X-Reference-Id": reference_id})
    finally:
      shutil.rmtree(folder, ignore_errors=True)

  @app.get("/v1/report/{score_id}", response_class=HTMLResponse,
           summary="The HTML report of a scoring (X-Score-Id)")
  async def report(request: Request, score_id: str):
    _require_ready()
    if not _RESULT_ID.match(score_id) or not os.path.exists(
        os.path.join(results_dir, score_id + ".json")):
      raise errors_lib.ServiceError(404, "unknown score id")
    html = await _run(request, "report", {
        "result_base": os.path.join(results_dir, score_id)}, uuid.uuid4().hex)
    return HTMLResponse(html)

  @app.get("/", response_class=HTMLResponse, include_in_schema=False)
  async def page():
    return HTMLResponse(importlib.resources.files(__package__).joinpath(
        "static/index.html").read_text(encoding="utf-8"))

  if settings.cors_origins:
    from fastapi.middleware.cors import CORSMiddleware  # pylint: disable=g-import-not-at-top
    app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                       allow_methods=["GET", "POST"],
                       allow_headers=[API_KEY_HEADER],
                       expose_headers=["X-Score-Id", "X-Reference-Id"])
  guarded = _Guard(app, api_key=settings.api_key,
                   max_bytes=settings.max_upload_bytes)
  guarded.fastapi = app  # the FastAPI object (state, OpenAPI) behind the guard.
  return guarded


__all__ = ["API_KEY_HEADER", "ServiceSettings", "create_app", "default_state_dir"]
