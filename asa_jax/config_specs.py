"""Config specs and overrides as strings, the way `--config=` flags name them.

A spec is `PATH[:ARG]`, e.g. "configs/rori.py:demo,ablation_spec": the file's
`get_config(ARG)` (or `get_config()` without ARG), exactly what
`ml_collections.config_flags.DEFINE_config_file` loads for `--config=PATH:ARG`. An
override is `dotted.key=value`, what `--config.dotted.key=value` sets; the value is
parsed to the type of the field it replaces.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from typing import Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def split_spec(spec: str) -> tuple[str, str | None]:
  """'configs/rori.py:demo' -> ('configs/rori.py', 'demo'); no ':' -> (spec, None)."""
  path, sep, arg = spec.partition(":")
  return path, (arg if sep else None)


def resolve_path(path: str) -> str:
  """A config file path as given (if it exists) else relative to the repository root.

  Raises:
    FileNotFoundError: found in neither place.
  """
  for candidate in (path, os.path.join(REPO_ROOT, path)):
    if os.path.isfile(candidate):
      return os.path.abspath(candidate)
  raise FileNotFoundError(f"config file {path!r} not found (also tried under "
                          f"{REPO_ROOT})")


def parse_value(text: str, current):
  """Parses an override's text to the type of the field's current value.

  bool: true/false/1/0 (any case); int; float; str: verbatim; tuple/list: a Python
  literal (e.g. "('spec', 'f0')"); None or other: a Python literal if it parses,
  else the text.

  Raises:
    ValueError: the text does not parse as the field's type.
  """
  if isinstance(current, bool):
    low = text.strip().lower()
    if low in ("true", "1", "yes"):
      return True
    if low in ("false", "0", "no"):
      return False
    raise ValueError(f"{text!r} is not a boolean")
  if isinstance(current, int):
    return int(text)
  if isinstance(current, float):
    return float(text)
  if isinstance(current, str):
    return text
  if isinstance(current, (tuple, list)):
    value = ast.literal_eval(text)
    return type(current)(value if isinstance(value, (tuple, list)) else (value,))
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def apply_override(config, override: str) -> None:
  """Sets one `dotted.key=value` override on `config` in place.

  Raises:
    ValueError: no '=' or the value does not parse.
    KeyError: the key is not a field of the config.
  """
  key, sep, text = override.partition("=")
  if not sep or not key.strip():
    raise ValueError(f"override {override!r} is not 'dotted.key=value'")
  *parents, leaf = key.strip().split(".")
  node = config
  for part in parents:
    if part not in node:
      raise KeyError(f"override {override!r}: no config field {key!r}")
    node = node[part]
  if leaf not in node:
    raise KeyError(f"override {override!r}: no config field {key!r}")
  node[leaf] = parse_value(text, node[leaf])


def load_config(spec: str, overrides: Sequence[str] = ()):
  """Loads a config spec ('configs/rori.py:demo') and applies overrides.

  Args:
    spec: `PATH[:ARG]`; PATH as given or relative to the repository root.
    overrides: `dotted.key=value` strings, applied in order.

  Returns:
    The ConfigDict (unlocked).

  Raises:
    FileNotFoundError: PATH not found (as given or under the repository root).
    ValueError: empty spec, PATH without get_config(), bad variant or override value.
    KeyError: an override names no config field.
  """
  if not spec:
    raise ValueError("empty config spec (expected e.g. 'configs/rori.py:demo')")
  path, arg = split_spec(spec)
  path = resolve_path(path)
  if REPO_ROOT not in sys.path:  # Config files import `configs.base`.
    sys.path.insert(0, REPO_ROOT)
  name = "_asa_config_" + hashlib.sha1(path.encode()).hexdigest()[:12]
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"{path} has no get_config()")
  config = module.get_config(arg) if arg is not None else module.get_config()
  for override in overrides:
    apply_override(config, override)
  return config


WORKDIR_CONFIG = "config.json"  # The run's config, written by train.py (process 0).


def save_workdir_config(config, workdir: str) -> str:
  """Writes `config` as WORKDIR/config.json (atomically); returns the path.

  `load_workdir_config` reads it back, so a trained workdir can be used (eval,
  `asa_jax.assess`) without naming its config again.
  """
  from asa_jax import atomic  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, WORKDIR_CONFIG)
  atomic.write_text(path, config.to_json(indent=1, sort_keys=True))
  return path


def _as_type_of(value, template):
  """JSON value -> the type of the base config's field (lists -> nested tuples)."""
  if isinstance(template, tuple) and isinstance(value, list):
    inner = template[0] if template else None
    return tuple(_as_type_of(v, inner) if isinstance(v, list) else v for v in value)
  return value


# Fields older versions wrote into config.json that no code reads any more.
RETIRED_FIELDS = frozenset({
    "data.loader_cache_records",  # The loader's LRU (removed with the Grain pipeline).
})


def load_workdir_config(workdir: str):
  """The config a run was trained with, from WORKDIR/config.json.

  Starts from configs/base.py (every field the code reads; configs/contour.py's
  for a contour system's run, which adds `contour`) and sets each stored field, so
  JSON lists become the tuples the code expects.

  Returns:
    The ConfigDict (unlocked).

  Raises:
    FileNotFoundError: WORKDIR/config.json missing (runs trained before it was
      written: pass the config spec instead).
    ValueError: the file is not valid JSON or holds a field configs/base.py lacks
      (other than the RETIRED_FIELDS, which are ignored).
  """
  import json  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, WORKDIR_CONFIG)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f"{path}: no stored config (runs trained before config.json was written: "
        "give the config spec, e.g. configs/rori.py:demo)")
  try:
    with open(path, encoding="utf-8") as f:
      stored = json.load(f)
  except ValueError as e:
    raise ValueError(f"{path}: not valid JSON: {e}") from e
  # The contour systems' config adds a `contour` section (configs/contour.py).
  base_file = "contour_rori.py" if "contour" in stored else "base.py"
  config = load_config(os.path.join(REPO_ROOT, "configs", base_file))

  def fill(node, values, prefix):
    for key, value in values.items():
      if f"{prefix}{key}" in RETIRED_FIELDS:
        continue
      if key not in node:
        raise ValueError(f"{path}: field {prefix}{key} is not in configs/base.py")
      if isinstance(value, dict):
        fill(node[key], value, f"{prefix}{key}.")
      else:
        node[key] = _as_type_of(value, node[key])

  fill(config, stored, "")
  return config
