"""`asa-serve`: the Assessor behind an HTTP service with a browser page (issue 21).

  scorer.py     which Assessor the service serves (--workdir, --baseline, default).
  (asa_jax.assess.refcache: references' audio and contours on disk, by content hash.)
  worker.py     a scoring worker process: loads the Assessor once, runs jobs.
  pool.py       the bounded queue in front of the fixed set of worker processes.
  http_errors.py exception -> HTTP status and message (400, 413, 422, 500).
  app.py        the FastAPI app: /healthz, /v1/references, /v1/score,
                /v1/report/{id}, GET / (static/index.html).
  command.py    the `asa-serve` command (uvicorn).

Importing this package loads neither JAX nor FastAPI; the worker processes load the
Assessor.
"""
