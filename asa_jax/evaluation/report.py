"""Evaluation outputs: scores.csv, pearson.json and a Table 2-shaped table.md, and the
Table 2 naming: row names, groups, "Reference Used" labels and the paper's row order.

Every function takes a mapping system -> results, so one run can report several
systems side by side like the paper's Table 2 (rows = systems, columns = songs + Mix).
Files are written atomically (temporary file in the same folder, then os.replace), so
an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import csv
import io
import json
import os
from typing import Iterable, Mapping, Sequence

from asa_jax import ablations
from asa_jax import atomic
from asa_jax import systems
from asa_jax.baselines import names as baseline_names
from asa_jax.evaluation import pearson as pearson_lib

SCORES_COLUMNS = ("system", "song_id", "performance_id", "predicted", "human")
MIX_COLUMN = "Mix"
UNDEFINED = "-"
META_KEY = "_meta"
# Table 2's row groups, in the paper's order (+ our ablation rows, paper 4.5).
GROUP_ORDER = ("Baseline", "Proposed", "Ablation", "Histogram", "DTWDist", "Other")
REFERENCE_LABELS = {"original": "Original Track", "accompaniment": "Accompaniment Track"}
# Row order inside a Table 2 group: the paper's order, then anything else.
PAPER_ORDER = (*systems.names(), *ablations.FIGURE7_ROWS,
               *baseline_names.HISTOGRAM, *baseline_names.DTW)
# Table 2's "Configuration" labels (paper names; our ablation and DTW rows named after
# paper 4.5 / 4.2.2); other systems are shown by their own name.
DISPLAY_NAMES = {
    **{name: s.paper_name for name, s in systems.registered().items()},
    **ablations.DISPLAY_NAMES, **baseline_names.DISPLAY_NAMES,
}


def scores_csv_text(scores_by_system: Mapping[str, Iterable]) -> str:
  """CSV text with columns system, song_id, performance_id, predicted, human.

  Args:
    scores_by_system: system -> performance scores, each unpacking as (song_id,
      performance_id, predicted, human); human None is written as an empty cell.

  Returns:
    The CSV text (header + one row per performance; floats in full precision).
  """
  buf = io.StringIO()
  writer = csv.writer(buf, lineterminator="\n")
  writer.writerow(SCORES_COLUMNS)
  for system, scores in scores_by_system.items():
    for song_id, performance_id, predicted, human in scores:
      writer.writerow([system, song_id, performance_id, repr(float(predicted)),
                       "" if human is None else repr(float(human))])
  return buf.getvalue()


def write_scores_csv(path: str | os.PathLike,
                     scores_by_system: Mapping[str, Iterable]) -> None:
  """Writes `scores_csv_text(scores_by_system)` atomically to `path`."""
  atomic.write_text(path, scores_csv_text(scores_by_system))


def _cell_float(value: str | None, *, none=("",)) -> float | None:
  value = (value or "").strip()
  return None if value in none else float(value)


def read_scores_csv(path: str | os.PathLike) -> list[dict]:
  """The rows of a scores.csv (`write_scores_csv`), file order.

  Returns:
    One dict per row: system, song_id, performance_id (str), predicted (float; None
    for an empty cell), human (float; None for an empty, 'None' or 'nan' cell).

  Raises:
    FileNotFoundError: no such file.
    ValueError: not an eval.py scores.csv (a column is missing; names the file).
  """
  path = os.fspath(path)
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    need = {"system", "performance_id", "predicted", "human"}
    if not need <= set(reader.fieldnames or []):
      raise ValueError(f"{path}: not an eval.py scores.csv (needs {sorted(need)})")
    return [dict(system=row["system"], song_id=row.get("song_id") or "",
                 performance_id=row["performance_id"],
                 predicted=_cell_float(row["predicted"]),
                 human=_cell_float(row["human"], none=("", "None", "nan")))
            for row in reader]


def pearson_json(correlations_by_system: Mapping[str, Mapping],
                 meta: Mapping | None = None) -> dict:
  """The pearson.json document.

  Args:
    correlations_by_system: system -> `pearson.correlate(...)` result.
    meta: optional run information stored under the key "_meta" (keys starting with
      "_" are never system names): bootstrap settings, inter-judge agreement,
      failed systems.

  Returns:
    {"<system>": {"per_song": {"<song_id>": {"r": float|None, "n": int,
                                             "ci95": [lo, hi]|None}},
                  "mix": {"r", "n", "ci95"}}, ..., "_meta": {...}}
  """
  doc = {
      system: {
          "per_song": {song: corr.to_json()
                       for song, corr in result["per_song"].items()},
          "mix": result[pearson_lib.MIX].to_json(),
      }
      for system, result in correlations_by_system.items()
  }
  if meta is not None:
    doc[META_KEY] = dict(meta)
  return doc


def write_pearson_json(path: str | os.PathLike,
                       correlations_by_system: Mapping[str, Mapping],
                       meta: Mapping | None = None) -> None:
  """Writes `pearson_json(...)` atomically to `path` (null for undefined r / CI)."""
  atomic.write_text(path, json.dumps(pearson_json(correlations_by_system, meta),
                                     indent=2, allow_nan=False) + "\n")


def _cell(corr) -> str:
  if corr is None or corr.r is None:
    return UNDEFINED
  text = f"{corr.r:.3f}"
  if corr.ci is not None and corr.ci.low is not None:
    text += f" [{corr.ci.low:.2f}, {corr.ci.high:.2f}]"
  return text


def order_systems(systems: Sequence[str], groups: Mapping[str, str]) -> list[str]:
  """Systems sorted by GROUP_ORDER of their group (stable: input order within one)."""
  rank = {g: i for i, g in enumerate(GROUP_ORDER)}
  return sorted(systems, key=lambda s: rank.get(groups.get(s, "Other"),
                                                len(GROUP_ORDER)))


def format_table(correlations_by_system: Mapping[str, Mapping],
                 references: Mapping[str, str] | None = None,
                 groups: Mapping[str, str] | None = None) -> str:
  """Markdown table shaped like the paper's Table 2.

  Args:
    correlations_by_system: system -> `pearson.correlate(...)` result.
    references: system -> "Reference Used" label (e.g. "Original Track"); missing
      systems get "None".
    groups: system -> Table 2 group ("Baseline", "Proposed", "Ablation",
      "Histogram", "DTWDist"); rows are ordered by GROUP_ORDER, input order within a
      group; missing systems are "Other".

  Returns:
    Markdown: header `| Group | System | Reference Used | <songs...> | Mix |`, one row
    per system (labelled with DISPLAY_NAMES, the paper's names), r with 3 decimals
    followed by the bootstrap 95% CI `[lo, hi]` when
    computed, '-' where r is undefined or the system has no performance of that
    song. Songs are the union over systems, natural order.
  """
  references = references or {}
  groups = groups or {}
  songs = sorted({song for result in correlations_by_system.values()
                  for song in result["per_song"]}, key=pearson_lib.natural_key)
  header = ["Group", "System", "Reference Used", *songs, MIX_COLUMN]
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---", "---", "---"] + ["---:"] * (len(songs) + 1)) + "|"]
  for system in order_systems(list(correlations_by_system), groups):
    result = correlations_by_system[system]
    cells = [groups.get(system, "Other"), DISPLAY_NAMES.get(system, system),
             references.get(system, "None")]
    cells += [_cell(result["per_song"].get(song)) for song in songs]
    cells.append(_cell(result[pearson_lib.MIX]))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def write_table_md(path: str | os.PathLike, correlations_by_system: Mapping[str, Mapping],
                   references: Mapping[str, str] | None = None,
                   groups: Mapping[str, str] | None = None, *,
                   notes: Sequence[str] = ()) -> str:
  """Writes the Table 2-shaped markdown, a caption and `notes` (paragraphs below it,
  e.g. the inter-judge agreement and failed systems); returns the table."""
  table = format_table(correlations_by_system, references, groups)
  caption = ("\nPearson's r between human scores and system scores per song and for "
             "all songs pooled (Mix), as in Table 2 of Zhang et al. (ISMIR 2021), "
             "with the 95% bootstrap confidence interval in brackets (percentile "
             "method, performances resampled within the song, or over all songs for "
             f"Mix); '{UNDEFINED}' = undefined (n < 3 or constant scores; n in "
             "pearson.json).\n")
  text = table + caption + "".join(f"\n{note}\n" for note in notes if note)
  atomic.write_text(path, text)
  return table


# --- Table 2 naming and order. ------------------------------------------------


def system_name(config) -> str:
  """Row label of a config: config.name when set, else config.system."""
  return str(config.name or config.system)


def table_group(name: str, group: str | None = None) -> str:
  """Table 2 group of a row: a learned system's own group (`System.group`: Baseline
  for Direct, Proposed for the others), Ablation (the channel-ablation Rori rows,
  paper 4.5), Histogram (paper 4.2.1), DTWDist (paper 4.2.2), else Other.

  Args:
    name: row name (config.name / baseline name).
    group: the learned system's `System.group`, None for baselines.
  """
  if name in ablations.FIGURE7_ROWS[:-1]:
    return "Ablation"
  if group is not None:
    return group
  if name in baseline_names.GROUPS:
    return baseline_names.GROUPS[name]
  return "DTWDist" if name.startswith("dtw") else "Other"


def baseline_labels() -> dict[str, str]:
  """name -> "Reference Used" of every baseline (asa_jax/baselines/names.py)."""
  return {**baseline_names.REFERENCE_USED, **baseline_names.MEASURED_REFERENCE_USED}


def reference_label(config) -> str:
  """Table 2's "Reference Used" cell for a config: Original / Accompaniment Track, or
  None for a system that scores without a reference (`System.reference`)."""
  reference = systems.get(config).reference
  if reference is None:
    return "None"
  return REFERENCE_LABELS.get(reference, str(reference))


def paper_rank(name: str) -> int:
  """Position of a row in the paper's Table 2 order (PAPER_ORDER); other rows last."""
  return PAPER_ORDER.index(name) if name in PAPER_ORDER else len(PAPER_ORDER)
