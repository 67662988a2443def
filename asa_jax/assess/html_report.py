"""PNG plot and self-contained HTML report of an `Assessment`.

The plot shows the performance's pitch (moved to the reference key) and the
reference's pitch at the aligned times on the performance's time axis, each reference
note as a bar where it was sung (coloured and labelled when flagged), and silent or
unvoiced windows shaded; under it, for a fused score (the default scorer), each
term's contribution as a bar ("why this score"). The HTML page embeds that plot
(base64 PNG), the score, the "why this score" table, the alignment confidence, the
per-note and per-segment tables, the warnings and players for both recordings (OGG
Vorbis embedded as data: URIs, so the single file can be mailed or archived).
"""

from __future__ import annotations

import base64
import html
import io
import os
from typing import Sequence

import numpy as np

from asa_jax import atomic
from asa_jax.assess.assessor import Assessment
from asa_jax.features import constants

FLAG_COLOURS = {"wrong_note": "#8c1d18", "flat": "#4c72b0", "sharp": "#c44e52",
                "early": "#8172b3", "late": "#dd8452", "missed": "#555555",
                "octave": "#937860", "unvoiced": "#bbbbbb", "silent": "#dddddd"}
WINDOW_FLAGS = ("unvoiced", "silent")  # shaded; the pitch/timing flags are per note.


MAX_NOTE_LABELS = 30  # more flagged notes than this: colours and the table only.


def _note_label(note) -> str:
  """Short text of a flagged note: its errors (the colour says which flag)."""
  parts = []
  if note.cents_error is not None and set(note.flags) & {"wrong_note", "sharp",
                                                          "flat"}:
    parts.append(f"{note.cents_error:+.0f}c")
  if note.timing_error_s is not None and set(note.flags) & {"early", "late"}:
    parts.append(f"{note.timing_error_s:+.2f}s")
  return " ".join(parts) or note.flags[0]


def plot_png(assessment: Assessment) -> bytes:
  """PNG bytes of the pitch-curve plot (matplotlib, Agg backend).

  Raises:
    ValueError: the assessment has no pitch curves.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  curves = assessment.pitch
  if curves is None:
    raise ValueError("the assessment has no pitch curves to plot")
  terms = assessment.contributions
  if terms:
    fig, (ax, why) = plt.subplots(
        2, 1, figsize=(12, 4.6 + 0.22 * len(terms)), dpi=100,
        gridspec_kw={"height_ratios": [3.8, 0.8 + 0.22 * len(terms)]})
  else:
    fig, ax = plt.subplots(figsize=(12, 3.8), dpi=100)
    why = None
  try:
    if why is not None:
      _plot_contributions(why, terms)
    for seg in assessment.segments:
      flags = [f for f in seg.flags if f in WINDOW_FLAGS]
      if flags:
        ax.axvspan(seg.start_s, seg.end_s, color=FLAG_COLOURS[flags[0]], alpha=0.25,
                   lw=0)
    shown = 0
    label = sum(bool(n.flags) for n in assessment.notes) <= MAX_NOTE_LABELS
    for note in assessment.notes:
      colour = FLAG_COLOURS[note.flags[0]] if note.flags else "#55a868"
      ax.plot([note.performance_onset_s, note.performance_offset_s],
              [note.reference_midi] * 2, color=colour, lw=5 if note.flags else 3,
              alpha=0.55, solid_capstyle="butt")
      if note.flags and label:
        # Alternate heights so that labels of neighbouring notes do not overlap.
        ax.text((note.performance_onset_s + note.performance_offset_s) / 2,
                1.0 + 0.06 * (shown % 3), _note_label(note), color=colour,
                transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=7)
        shown += 1
    ax.plot(curves.times_s, curves.reference_midi, color="0.45", lw=2.2,
            label="reference (aligned)")
    if assessment.notes:
      ax.plot([], [], color="#55a868", lw=4, alpha=0.55, label="reference note")
      used = {f for n in assessment.notes for f in n.flags[:1]}
      for flag in FLAG_COLOURS:
        if flag in used:
          ax.plot([], [], color=FLAG_COLOURS[flag], lw=4, alpha=0.55,
                  label=flag.replace("_", " "))
    key = assessment.key_offset_cents
    ax.plot(curves.times_s, curves.performance_midi, color="#c44e52", lw=1.2,
            label="performance" + (f" (moved {-key:+.0f} cents to the reference key)"
                                   if key is not None and abs(key) >= 1 else ""))
    voiced = np.concatenate([curves.performance_midi, curves.reference_midi])
    voiced = voiced[np.isfinite(voiced)]
    if voiced.size:
      lo, hi = np.percentile(voiced, [1, 99])
      ax.set_ylim(lo - 3, hi + 3)
    ax.set_xlim(0, max(assessment.duration_s, 1e-3))
    ax.set_xlabel("performance time (s)")
    ax.set_ylabel("pitch (MIDI note)")
    ax.set_title(f"{assessment.system}: score {assessment.score:.0f} / 100", pad=34)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
  finally:
    plt.close(fig)


def _plot_contributions(ax, terms) -> None:
  """Horizontal bars of the terms' contributions (points), largest on top."""
  names = [t.name.replace("_", " ") for t in terms][::-1]
  values = [t.contribution for t in terms][::-1]
  ax.barh(names, values, color=["#55a868" if v >= 0 else "#c44e52" for v in values])
  ax.axvline(0.0, color="0.3", lw=0.8)
  ax.set_xlabel("contribution to the score (points against a typical performance)")
  ax.set_title("why this score", fontsize=10, loc="left")
  ax.tick_params(axis="y", labelsize=8)
  ax.grid(axis="x", alpha=0.3)


