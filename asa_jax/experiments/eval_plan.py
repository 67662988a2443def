"""What one eval.py run evaluates: learned systems, baselines, manifest and outputs.

eval.py's flags name learned systems as `[NAME=]SPEC@WORKDIR` (`--system`), with
per-system config overrides `NAME:KEY=VALUE` (`--system_override`), or a whole Table 2
suite trained by `python -m asa_jax.experiments.table2` (`--suite` + `--workdir_root`,
whose manifest, split, baselines and output folder are the defaults). `plan` turns
them into an `EvalPlan`; `execute` runs it (`run.evaluate_systems`). Paper 4.1 / Table 2.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Sequence

from asa_jax.evaluation import report
from asa_jax.evaluation import run
from asa_jax.experiments import pipeline
from asa_jax import config_specs as specs


class PlanError(ValueError):
  """A malformed or inconsistent request (eval.py reports it as a usage error)."""


@dataclasses.dataclass
class EvalPlan:
  """One evaluation: the arguments of `run.evaluate_systems`.

  Attributes:
    learned: the learned systems, in table order.
    baselines: baseline names (asa_jax/baselines/names.py).
    manifest: manifest CSV path.
    output_dir: output folder.
    split: 'all' | 'train' | 'validation' | 'test'.
    options: further keyword arguments of `run.evaluate_systems` (skipped systems
      with their reasons, figure6_system, figure7_rows, crepe_capacity).
  """
  learned: list[run.LearnedSystem]
  baselines: list[str]
  manifest: str
  output_dir: str
  split: str
  options: dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_overrides(texts: Sequence[str]) -> dict[str, list[str]]:
  """['NAME:KEY=VALUE', ...] -> {NAME: ['KEY=VALUE', ...]} (order kept).

  Raises:
    PlanError: an entry without ':'.
  """
  out: dict[str, list[str]] = {}
  for text in texts:
    name, sep, override = text.partition(":")
    if not sep or not name:
      raise PlanError(f"--system_override={text}: expected NAME:KEY=VALUE")
    out.setdefault(name, []).append(override)
  return out


def parse_system(text: str, overrides: dict[str, list[str]]) -> run.LearnedSystem:
  """'[NAME=]SPEC@WORKDIR' -> LearnedSystem; pops and applies NAME's overrides.

  NAME defaults to config.name or config.system. WORKDIR is what follows the last
  '@' (a spec may contain '=' after the first one, e.g. in variant words).

  Raises:
    PlanError: not of the form [NAME=]SPEC@WORKDIR.
    FileNotFoundError, ValueError, KeyError: the spec or an override does not load
      (`specs.load_config`, `specs.apply_override`).
  """
  left, sep, workdir = text.rpartition("@")
  if not sep or not left or not workdir:
    raise PlanError(f"--system={text}: expected [NAME=]SPEC@WORKDIR")
  name, eq, spec = left.partition("=")
  if not eq:
    name, spec = "", left
  config = specs.load_config(spec)
  name = name or report.system_name(config)
  for override in overrides.pop(name, []):
    specs.apply_override(config, override)
  return run.LearnedSystem(name, config, workdir)


def plan(*, systems: Sequence[str] = (), system_overrides: Sequence[str] = (),
         suite: str | None = None, workdir_root: str | None = None,
         baselines: str | Sequence[str] | None = None, manifest: str | None = None,
         output_dir: str | None = None, split: str | None = None) -> EvalPlan:
  """Plans an evaluation from eval.py's flags (None = not given).

  Args:
    systems: `[NAME=]SPEC@WORKDIR` texts.
    system_overrides: `NAME:KEY=VALUE` texts; NAME must be one of `systems`.
    suite: a Table 2 suite (configs/table2.py: demo | ssvd | paper, or a spec);
      adds its systems under workdir_root (a system whose config does not load is
      listed in options["skipped"]) and supplies defaults for the other arguments.
    workdir_root: the suite's root (required with suite).
    baselines: 'all' | 'none' | names (default none; with a suite, the suite's).
    manifest, output_dir: required unless a suite supplies them (output_dir
      defaults to WORKDIR_ROOT/eval).
    split: default 'all' (with a suite, the suite's).

  Raises:
    PlanError: malformed texts, a suite without workdir_root, an override of an
      unknown system, or no manifest / output folder.
    FileNotFoundError, ValueError, KeyError: a --system spec or override does not load.
  """
  overrides = parse_overrides(system_overrides)
  learned = [parse_system(text, overrides) for text in systems]
  if overrides:
    raise PlanError(f"--system_override for unknown system(s): {list(overrides)}")
  options: dict[str, Any] = {}
  if suite:
    if not workdir_root:
      raise PlanError("--suite needs --workdir_root")
    s = pipeline.load_suite(suite)
    manifest = manifest or s.manifest
    output_dir = output_dir or os.path.join(workdir_root, "eval")
    split = split or s.split
    baselines = tuple(s.baselines) if baselines is None else baselines
    jobs = pipeline.plan_jobs(s, workdir_root, manifest)
    more, skipped = pipeline.job_systems(jobs, require_done=False)
    learned += more
    if skipped:
      options["skipped"] = skipped
    options.update(figure6_system=s.figure6_system, figure7_rows=tuple(s.figure7_rows),
                   crepe_capacity=s.baseline_crepe_capacity)
  if not manifest or not output_dir:
    raise PlanError("--manifest and --output_dir are required")
  return EvalPlan(learned, run.resolve_baselines(baselines or ""), manifest,
                  output_dir, split or "all", options)


def execute(p: EvalPlan, *, bootstrap_samples: int | None = None,
            log: Callable[[str], None] = print) -> dict:
  """Runs the plan (`run.evaluate_systems`); returns its result ("failed" lists the
  systems and baselines that could not be evaluated)."""
  return run.evaluate_systems(p.learned, p.baselines, p.manifest, p.output_dir, p.split,
                              bootstrap_samples=bootstrap_samples, log=log, **p.options)
