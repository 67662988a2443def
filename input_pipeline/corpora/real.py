r"""Real-voice training corpus: real vocals, degraded in known ways, with labels.

    python -m input_pipeline.corpora.real --out_dir=data/real \
        [--mir1k_dir=../shared/data/mir1k] [--ssvd_dir=../shared/data/ssvd] \
        [--variant=full|small] [--versions=6] [--max_sources=0] [--workers=2] [--seed=0]

writes OUT/manifest.csv (the usual manifest columns plus `pitch_score`,
`timing_score`, `voice_score`, `source_id`, `singer`, `corpus`), OUT/audio/...,
OUT/report.json (sources built / skipped with reasons, split sizes, cost) and prints a
summary. Deterministic from --seed (each source has its own generator seeded by
(seed, source id)), resumable (a source is complete when its rows file
OUT/sources/<id>.json exists; audio is written atomically first) and parallel
(--workers processes).

Sources (issue "Make the learned systems work on real singing"):
  * MIR-1K karaoke clips (`voice/<singer>_<song>_<clip>.opus`, accompaniment in
    `accompaniment/`, pitch labels in `PitchLabel/` at 20 ms): each clip is analysed
    once with WORLD (input_pipeline/corpora/degrade.py; f0 from the manual pitch labels) and
    resynthesised in K versions: version 0 undegraded, the others with severities
    spread over the whole range (stratified: version k >= 1 has severity in
    [(k-1)/(K-1), k/(K-1))); each degraded version mixes the
    three error families with Dirichlet(1, 1, 1) weights. Every version, the
    undegraded one included, is vocoded. `accompaniment_audio` is the clip's real
    accompaniment, so Racc trains on real karaoke data; therefore no tempo or key
    change is applied to MIR-1K (either would be a real error against the backing
    track); the label-neutral changes are a gain of +-6 dB and, for the reference,
    another voice.
  * SSVD v1 (a cappella sight-singing): the real, unvocoded recordings with their
    label-derived scores and references (input_pipeline/corpora/ssvd.py), so that natural
    audio with real labels is part of training and of every evaluation.

References: MIR-1K songs sung by several singers are found by their lyrics (Big5
text; two songs of different singers are one song when the Jaccard similarity of
their character-bigram sets is >= LYRICS_MATCH); a clip's reference is then another
singer's whole recording of the song (all its clips in order, vocoded), found with
DTW alignment (configs `:real`). Otherwise the reference is the clip's own undegraded
resynthesis in another voice (spectral envelope warped by 10-15%, up or down), so that
"same voice" never means "good".

Splits by singer and by song: singers are permuted with the seed; the first
`test_singers` are test, the next `validation_singers` validation. A song group takes
the highest split of its singers (test > validation > train) and a clip is kept only
where its singer's split equals its song's split, so no test singer and no test song is
seen in training (a train singer's clips of a test song are dropped, and reported).
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import sys
import time
from typing import Sequence

import numpy as np

from asa_jax import atomic

LYRICS_MATCH = 0.5
COLUMNS = ("song_id", "performance_id", "performance_audio", "reference_audio",
           "accompaniment_audio", "score", "judge_scores", "split", "pitch_score",
           "timing_score", "voice_score", "source_id", "singer", "corpus")
MIR1K_SAMPLE_RATE = 16000
MIR1K_LABEL_HOP = 0.02  # s per pitch label.

# Full-scale values of each error at severity 1 (drawn uniformly in [0.5, 1] x
# severity x family weight x full scale); see degrade.Degradation for units.
PITCH_ERRORS = {"detune_cents": 90.0, "wrong_note_prob": 0.35, "drift_cents": 120.0,
                "jitter_cents": 45.0, "scoop_cents": 180.0}
TIMING_ERRORS = {"onset_jitter_seconds": 0.12, "tempo_drift": 0.25,
                 "entry_offset_seconds": 0.35}
VOICE_ERRORS = {"breathiness": 0.8, "roughness_cents": 45.0, "loudness_wobble_db": 6.0}


@dataclasses.dataclass(frozen=True)
class Variant:
  """Corpus size settings."""
  versions: int
  max_sources: int  # 0 = all.
  test_singers: int
  validation_singers: int


VARIANTS = {"full": Variant(versions=6, max_sources=0, test_singers=3,
                            validation_singers=2),
            "small": Variant(versions=3, max_sources=12, test_singers=1,
                             validation_singers=1)}


@dataclasses.dataclass(frozen=True)
class Source:
  """One MIR-1K clip to degrade."""
  clip: str  # e.g. "Ani_1_01"
  singer: str
  song_key: str  # "<singer>_<song>"
  voice: str  # path
  accompaniment: str | None
  pitch_label: str | None


# --- Discovery, song groups, splits. -------------------------------------------------


def discover_mir1k(mir1k_dir: str) -> list[Source]:
  """MIR-1K clips, sorted by name. Raises FileNotFoundError without voice/."""
  mir1k_dir = os.path.abspath(mir1k_dir)
  voice_dir = os.path.join(mir1k_dir, "voice")
  if not os.path.isdir(voice_dir):
    raise FileNotFoundError(f"{voice_dir}: MIR-1K voice folder not found")
  out = []
  for path in sorted(glob.glob(os.path.join(glob.escape(voice_dir), "*.opus"))):
    clip = os.path.basename(path)[:-len(".opus")]
    parts = clip.split("_")
    if len(parts) < 3:
      continue
    acc = os.path.join(mir1k_dir, "accompaniment", f"{clip}.opus")
    pv = os.path.join(mir1k_dir, "PitchLabel", f"{clip}.pv")
    out.append(Source(clip=clip, singer=parts[0], song_key="_".join(parts[:2]),
                      voice=path, accompaniment=acc if os.path.exists(acc) else None,
                      pitch_label=pv if os.path.exists(pv) else None))
  return out


def _bigrams(text: str) -> set[str]:
  text = "".join(ch for ch in text if not ch.isspace() and ch.isprintable())
  return {text[i:i + 2] for i in range(len(text) - 1)}


def song_groups(sources: Sequence[Source], mir1k_dir: str) -> dict[str, str]:
  """song_key -> song id; song_keys of different singers with matching lyrics share
  one id ("mir1k_<smallest song_key>")."""
  text: dict[str, str] = collections.defaultdict(str)
  for s in sources:
    path = os.path.join(mir1k_dir, "Lyrics", f"{s.clip}.txt")
    if os.path.exists(path):
      with open(path, "rb") as f:
        text[s.song_key] += f.read().decode("big5", errors="ignore")
  keys = sorted({s.song_key for s in sources})
  grams = {k: _bigrams(text.get(k, "")) for k in keys}
  parent = {k: k for k in keys}

  def find(k):
    while parent[k] != k:
      parent[k] = parent[parent[k]]
      k = parent[k]
    return k

  for i, a in enumerate(keys):
    for b in keys[i + 1:]:
      if a.split("_")[0] == b.split("_")[0] or not grams[a] or not grams[b]:
        continue
      jaccard = len(grams[a] & grams[b]) / len(grams[a] | grams[b])
      if jaccard >= LYRICS_MATCH:
        ra, rb = find(a), find(b)
        parent[max(ra, rb)] = min(ra, rb)
  return {k: f"mir1k_{find(k)}" for k in keys}


def assign_splits(sources: Sequence[Source], songs: dict[str, str], *, seed: int,
                  test_singers: int, validation_singers: int
                  ) -> tuple[dict[str, str], list[str]]:
  """clip -> split for the kept clips, and the dropped clips ('<clip>: reason')."""
  singers = sorted({s.singer for s in sources})
  order = [singers[i] for i in np.random.default_rng(seed).permutation(len(singers))]
  singer_split = {s: "train" for s in singers}
  for s in order[:test_singers]:
    singer_split[s] = "test"
  for s in order[test_singers:test_singers + validation_singers]:
    singer_split[s] = "validation"
  rank = {"train": 0, "validation": 1, "test": 2}
  song_split: dict[str, str] = {}
  for s in sources:
    song = songs[s.song_key]
    cur = song_split.get(song, "train")
    song_split[song] = max(cur, singer_split[s.singer], key=rank.get)
  kept, dropped = {}, []
  for s in sources:
    mine, song = singer_split[s.singer], song_split[songs[s.song_key]]
    if mine == song:
      kept[s.clip] = mine
    else:
      dropped.append(f"{s.clip}: its song is in the {song} split, its singer in "
                     f"{mine}")
  return kept, dropped


# --- Degradation sampling. ------------------------------------------------------------


def sample_degradation(severity: float, rng: np.random.Generator):
  """A Degradation of the given severity in [0, 1] (module docstring)."""
  from input_pipeline.corpora import degrade  # pylint: disable=g-import-not-at-top
  weights = rng.dirichlet([1.0, 1.0, 1.0])
  fields = {}
  for family, weight in zip((PITCH_ERRORS, TIMING_ERRORS, VOICE_ERRORS), weights):
    amount = severity * min(1.0, 1.5 * weight)
    for name, full in family.items():
      if rng.random() < 0.7:  # Not every error of a family at once.
        fields[name] = float(full * amount * rng.uniform(0.5, 1.0))
  if "tempo_drift" in fields:
    fields["tempo_drift"] *= rng.choice([-1.0, 1.0])
  if "entry_offset_seconds" in fields:
    fields["entry_offset_seconds"] *= rng.choice([-1.0, 1.0])
  if rng.random() < 0.3 * severity:
    fields["vibrato_scale"] = float(rng.choice([0.0, 2.0]))
  fields["gain_db"] = float(rng.uniform(-6.0, 6.0))
  return degrade.Degradation(**fields)


# --- Building one source (a worker task). ---------------------------------------------


def _write_wav_atomic(path: str, audio: np.ndarray, sample_rate: int) -> None:
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  buf = io.BytesIO()
  sf.write(buf, audio, sample_rate, format="WAV", subtype="PCM_16")
  atomic.write_bytes(path, buf.getvalue())


def _write_json_atomic(path: str, obj) -> None:
  atomic.write_text(path, json.dumps(obj, indent=1))


def _seed_for(seed: int, name: str) -> list[int]:
  return [seed, int(hashlib.sha1(name.encode()).hexdigest()[:8], 16)]


def _load_mir1k(source: Source):
  """(audio float32, WorldParams) with f0 from the pitch labels when present."""
  import soundfile as sf  # pylint: disable=g-import-not-at-top
  from input_pipeline.corpora import degrade  # pylint: disable=g-import-not-at-top
  audio, sr = sf.read(source.voice, dtype="float32", always_2d=False)
  if audio.ndim > 1:
    audio = audio.mean(axis=1)
  f0 = None
  if source.pitch_label:
    semitones = np.loadtxt(source.pitch_label, ndmin=1)
    f0 = np.where(semitones > 0, 440.0 * 2.0 ** ((semitones - 69.0) / 12.0), 0.0)
    if not np.any(f0 > 0):
      f0 = None
  if f0 is None:
    return audio, degrade.analyse(audio, sr, f0_method="harvest")
  return audio, degrade.analyse(audio, sr, f0=f0, f0_hop_seconds=MIR1K_LABEL_HOP)


def build_reference(out_dir: str, song: str, singer: str,
                    clips: Sequence[Source]) -> str:
  """Writes (once) the vocoded concatenation of one singer's clips of a song."""
  from input_pipeline.corpora import degrade  # pylint: disable=g-import-not-at-top
  path = os.path.join(out_dir, "audio", "references", f"{song}__{singer}.wav")
  if not os.path.exists(path):
    parts = []
    for source in sorted(clips, key=lambda s: s.clip):
      _, params = _load_mir1k(source)
      parts.append(degrade.synthesise(params))
    _write_wav_atomic(path, np.concatenate(parts), MIR1K_SAMPLE_RATE)
  return path