def write_png(assessment: Assessment, path: str | os.PathLike) -> None:
  """Writes `plot_png` to path atomically."""
  atomic.write_bytes(path, plot_png(assessment))


def _audio_uri(audio: np.ndarray | None) -> str | None:
  """16 kHz mono float audio -> data: URI of an OGG Vorbis file (None if no audio)."""
  if audio is None:
    return None
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  sf.write(buf, np.asarray(audio, np.float32), constants.SAMPLE_RATE, format="OGG",
           subtype="VORBIS")
  return "data:audio/ogg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(value, spec: str) -> str:
  return "" if value is None else format(value, spec)


def html_report(assessment: Assessment, *, performance_audio: np.ndarray | None = None,
                reference_audio: np.ndarray | None = None,
                titles: Sequence[str] = ("performance", "reference")) -> str:
  """The self-contained HTML page (module doc).

  Args:
    assessment: what to show.
    performance_audio, reference_audio: float32 (n,) 16 kHz audio to embed as
      players (None: no player).
    titles: labels of the two recordings (e.g. their file names).
  """
  a = assessment
  esc = html.escape
  png = base64.b64encode(plot_png(a)).decode("ascii") if a.pitch is not None else None
  rows = []
  for i, s in enumerate(a.segments):
    flags = " ".join(f'<span class="flag {esc(f)}">{esc(f)}</span>' for f in s.flags)
    ref = ("" if s.reference_start_s is None else
           f"{s.reference_start_s:.1f}&ndash;{s.reference_end_s:.1f}")
    rows.append(
        f"<tr><td>{i + 1}</td><td>{s.start_s:.1f}&ndash;{s.end_s:.1f}</td>"
        f"<td>{ref}</td><td>{_fmt(s.score, '.0f')}</td>"
        f"<td>{_fmt(s.pitch_deviation_cents, '+.0f')}</td>"
        f"<td>{_fmt(s.timing_offset_s, '+.2f')}</td>"
        f"<td>{s.voiced_fraction:.0%}</td><td>{flags}</td></tr>")
  note_rows = []
  for n in a.notes:
    flags = " ".join(f'<span class="flag {esc(f)}">{esc(f.replace("_", " "))}</span>'
                     for f in n.flags)
    note_rows.append(
        f"<tr><td>{n.index + 1}</td><td>{n.reference_onset_s:.2f}</td>"
        f"<td>{n.performance_onset_s:.2f}</td><td>{n.reference_midi:.1f}</td>"
        f"<td>{_fmt(n.cents_error, '+.0f')}</td>"
        f"<td>{_fmt(n.timing_error_s, '+.2f')}</td><td>{flags}</td></tr>")
  contribution_rows = []
  span = max([abs(t.contribution) for t in a.contributions] + [1e-9])
  for t in a.contributions:
    width = 100.0 * abs(t.contribution) / span
    colour = "#55a868" if t.contribution >= 0 else "#c44e52"
    value = "" if t.value != t.value else format(t.value, ".4g")  # nan: blank.
    contribution_rows.append(
        f"<tr><td>{esc(t.name.replace('_', ' '))}</td><td>{value}</td>"
        f"<td>{esc(t.unit)}</td><td>{t.contribution:+.1f}</td>"
        f'<td class="bar"><span style="width:{width:.0f}%;background:{colour}">'
        "</span></td></tr>")
  why = (f'<h2>Why this score</h2>\n<p>Each measured term\'s contribution: points '
         "the score moves against a typical training performance with that term "
         "at its median (+ raises it).</p>\n<table id=\"contributions\"><thead><tr>"
         "<th>term</th><th>value</th><th>unit</th><th>points</th><th></th></tr>"
         f"</thead><tbody>{''.join(contribution_rows)}</tbody></table>"
         if contribution_rows else "")
  players = []
  for title, audio in zip(titles, (performance_audio, reference_audio)):
    uri = _audio_uri(audio)
    if uri:
      players.append(f'<figure><figcaption>{esc(title)}</figcaption>'
                     f'<audio controls preload="metadata" src="{uri}"></audio></figure>')
  facts = [f"system <b>{esc(a.system)}</b>", f"raw {a.raw:.4g}",
           f"calibration {esc(a.calibration)}",
           f"duration {a.duration_s:.1f} s"]
  if a.key_offset_cents is not None:
    facts += [f"key offset {a.key_offset_cents:+.0f} cents",
              f"tempo {a.tempo_ratio:.3f}x the reference's",
              f"latency {a.latency_s:+.3f} s"]
  if a.alignment is not None:
    facts.append(f"melody confidence {a.alignment.confidence:.2f} "
                 f"({a.alignment.band_share:.0%} on the band, cost "
                 f"{a.alignment.cost_ratio:.2f} x random)")
  warnings = "".join(f"<li>{esc(w)}</li>" for w in a.warnings)
  plot = (f'<img id="pitch-plot" alt="pitch curves" src="data:image/png;base64,{png}">'
          if png else "<p>No pitch curves.</p>")
  return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>asa-jax assessment: {a.score:.0f} / 100</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
