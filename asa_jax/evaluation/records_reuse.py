"""When evaluation reuses feature records, and where it builds its own.

A learned system's training records are reused when they hold exactly what is
evaluated (`training_records_for`); otherwise the evaluation builds records under its
output folder, one folder per feature setting (`records_dir_for`).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence


def records_dir_for(config, output_dir: str) -> str:
  """The shared evaluation records folder of a config's feature settings.

  output_dir/records_<data.reference> when it is new or was built with the same
  settings (`input_pipeline.records.build_fingerprint`, which ignores
  features.channels, so all channel ablations share it); otherwise
  output_dir/records_<reference>_<8 hex of the settings' hash>.
  """
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  fp = json.loads(json.dumps(records_lib.build_fingerprint(config), sort_keys=True))
  base = os.path.join(output_dir, f"records_{config.data.reference}")
  path = os.path.join(base, "build_config.json")
  if not os.path.exists(path):
    return base
  with open(path, encoding="utf-8") as f:
    if json.load(f) == fp:
      return base
  digest = hashlib.sha1(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:8]
  return f"{base}_{digest}"


def training_records_for(config, workdir: str, manifest_path: str,
                         rows: Sequence) -> str | None:
  """The system's training records folder, when it already holds what is evaluated.

  Reused when all hold: the folder (config.data.records_dir, else workdir/records)
  was built with the same feature settings (`build_config.json` ==
  `input_pipeline.records.build_fingerprint(config)`), from the same manifest file
  with the same bytes (`build_report.json`'s manifest path and SHA-256), and every
  evaluated performance is complete there or was skipped by that build.

  Args:
    config: the system's config.
    workdir: its training workdir.
    manifest_path: the evaluated manifest CSV.
    rows: the evaluated manifest rows (input_pipeline.manifest rows).

  Returns:
    The folder, or None (then evaluation builds its own records).
  """
  from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
  folder = os.path.abspath(config.data.records_dir or os.path.join(workdir, "records"))
  try:
    with open(os.path.join(folder, "build_config.json"), encoding="utf-8") as f:
      built_with = json.load(f)
    with open(os.path.join(folder, "build_report.json"), encoding="utf-8") as f:
      build = json.load(f)
  except (OSError, ValueError):
    return None
  if built_with != json.loads(json.dumps(records_lib.build_fingerprint(config))):
    return None
  if (build.get("manifest") != os.path.abspath(manifest_path) or
      build.get("manifest_sha256") != records_lib.file_sha256(manifest_path)):
    return None
  skipped = {item["performance_id"] for item in build.get("skipped", [])}
  complete = records_lib.complete_performances(folder)  # performance_id -> split
  for row in rows:
    if row.performance_id in skipped:
      continue
    if complete.get(row.performance_id) != row.split:
      return None
  return folder
