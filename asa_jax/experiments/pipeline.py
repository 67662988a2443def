"""The Table 2 experiment as functions: plan, train (subprocesses), evaluate, resume.

`asa_jax.experiments.table2` is the command line; `eval.py --suite` uses
`load_suite` and `plan_jobs` to evaluate what it trained. See table2.py for the
commands each system gets and the resume rules.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import shlex
import subprocess
import sys
from typing import Callable, Sequence

from asa_jax import atomic
from asa_jax import config_specs as specs
from asa_jax import systems

DONE = "DONE"
TRAIN_LOG = "train.log"


@dataclasses.dataclass(frozen=True)
class Job:
  """One learned system of the suite.

  Attributes:
    name: row name and workdir name.
    spec: config spec, e.g. "configs/rori.py:demo,ablation_spec".
    overrides: `dotted.key=value` overrides (train.py --config.* flags and the
      evaluation config).
    workdir: ROOT/name.
    error: why the spec does not load (None when it does); such a job fails
      without running.
  """
  name: str
  spec: str
  overrides: tuple[str, ...]
  workdir: str
  error: str | None = None


def load_suite(suite: str):
  """configs/table2.py:SUITE (a bare name) or a `PATH:ARG` spec -> suite ConfigDict."""
  if ".py" not in suite:
    suite = f"configs/table2.py:{suite}"
  return specs.load_config(suite)


def plan_jobs(suite, root: str, manifest: str,
              extra_overrides: Sequence[str] = ()) -> list[Job]:
  """The suite's learned systems as training jobs (suite order).

  Records are shared per data.reference: data.records_dir = ROOT/records_<ref>.
  Then each system's own `suite_overrides` (EmbDirect: embdirect.rori_workdir =
  ROOT/rori and embdirect.rori_config = the suite's rori spec). `extra_overrides` come last (they win).

  A spec that does not load (missing file, bad variant) gives a Job with `error`.
  """
  root = os.path.abspath(root)
  jobs = []
  for name, spec in suite.systems:
    try:
      config = specs.load_config(spec)
    except Exception as e:  # pylint: disable=broad-except
      jobs.append(Job(name, spec, (), os.path.join(root, name),
                      f"config {spec} does not load: {type(e).__name__}: {e}"))
      continue
    overrides = [f"data.manifest={os.path.abspath(manifest)}",
                 f"data.records_dir={os.path.join(root, 'records_' + config.data.reference)}"]
    overrides += systems.get(config).suite_overrides(root, suite)
    overrides += list(extra_overrides)
    jobs.append(Job(name, spec, tuple(overrides), os.path.join(root, name)))
  return jobs


def is_done(job: Job) -> bool:
  """Whether the job's DONE marker exists."""
  return os.path.isfile(os.path.join(job.workdir, DONE))


def train_command(job: Job, base: Sequence[str]) -> list[str]:
  """The argv that trains `job`: base + --config, --workdir, --config.KEY=VALUE."""
  return [*base, f"--config={job.spec}", f"--workdir={job.workdir}",
          *[f"--config.{o}" for o in job.overrides]]


def train_job(job: Job, base: Sequence[str], *, log: Callable[[str], None] = print
              ) -> tuple[bool, str]:
  """Runs one training subprocess (cwd = repository root), output appended to
  workdir/train.log; writes DONE when it exits 0.

  Returns:
    (ok, message).
  """
  os.makedirs(job.workdir, exist_ok=True)
  argv = train_command(job, base)
  log_path = os.path.join(job.workdir, TRAIN_LOG)
  started = datetime.datetime.now().isoformat(timespec="seconds")
  log(f"[{job.name}] training: {shlex.join(argv)} (log: {log_path})")
  with open(log_path, "a", encoding="utf-8") as f:
    f.write(f"\n=== {started} {shlex.join(argv)}\n")
    f.flush()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
      rc = subprocess.run(argv, cwd=specs.REPO_ROOT, stdout=f,
                          stderr=subprocess.STDOUT, env=env, check=False).returncode
    except OSError as e:
      return False, f"could not start {argv[0]!r}: {e}"
  if rc != 0:
    return False, f"train.py exited with status {rc}; see {log_path}"
  atomic.write_text(os.path.join(job.workdir, DONE), json.dumps({
      "spec": job.spec, "overrides": list(job.overrides), "started": started,
      "finished": datetime.datetime.now().isoformat(timespec="seconds")},
      indent=2) + "\n")
  return True, "trained"