#score {{ font-size: 4em; font-weight: 700; margin: 0; }}
#score small {{ font-size: 0.35em; color: #666; }}
.facts span {{ margin-right: 1.2em; color: #444; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }}
.flag {{ border-radius: 3px; padding: 0 0.4em; margin-left: 0.2em; color: #fff; }}
{"".join(f".flag.{k} {{ background: {v}; }}" for k, v in FLAG_COLOURS.items())}
figure {{ display: inline-block; margin: 0.5em 2em 0.5em 0; }}
td.bar {{ width: 12em; text-align: left; }}
td.bar span {{ display: inline-block; height: 0.8em; }}
</style></head><body>
<h1>Singing assessment</h1>
<p id="score">{a.score:.0f}<small> / 100</small></p>
<p class="facts">{"".join(f"<span>{f}</span>" for f in facts)}</p>
{f'<ul id="warnings">{warnings}</ul>' if warnings else ""}
{why}
<h2>Pitch</h2>
{plot}
<h2>Notes</h2>
{f"<p>{len(a.notes)} notes, {sum(bool(n.flags) for n in a.notes)} flagged. "
 "Cents: sung minus reference after the key offset; timing: seconds late (+) or "
 "early (-) against the local tempo.</p>" if a.notes else "<p>No reference notes.</p>"}
<table id="notes"><thead><tr><th>#</th><th>reference (s)</th>
<th>performance (s)</th><th>pitch (MIDI)</th><th>cents</th><th>timing (s)</th>
<th>flags</th></tr></thead>
<tbody>{"".join(note_rows)}</tbody></table>
<h2>Segments</h2>
<table id="segments"><thead><tr><th>#</th><th>performance (s)</th>
<th>reference (s)</th><th>score</th><th>pitch (cents)</th><th>timing (s)</th>
<th>voiced</th><th>flags</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Recordings</h2>
{"".join(players) or "<p>No audio embedded.</p>"}
<script>
// What the browser rendered, for automated checks (tests/test_assess.py).
window.addEventListener("load", () => {{
  const img = document.getElementById("pitch-plot");
  document.body.dataset.rendered = JSON.stringify({{
    score: document.getElementById("score").innerText,
    plot_width: img ? img.naturalWidth : 0,
    segment_rows: document.querySelectorAll("#segments tbody tr").length,
    note_rows: document.querySelectorAll("#notes tbody tr").length,
    contribution_rows: document.querySelectorAll("#contributions tbody tr").length,
    players: document.querySelectorAll("audio").length}});
}});
</script>
</body></html>
"""


def write_html(assessment: Assessment, path: str | os.PathLike, **kwargs) -> None:
  """Writes `html_report(assessment, **kwargs)` to path atomically (UTF-8)."""
  atomic.write_text(path, html_report(assessment, **kwargs))
