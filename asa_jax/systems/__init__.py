"""The learned systems, looked up by config.system (one registry).

Every module of this package except `base` defines `SYSTEMS = {name: System}`: one
`base.System` per name, with its table metadata; `get(config)` returns it configured
with the config's hyperparameters (`System.configure`). A new system is one module
here plus one config file: nothing in the loop, state, steps or evaluation names a
system.

  base.py                    System, MarginSystem: what a system declares
  triplet.py                 rori, racc (paper 3.2.3)
  regression.py              direct (3.2.1), delta (3.2.2)
  embdirect.py               embdirect (3.2.4)
  hinge_rank.py              hinge_rank (Lee & Nam 2019: hinge rank loss, K negatives)
  siamese.py                 siamese (singer-embedding study: contrastive pairs)
  contrastive_regression.py  contrastive_regression (Seshadri & Lerch 2021)
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from asa_jax.systems.base import System


@functools.cache
def _registry() -> dict:
  out = {}
  for info in pkgutil.iter_modules(__path__):
    if info.name.startswith("_") or info.name == "base":
      continue
    module = importlib.import_module(f"{__name__}.{info.name}")
    for name, system in getattr(module, "SYSTEMS", {}).items():
      if name in out:
        raise ValueError(f"system {name!r} defined twice (asa_jax/systems/{info.name}.py)")
      out[name] = system
  return out


def names() -> tuple[str, ...]:
  """Every registered system name (config.system values), in Table 2 order."""
  return tuple(sorted(_registry(), key=lambda n: (_registry()[n].table_order, n)))


def registered() -> dict[str, System]:
  """name -> the registered (unconfigured) System: table metadata without a config."""
  return dict(_registry())


def get(config) -> System:
  """The System of config.system, with its hyperparameters from config.

  Raises:
    ValueError: config.system is not a registered system (names the known ones).
  """
  system = _registry().get(str(config.system))
  if system is None:
    raise ValueError(f"config.system={config.system!r} is not a learned system; use "
                     f"one of {names()}")
  return system.configure(config)


def build_model(config):
  """The Flax module of config.system (towers from config.model).

  Raises:
    ValueError: config.system is not a learned system.
  """
  return get(config).build_model(config)


__all__ = ["System", "build_model", "get", "names", "registered"]