def train_all(jobs: Sequence[Job], base: Sequence[str], *,
              log: Callable[[str], None] = print) -> dict[str, str]:
  """Trains the jobs in order, skipping DONE ones; a failure does not stop the rest.

  EmbDirect jobs (an embdirect.rori_workdir override) wait for that Rori workdir's
  DONE marker: without it they are skipped as failed.

  Returns:
    name -> status: "done (skipped)", "trained", or "failed: <reason>".
  """
  status = {}
  for job in jobs:
    if is_done(job):
      status[job.name] = "done (skipped)"
      log(f"[{job.name}] DONE already ({os.path.join(job.workdir, DONE)}); skipped")
      continue
    if job.error:
      status[job.name] = f"failed: {job.error}"
      log(f"[{job.name}] {status[job.name]}")
      continue
    needs = [o.split("=", 1)[1] for o in job.overrides
             if o.startswith("embdirect.rori_workdir=")]
    if needs and not os.path.isfile(os.path.join(needs[-1], DONE)):
      status[job.name] = f"failed: needs a trained Rori in {needs[-1]} (no DONE)"
      log(f"[{job.name}] {status[job.name]}")
      continue
    ok, message = train_job(job, base, log=log)
    status[job.name] = message if ok else f"failed: {message}"
    log(f"[{job.name}] {status[job.name]}")
  return status


def job_systems(jobs: Sequence[Job], *, require_done: bool) -> tuple[list, dict]:
  """The jobs as `run.LearnedSystem`s to evaluate, and the ones left out with why.

  Args:
    jobs: `plan_jobs` output.
    require_done: leave out jobs without their DONE marker (not trained).

  Returns:
    (learned systems in job order, {name: reason}) for jobs whose spec has an error,
    that are not done (when required), or whose config does not load.
  """
  from asa_jax.evaluation import run  # pylint: disable=g-import-not-at-top
  learned, left_out = [], {}
  for job in jobs:
    if job.error:
      left_out[job.name] = job.error
      continue
    if require_done and not is_done(job):
      left_out[job.name] = f"not trained (no {os.path.join(job.workdir, DONE)})"
      continue
    try:
      config = specs.load_config(job.spec, job.overrides)
    except Exception as e:  # pylint: disable=broad-except
      left_out[job.name] = f"config {job.spec}: {type(e).__name__}: {e}"
      continue
    learned.append(run.LearnedSystem(job.name, config, job.workdir))
  return learned, left_out


def evaluate_jobs(jobs: Sequence[Job], suite, manifest: str, root: str,
                  baselines: Sequence[str], *, bootstrap_samples: int | None = None,
                  log: Callable[[str], None] = print) -> dict:
  """Evaluates the DONE jobs and the baselines into ROOT/eval (evaluate_systems).

  Jobs without DONE are reported as not evaluated. Returns evaluate_systems' result
  with "failed" also holding the untrained jobs.
  """
  from asa_jax.evaluation import run  # pylint: disable=g-import-not-at-top
  learned, untrained = job_systems(jobs, require_done=True)
  result = run.evaluate_systems(
      learned, list(baselines), manifest, os.path.join(root, "eval"), suite.split,
      figure6_system=suite.figure6_system, figure7_rows=tuple(suite.figure7_rows),
      bootstrap_samples=bootstrap_samples,
      crepe_capacity=suite.baseline_crepe_capacity, skipped=untrained, log=log)
  return result


def run_suite(suite, manifest: str, root: str, *, only: Sequence[str] | None = None,
              baselines: str | Sequence[str] | None = None,
              skip_training: bool = False, skip_eval: bool = False,
              extra_overrides: Sequence[str] = (),
              train_base: Sequence[str] | None = None,
              bootstrap_samples: int | None = None,
              log: Callable[[str], None] = print) -> int:
  """Trains (unless skip_training) and evaluates (unless skip_eval) a suite.

  Returns:
    0 when every selected system trained and every system and baseline was
    evaluated, 1 otherwise. Writes ROOT/summary.json.

  Raises:
    ValueError: --only names a system the suite does not have.
  """
  from asa_jax.evaluation import run  # pylint: disable=g-import-not-at-top
  root = os.path.abspath(root)
  os.makedirs(root, exist_ok=True)
  jobs = plan_jobs(suite, root, manifest, extra_overrides)
  if only:
    unknown = sorted(set(only) - {j.name for j in jobs})
    if unknown:
      raise ValueError(f"--only: unknown system(s) {unknown}; suite has "
                       f"{[j.name for j in jobs]}")
    jobs = [j for j in jobs if j.name in only]
  base = list(train_base or [sys.executable, "train.py"])
  training = {} if skip_training else train_all(jobs, base, log=log)
  baseline_names = run.resolve_baselines(
      tuple(suite.baselines) if baselines is None else baselines)
  failed: dict[str, str] = {n: s for n, s in training.items() if s.startswith("failed")}
  if not skip_eval:
    result = evaluate_jobs(jobs, suite, manifest, root, baseline_names,
                           bootstrap_samples=bootstrap_samples, log=log)
    failed.update(result["failed"])
  summary = {
      "suite": suite.suite, "manifest": os.path.abspath(manifest),
      "training": training,
      "evaluated": [] if skip_eval else [n for n in [*(j.name for j in jobs),
                                                     *baseline_names]
                                         if n not in failed],
      "failed": failed,
  }
  atomic.write_text(os.path.join(root, "summary.json"), json.dumps(summary, indent=2)
                + "\n")
  if failed:
    log(f"FAILED ({len(failed)}): " + "; ".join(f"{k}: {v}" for k, v in failed.items()))
  else:
    log(f"all systems done; outputs in {os.path.join(root, 'eval')}")
  return 1 if failed else 0
