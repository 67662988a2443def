"""Which Assessor the service serves: one small function, `load_assessor`.

The scorer is named by a `ScorerSpec` (picklable: each worker process loads its own
Assessor from it). `--workdir DIR` serves a trained run, `--baseline NAME
--calibration FILE` a rule-based baseline, and no flag the shipped default scorer
(`Assessor.default()`, issue 19).
"""

from __future__ import annotations

import dataclasses
import importlib

class ScorerUnavailable(RuntimeError):
  """The spec names no loadable scorer (the message says why)."""


@dataclasses.dataclass(frozen=True)
class ScorerSpec:
  """What to serve.

  Attributes:
    workdir: a trained run (`Assessor.from_workdir`), or None.
    config: its config spec when the workdir has no config.json, or None.
    baseline: a rule-based baseline name (`Assessor.from_baseline`), or None.
    calibration: the baseline's calibration JSON path.
    factory: "module:function" returning an Assessor (Python API only, e.g. tests
      that serve a scorer of their own), or None.
  """
  workdir: str | None = None
  config: str | None = None
  baseline: str | None = None
  calibration: str | None = None
  factory: str | None = None

  def describe(self) -> str:
    """One line naming the scorer, for logs."""
    if self.workdir:
      return f"workdir {self.workdir}"
    if self.baseline:
      return f"baseline {self.baseline} (calibration {self.calibration})"
    if self.factory:
      return f"factory {self.factory}"
    return "the default scorer"


def load_assessor(spec: ScorerSpec):
  """The Assessor that `spec` names (JAX is imported here, in the worker).

  Raises:
    ScorerUnavailable: --baseline without --calibration, a bad factory, or the
      scorer cannot be loaded (no workdir, checkpoint, stats, config or
      calibration; unknown baseline; a missing or mismatched default scorer).
  """
  from asa_jax.assess import Assessor, DefaultScorerError  # pylint: disable=g-import-not-at-top
  try:
    if spec.workdir:
      return Assessor.from_workdir(spec.workdir, config=spec.config)
    if spec.baseline:
      if not spec.calibration:
        raise ScorerUnavailable("--baseline needs --calibration")
      return Assessor.from_baseline(spec.baseline, calibration=spec.calibration)
    if spec.factory:
      module, _, name = spec.factory.partition(":")
      return getattr(importlib.import_module(module), name)()
    return Assessor.default()
  except (FileNotFoundError, ValueError, KeyError, ImportError, AttributeError,
          DefaultScorerError) as e:
    raise ScorerUnavailable(f"cannot load {spec.describe()}: {e}") from e