def build_source(out_dir: str, source: Source, song: str, split: str,
                 reference: str | None, versions: int, seed: int) -> dict:
  """Builds one source's K versions (and own-voice reference); returns its record
  {"source_id", "rows": [...]} or {"source_id", "skipped": reason}; the record is
  also written to OUT/sources/<clip>.json (the completion marker)."""
  from input_pipeline.corpora import degrade  # pylint: disable=g-import-not-at-top
  marker = os.path.join(out_dir, "sources", f"{source.clip}.json")
  if os.path.exists(marker):
    with open(marker, encoding="utf-8") as f:
      return json.load(f)
  rng = np.random.default_rng(_seed_for(seed, source.clip))
  try:
    _, params = _load_mir1k(source)
  except (degrade.DegradeError, OSError, RuntimeError, ValueError) as e:
    record = {"source_id": source.clip, "skipped": f"{source.voice}: {e}"}
    _write_json_atomic(marker, record)
    return record
  if reference is None:  # Own undegraded resynthesis in another voice.
    warp = float(rng.uniform(1.10, 1.15)) ** float(rng.choice([-1.0, 1.0]))
    ref_params, _ = degrade.degrade(params, degrade.Degradation(formant_warp=warp), rng)
    reference = os.path.join(out_dir, "audio", "references", f"{source.clip}.wav")
    _write_wav_atomic(reference, degrade.synthesise(ref_params), params.sample_rate)
  rows = []
  for k in range(versions):
    # Version 0 is the undegraded resynthesis; the others spread over (0, 1).
    severity = 0.0 if k == 0 else (k - 1 + rng.random()) / max(versions - 1, 1)
    d = sample_degradation(severity, rng)
    out, applied = degrade.degrade(params, d, rng)
    perf_id = f"{source.clip}_v{k}"
    path = os.path.join(out_dir, "audio", split, source.clip, f"{perf_id}.wav")
    _write_wav_atomic(path, degrade.synthesise(out), params.sample_rate)
    scores = applied.scores()
    rows.append(dict(
        song_id=song, performance_id=perf_id,
        performance_audio=os.path.relpath(path, out_dir),
        reference_audio=os.path.relpath(reference, out_dir),
        accompaniment_audio=source.accompaniment or "", score=scores["score"],
        judge_scores="", split=split, pitch_score=scores["pitch_score"],
        timing_score=scores["timing_score"], voice_score=scores["voice_score"],
        source_id=source.clip, singer=source.singer, corpus="mir1k",
        severity=round(severity, 4), degradation=dataclasses.asdict(d)))
  record = {"source_id": source.clip, "rows": rows}
  _write_json_atomic(marker, record)
  return record


