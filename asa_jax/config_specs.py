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
