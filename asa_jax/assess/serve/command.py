"""`asa-serve`: the scoring service (FastAPI on uvicorn), one process per worker.

  asa-serve                                   # the shipped default scorer
  asa-serve --workdir=runs/demo [--port=8000] [--workers=2]
  asa-serve --baseline=dtw_melody --calibration=cal.json

Binds 127.0.0.1:8000 unless --host/--port say otherwise. The API key is
--api-key or $ASA_API_KEY (header X-API-Key on everything but /healthz). CORS is off
unless --cors-origin is given.

Exit codes: 0 stopped; 2 bad usage; 3 the scorer cannot be loaded (a bad workdir
or baseline, a missing or mismatched default scorer).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from asa_jax.assess.serve import scorer as scorer_lib

EXIT_OK, EXIT_USAGE, EXIT_SCORER = 0, 2, 3


def _parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="asa-serve", description="Serve singing "
                              "assessment over HTTP (API under /v1, a page at /).")
  which = p.add_argument_group("scorer (default: the shipped default scorer)")
  which.add_argument("--workdir", help="a trained run (as asa-score --workdir)")
  which.add_argument("--config", help="config spec of a workdir without config.json")
  which.add_argument("--baseline", help="a rule-based baseline name (needs "
                     "--calibration)")
  which.add_argument("--calibration", help="calibration JSON of --baseline")
  p.add_argument("--host", default="127.0.0.1", help="address to bind (default "
                 "127.0.0.1)")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--workers", type=int, default=1, help="scoring processes")
  p.add_argument("--queue", type=int, default=32, help="requests that may wait for "
                 "a worker; more are answered 503 with Retry-After")
  p.add_argument("--timeout", type=float, default=120.0, help="time limit of a "
                 "request in seconds, queue time included (504 past it)")
  p.add_argument("--max-upload-mb", type=float, default=50.0, help="request body "
                 "limit (413)")
  p.add_argument("--max-seconds", type=float, default=600.0, help="duration limit "
                 "of a recording (413)")
  p.add_argument("--state-dir", help="reference cache and kept results (default "
                 "$ASA_JAX_CACHE_DIR/serve or ~/.cache/asa-jax/serve)")
  p.add_argument("--api-key", default=os.environ.get("ASA_API_KEY"),
                 help="require this X-API-Key (default $ASA_API_KEY; none: open)")
  p.add_argument("--cors-origin", action="append", default=[],
                 help="allow this origin by CORS (repeatable; default CORS off)")
  return p


def scorer_spec(args: argparse.Namespace) -> scorer_lib.ScorerSpec:
  """The ScorerSpec of the flags (no flag: the shipped default scorer).

  Raises:
    ValueError: --workdir with --baseline, or --baseline without --calibration.
  """
  if args.workdir and args.baseline:
    raise ValueError("give at most one of --workdir and --baseline")
  if args.baseline and not args.calibration:
    raise ValueError("--baseline needs --calibration")
  return scorer_lib.ScorerSpec(workdir=args.workdir, config=args.config,
                               baseline=args.baseline, calibration=args.calibration)


def main(argv: Sequence[str] | None = None) -> int:
  """Entry point of `asa-serve` (console script); returns the exit code."""
  parser = _parser()
  args = parser.parse_args(argv)
  try:
    spec = scorer_spec(args)
  except ValueError as e:
    parser.error(str(e))
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s "
                      "%(levelname)s %(message)s")
  import uvicorn  # pylint: disable=g-import-not-at-top
  from asa_jax.assess.serve import app as app_lib  # pylint: disable=g-import-not-at-top
  settings = app_lib.ServiceSettings(
      scorer=spec, workers=args.workers, queue_size=args.queue,
      timeout_s=args.timeout, max_upload_bytes=int(args.max_upload_mb * 2**20),
      max_seconds=args.max_seconds, api_key=args.api_key or None,
      cors_origins=tuple(args.cors_origin), on_start_failure=lambda: stop(),
      **({"state_dir": args.state_dir} if args.state_dir else {}))
  app = app_lib.create_app(settings)
  # log_config=None: uvicorn's loggers go to the root handler above (one format).
  server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port,
                                         log_config=None, timeout_graceful_shutdown=10))

  def stop():
    # Not a SIGTERM to ourselves: uvicorn re-raises a captured signal on exit, and
    # the process would end by it instead of returning EXIT_SCORER.
    server.should_exit = True
  server.run()
  if app.fastapi.state.pool.failure:
    print(f"asa-serve: {app.fastapi.state.pool.failure}", file=sys.stderr)
    return EXIT_SCORER
  return EXIT_OK


if __name__ == "__main__":
  sys.exit(main())