# --- The whole corpus. -----------------------------------------------------------------


def _ssvd_rows(ssvd_dir: str, seed: int) -> list[dict]:
  """The real SSVD v1 rows (absolute paths, label-derived scores, melody splits)."""
  from input_pipeline.corpora import ssvd  # pylint: disable=g-import-not-at-top
  result = ssvd.build_manifest(ssvd_dir, seed=seed)
  out = []
  for row in result["rows"]:
    out.append({**{c: row.get(c, "") for c in COLUMNS},
                "source_id": row["performance_id"], "singer": "", "corpus": "ssvd"})
  return out


def build_corpus(out_dir: str, *, mir1k_dir: str, ssvd_dir: str | None = None,
                 variant: str = "full", versions: int | None = None,
                 max_sources: int | None = None, workers: int = 1,
                 cluster: str = "", seed: int = 0) -> dict:
  """Builds (or resumes) the real-voice corpus; returns the report dict.

  Args:
    out_dir: output folder (manifest.csv, audio/, sources/, report.json).
    mir1k_dir: MIR-1K folder (voice/, accompaniment/, PitchLabel/, Lyrics/).
    ssvd_dir: SSVD v1 folder whose real recordings join the corpus, or None.
    variant: 'full' or 'small' (VARIANTS); versions / max_sources override it.
    workers: Dask LocalCluster workers for the per-source builds (processes when
      > 1; input_pipeline/dask_tasks.py, as the feature build).
    cluster: an existing Dask scheduler ("tcp://host:8786") instead; its workers
      write `out_dir` directly, so it must be on a filesystem they share.
    seed: everything random derives from it.

  Returns:
    {"sources_built", "sources_skipped", "dropped", "rows", "per_split", "seconds"}.

  Raises:
    FileNotFoundError: no MIR-1K voice folder.
    ValueError: unknown variant.
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {sorted(VARIANTS)}, not {variant!r}")
  v = VARIANTS[variant]
  versions = versions or v.versions
  max_sources = v.max_sources if max_sources is None else max_sources
  start = time.time()
  sources = discover_mir1k(mir1k_dir)
  songs = song_groups(sources, mir1k_dir)
  if max_sources:
    # A deterministic subset that keeps whole songs sung by several singers first.
    by_song = collections.defaultdict(list)
    for s in sources:
      by_song[songs[s.song_key]].append(s)
    ranked = sorted(by_song, key=lambda g: (-len({x.singer for x in by_song[g]}), g))
    rng = np.random.default_rng(seed)
    picked: list[Source] = []
    for g in ranked:
      clips = by_song[g]
      take = [clips[i] for i in sorted(rng.permutation(len(clips))[:2])]
      picked += take
      if len(picked) >= max_sources:
        break
    sources = sorted(picked[:max_sources], key=lambda s: s.clip)
  splits, dropped = assign_splits(sources, songs, seed=seed,
                                  test_singers=v.test_singers,
                                  validation_singers=v.validation_singers)
  kept = [s for s in sources if s.clip in splits]
  by_song_singer = collections.defaultdict(list)
  for s in kept:
    by_song_singer[(songs[s.song_key], s.singer)].append(s)
  refs: dict[str, str | None] = {}
  for s in kept:
    song = songs[s.song_key]
    others = sorted(sg for (g, sg) in by_song_singer if g == song and sg != s.singer)
    refs[s.clip] = (build_reference(out_dir, song, others[0],
                                    by_song_singer[(song, others[0])])
                    if others else None)
  tasks = [(out_dir, s, songs[s.song_key], splits[s.clip], refs[s.clip], versions,
            seed) for s in kept]
  records = _run(tasks, workers, cluster)
  rows = [dict(r) for rec in records for r in rec.get("rows", [])]
  skipped = [rec["skipped"] for rec in records if "skipped" in rec]
  if ssvd_dir:
    rows += _ssvd_rows(ssvd_dir, seed)
  rows.sort(key=lambda r: (r["split"], r["song_id"], r["performance_id"]))
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore",
                          lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  atomic.write_text(os.path.join(out_dir, "manifest.csv"), buf.getvalue())
  per_split = collections.Counter(r["split"] for r in rows)
  report = {"sources_built": len(records) - len(skipped),
            "sources_skipped": skipped, "dropped": dropped, "rows": len(rows),
            "per_split": dict(per_split), "versions": versions, "seed": seed,
            "seconds": round(time.time() - start, 1)}
  _write_json_atomic(os.path.join(out_dir, "report.json"), report)
  return report


def _run(tasks: list, workers: int, cluster: str = "") -> list[dict]:
  """Runs `build_source` for every task on Dask (`dask_tasks.run_tasks`: retries, dead
  workers, a cluster address), results in order of `tasks`; a source whose task still
  fails is reported as skipped, with the reason.

  Raises:
    Whatever a task raises after its retries (a dead worker is reported, not raised).
  """
  from tqdm import tqdm  # pylint: disable=g-import-not-at-top
  from input_pipeline import dask_tasks  # pylint: disable=g-import-not-at-top
  results: dict[int, dict] = {}
  progress = tqdm(total=len(tasks), desc="sources", unit="source", disable=None)

  def on_done(i: int, record: dict | None, error: str | None) -> None:
    results[i] = record if error is None else {
        "source_id": tasks[i][1].clip, "skipped": f"{tasks[i][1].voice}: {error}"}
    progress.update(1)

  try:
    if tasks:
      dask_tasks.run_tasks(build_source, tasks,
                           keys=[f"source-{t[1].clip}" for t in tasks],
                           on_done=on_done, workers=workers, address=cluster,
                           label="real_corpus", noun="sources", fatal=(Exception,))
  finally:
    progress.close()
  return [results[i] for i in range(len(tasks))]


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top
  del argv
  f = flags.FLAGS
  report = build_corpus(f.out_dir, mir1k_dir=f.mir1k_dir, ssvd_dir=f.ssvd_dir or None,
                        variant=f.variant, versions=f.versions or None,
                        max_sources=f.max_sources if f.max_sources >= 0 else None,
                        workers=f.workers, cluster=f.cluster, seed=f.seed)
  print(json.dumps({k: v for k, v in report.items() if k != "dropped"}, indent=1))
  print(f"{len(report['dropped'])} clips dropped (song and singer in different "
        f"splits); manifest: {os.path.join(f.out_dir, 'manifest.csv')}")
  return 0


def _define_flags() -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string("out_dir", None, "Output folder.", required=True)
  flags.DEFINE_string("mir1k_dir", "../shared/data/mir1k", "MIR-1K folder.")
  flags.DEFINE_string("ssvd_dir", "", "SSVD v1 folder to join (empty: none).")
  flags.DEFINE_enum("variant", "full", sorted(VARIANTS), "Corpus size.")
  flags.DEFINE_integer("versions", 0, "Versions per source (0: the variant's).")
  flags.DEFINE_integer("max_sources", -1, "MIR-1K clips used (-1: the variant's, "
                       "0: all).")
  flags.DEFINE_integer("workers", 1, "Dask LocalCluster workers (processes when > 1).")
  flags.DEFINE_string("cluster", "", "An existing Dask scheduler (tcp://host:8786) "
                      "instead of a LocalCluster.")
  flags.DEFINE_integer("seed", 0, "Seed of everything random.")


if __name__ == "__main__":
  from absl import app  # pylint: disable=g-import-not-at-top
  _define_flags()
  sys.exit(app.run(main))
