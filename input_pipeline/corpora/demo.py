r"""Synthetic demo corpus: sung melodies with known quality (stands in for paper 3.3).

    python -m input_pipeline.corpora.demo --out_dir=demo_data \
        [--songs=12 --performances=8 --seed=0]

writes DIR/manifest.csv (contract columns, paths relative to DIR), DIR/README.txt and
16 kHz mono PCM-16 wav files DIR/audio/<song_id>/{reference,accompaniment,
<performance_id>}.wav. Numpy only; the default size renders in well under a minute.

Per song (paper 3.3 analogues):
  * a random melody in a random key (major or natural minor; tonic MIDI 48..55 for a
    low or 57..65 for a high reference register), scale notes from a random walk,
    note slots 0.3-0.8 s with a 30 ms articulation gap, occasional rests of
    0.2-0.4 s, 12-16 s in total, starting after a 0.4-0.6 s lead-in;
  * the reference "original singing": that melody sung by a reference singer
    without errors (formant voice of `input_pipeline.corpora.synth_voice`);
  * an accompaniment: sustained diatonic triads (plus a bass root) chosen to fit the
    melody notes in windows of about 2 s (for the Racc system);
  * `performances` amateur performances by other synthetic singers (different
    vocal-tract size, spectral tilt, vibrato rate / depth, breathiness) in the SAME
    key and octave, each with a quality knob q in [0, 1] (badness b = 1 - q) that
    drives its errors:
      - per-note detune ~ N(0, (120 b + 150 b^3)^2) cents,
      - wrong notes (neighbouring scale degree: 1-2 semitones) with probability
        0.5 b^2 per note,
      - linear drift across each note ~ N(0, (80 b)^2) cents end to end,
      - slow intonation wander (~0.6 s smoothed noise) with std 30 b cents,
      - onset jitter ~ N(0, (0.08 b)^2) s per note, clipped to +-0.12 s and NOT
        cumulative (each note is jittered around its reference onset), so the
        performance stays aligned with the reference (alignment 'none' works);
      - breathiness voice.breath + 0.1 b, note loudness spread 1 + 2 b dB.
    q is drawn per performance from a three-tier mixture: about 3/8 of a song's
    performances good (q ~ U(0.86, 0.98)), 3/8 poor (q ~ U(0.05, 0.30)), the rest in
    between (q ~ U(0.45, 0.75)); at least one good and one poor per song (a 'good'
    performance is redrawn until its score is >= 80, a 'poor' one until < 40).

Ground-truth score (the "human" score of paper 3.3) is computed from the REALISED
errors, not from q, so it is exactly what the audio contains:

    e_i  = mean over note i of |sung pitch - score pitch| in cents (detune, wrong
           note, drift and wander; vibrato excluded), capped at 300 cents,
    P    = mean_i e_i                               (cents),
    T    = mean_i |onset_i - reference onset_i|     (seconds),
    score = round(100 * clip(1 - P / 200 - T / 0.5, 0, 1)).

Its expectation is close to 100 q (measured: q = 0.05, 0.25, 0.45, 0.6, 0.75, 0.92
-> mean score 3, 22, 49, 65, 82, 95; poor singers have P of 110-180 cents).
judge_scores: 5 synthetic judges = score + a fixed per-judge bias ~ N(0, 4^2)
+ per-performance noise ~ N(0, 6^2), rounded, clipped to 0..100 (paper 4.1 uses 5
judges). Splits are by song: the last round(songs/6) songs
are test, the round(songs/6) before them validation (each at least 1 when songs >= 3;
with 2 songs: 1 train, 1 test), the rest train. Everything is deterministic from
--seed.
"""

from __future__ import annotations

import csv
import os

from absl import app
from absl import flags
import numpy as np
import soundfile as sf

from input_pipeline.corpora import synth_voice
from input_pipeline.corpora.synth_voice import Note, Voice

SAMPLE_RATE = 16000
MANIFEST_COLUMNS = ("song_id", "performance_id", "performance_audio", "reference_audio",
                    "accompaniment_audio", "score", "judge_scores", "split")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Ground-truth formula constants (see module docstring).
PITCH_FULL_SCALE_CENTS = 200.0
TIMING_FULL_SCALE_SECONDS = 0.5
NOTE_ERROR_CAP_CENTS = 300.0
MAX_ONSET_JITTER_SECONDS = 0.12
N_JUDGES = 5
ARTICULATION_GAP = 0.03  # seconds of silence between legato notes.


def degree_to_midi(degree: int, tonic: int, scale: tuple[int, ...]) -> int:
  """MIDI pitch of a scale degree (0 = tonic, may be negative or >= 7)."""
  octave, step = divmod(degree, len(scale))
  return tonic + 12 * octave + scale[step]


def make_melody(rng: np.random.Generator, *, min_seconds: float = 12.0,
                max_seconds: float = 16.0) -> dict:
  """Draws a random melody plan (see module docstring).

  Returns:
    dict with 'notes' (list[synth_voice.Note], no errors), 'degrees' (list[int]),
    'tonic' (MIDI int), 'scale' (tuple of pitch classes), 'total_seconds' (float:
    melody end + 0.5 s).
  """
  scale = MAJOR if rng.random() < 0.6 else MINOR
  high = rng.random() < 0.5
  tonic = int(rng.integers(57, 66) if high else rng.integers(48, 56))
  target = rng.uniform(min_seconds, max_seconds)
  t = rng.uniform(0.4, 0.6)
  degree = int(rng.choice([0, 2, 4]))
  steps = np.array([-3, -2, -1, 0, 1, 2, 3])
  step_p = np.array([0.05, 0.15, 0.27, 0.08, 0.27, 0.13, 0.05])
  notes, degrees = [], []
  while t < target - 0.6:
    slot = float(np.round(rng.uniform(0.3, 0.8) / 0.05) * 0.05)
    notes.append(Note(onset=float(t), duration=slot - ARTICULATION_GAP,
                      midi=float(degree_to_midi(degree, tonic, scale)),
                      vowel=int(rng.integers(0, synth_voice.N_VOWELS))))
    degrees.append(degree)
    t += slot
    if rng.random() < 0.12:
      t += rng.uniform(0.2, 0.4)
    degree = int(np.clip(degree + rng.choice(steps, p=step_p), -3, 9))
  # End on the tonic, a longer note.
  final = 7 if degrees[-1] >= 4 else 0
  notes.append(Note(onset=float(t), duration=0.8, midi=float(degree_to_midi(final, tonic, scale)),
                    vowel=0))
  degrees.append(final)
  return dict(notes=notes, degrees=degrees, tonic=tonic, scale=scale,
              total_seconds=float(t + 0.8 + 0.5))


def make_chords(melody: dict, rng: np.random.Generator
                ) -> list[tuple[float, float, tuple[float, ...]]]:
  """Diatonic triads fitting the melody, one per window of about 2 s.

  A window starts at a note onset; its triad (I, ii, iii, IV, V or vi) is the one
  whose tones cover the most melody duration in the window (ties prefer I, V, IV).

  Returns:
    list of (onset s, duration s, MIDI pitches: bass root + close triad).
  """
  notes, tonic, scale = melody["notes"], melody["tonic"], melody["scale"]
  candidates = (0, 4, 3, 5, 1, 2)  # Scale degrees of chord roots, preference order.
  chords = []
  i = 0
  while i < len(notes):
    start = notes[i].onset
    j = i
    while j < len(notes) and notes[j].onset < start + rng.uniform(1.6, 2.4):
      j += 1
    j = max(j, i + 1)
    end = notes[j].onset if j < len(notes) else notes[-1].onset + notes[-1].duration
    best, best_cover = 0, -1.0
    for root in candidates:
      pcs = {(tonic + scale[(root + k) % 7]) % 12 for k in (0, 2, 4)}
      cover = sum(n.duration for n in notes[i:j] if int(n.midi) % 12 in pcs)
      if cover > best_cover + 1e-9:
        best, best_cover = root, cover
    base = 48 if tonic >= 57 else 43  # Keep the chord below or around the melody.
    triad = []
    for k in (0, 2, 4):
      p = tonic % 12 + scale[(best + k) % 7]
      while p < base:
        p += 12
      triad.append(float(p))
    bass = float(36 + (tonic + scale[best]) % 12)
    chords.append((start, end - start, (bass, *triad)))
    i = j
  return chords


def sample_voice(rng: np.random.Generator, *, reference: bool, high: bool) -> Voice:
  """A random singer timbre; `reference` singers have steadier, deeper vibrato."""
  if reference:
    return Voice(formant_scale=rng.uniform(1.1, 1.2) if high else rng.uniform(0.9, 1.0),
                 tilt=rng.uniform(0.85, 0.9), vibrato_rate=rng.uniform(5.2, 6.0),
                 vibrato_depth=rng.uniform(40, 70), vibrato_delay=rng.uniform(0.15, 0.25),
                 breath=0.01)
  return Voice(formant_scale=rng.uniform(0.85, 1.2), tilt=rng.uniform(0.82, 0.95),
               vibrato_rate=rng.uniform(4.8, 6.5), vibrato_depth=rng.uniform(15, 60),
               vibrato_delay=rng.uniform(0.15, 0.35), breath=rng.uniform(0.01, 0.04))


def perform(melody: dict, q: float, rng: np.random.Generator) -> dict:
  """Applies quality-driven errors to a melody (see module docstring).

  Args:
    melody: from `make_melody`.
    q: quality in [0, 1] (1 = perfect).
    rng: numpy Generator.

  Returns:
    dict with 'notes' (list[Note] with offset/drift cents and jittered onsets),
    'wander_cents' (float64 (n_ctrl,) at synth_voice.CONTROL_RATE),
    'onset_errors' (float64 (n_notes,) seconds), 'wrong' (bool (n_notes,)),
    'breath_extra' (float), and 'score' (int, from `score_from_errors`) and
    'note_errors' (float64 (n_notes,) cents).
  """
  b = 1.0 - float(np.clip(q, 0.0, 1.0))
  ref = melody["notes"]
  n = len(ref)
  total = melody["total_seconds"]
  n_ctrl = int(np.ceil(total * synth_voice.CONTROL_RATE)) + 2
  jitter = np.clip(rng.normal(0.0, 0.08 * b + 1e-9, n), -MAX_ONSET_JITTER_SECONDS,
                   MAX_ONSET_JITTER_SECONDS)
  jitter[0] = max(jitter[0], -ref[0].onset + 0.05)
  detune = rng.normal(0.0, 120.0 * b + 150.0 * b**3 + 1e-9, n)
  drift = rng.normal(0.0, 80.0 * b + 1e-9, n)
  wrong = rng.random(n) < 0.5 * b * b
  wrong_offset = np.zeros(n)
  for i in np.flatnonzero(wrong):
    d = melody["degrees"][i] + (1 if rng.random() < 0.5 else -1)
    wrong_offset[i] = 100.0 * (degree_to_midi(d, melody["tonic"], melody["scale"]) - ref[i].midi)
  wander = synth_voice._smooth(rng.standard_normal(n_ctrl), 600)
  wander = wander / (np.std(wander) + 1e-12) * 30.0 * b
  onsets = np.array([x.onset for x in ref]) + jitter
  notes = []
  for i, r in enumerate(ref):
    ref_end = r.onset + r.duration
    if i + 1 < n:
      gap = ref[i + 1].onset - ref_end  # articulation gap or rest of the reference.
      end = min(ref_end + jitter[i + 1], onsets[i + 1] - gap)
    else:
      end = ref_end + rng.normal(0.0, 0.05 * b + 1e-9)
    end = min(end, total - 0.1)
    duration = max(end - onsets[i], 0.1)
    notes.append(Note(onset=float(onsets[i]), duration=float(duration), midi=r.midi,
                      offset_cents=float(detune[i] + wrong_offset[i]),
                      drift_cents=float(drift[i]), vowel=r.vowel,
                      gain_db=float(rng.normal(0.0, 1.0 + 2.0 * b))))
  note_errors = note_pitch_errors(notes, wander)
  return dict(notes=notes, wander_cents=wander, onset_errors=jitter, wrong=wrong,
              breath_extra=0.1 * b, note_errors=note_errors,
              score=score_from_errors(note_errors, jitter))


def note_pitch_errors(notes: list[Note], wander_cents: np.ndarray) -> np.ndarray:
  """Mean absolute pitch error per note in cents (vibrato excluded), uncapped.

  Returns:
    float64 (len(notes),) cents.
  """
  n_ctrl = wander_cents.shape[0]
  err = synth_voice.pitch_error_curve(notes, n_ctrl, wander_cents)
  idx = synth_voice.note_index_curve(notes, n_ctrl)
  out = np.zeros(len(notes))
  for i in range(len(notes)):
    m = idx == i
    out[i] = np.mean(np.abs(err[m])) if m.any() else abs(notes[i].offset_cents)
  return out


def score_from_errors(note_errors_cents: np.ndarray, onset_errors_seconds: np.ndarray) -> int:
  """Ground-truth score 0..100 from realised errors (module docstring formula).

  Args:
    note_errors_cents: (n_notes,) mean absolute pitch error per note, cents.
    onset_errors_seconds: (n_notes,) onset error per note, seconds (signed).

  Returns:
    int score in 0..100.
  """
  p = float(np.mean(np.minimum(np.abs(note_errors_cents), NOTE_ERROR_CAP_CENTS)))
  t = float(np.mean(np.abs(onset_errors_seconds)))
  value = 1.0 - p / PITCH_FULL_SCALE_CENTS - t / TIMING_FULL_SCALE_SECONDS
  return int(round(100.0 * float(np.clip(value, 0.0, 1.0))))


def draw_qualities(rng: np.random.Generator, m: int) -> list[tuple[float, str]]:
  """Per-performance (quality, tier) from the three-tier mixture, shuffled.

  Tiers: 'good' q ~ U(0.86, 0.98), 'poor' q ~ U(0.05, 0.30), 'mid' q ~ U(0.45, 0.75);
  about 3/8 good, 3/8 poor, at least one good and (for m >= 2) one poor.

  Returns:
    list of m (q float, tier str).
  """
  n_good = max(1, int(round(0.375 * m)))
  n_poor = min(max(1, int(round(0.375 * m))), m - n_good)
  n_mid = m - n_good - n_poor
  items = ([(float(q), "good") for q in rng.uniform(0.86, 0.98, n_good)]
           + [(float(q), "poor") for q in rng.uniform(0.05, 0.30, n_poor)]
           + [(float(q), "mid") for q in rng.uniform(0.45, 0.75, n_mid)])
  return [items[i] for i in rng.permutation(m)]


def perform_tier(melody: dict, q: float, tier: str, rng: np.random.Generator,
                 max_tries: int = 50) -> dict:
  """`perform`, redrawn until a 'good' score is >= 80 and a 'poor' one < 40.

  The paper's thresholds (3.3) then give every song at least one good and one poor
  performance. 'mid' performances are not constrained.
  """
  plan = perform(melody, q, rng)
  for _ in range(max_tries):
    if ((tier == "good" and plan["score"] < 80) or (tier == "poor" and plan["score"] >= 40)):
      plan = perform(melody, q, rng)
    else:
      break
  return plan


def song_splits(n_songs: int) -> list[str]:
  """Split name per song index: train first, then validation, then test."""
  n_test = max(1, int(round(n_songs / 6))) if n_songs >= 2 else 0
  n_val = max(1, int(round(n_songs / 6))) if n_songs >= 3 else 0
  n_train = n_songs - n_test - n_val
  return ["train"] * n_train + ["validation"] * n_val + ["test"] * n_test


def _write_wav(path: str, audio: np.ndarray) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")


def generate_corpus(out_dir: str, *, songs: int = 12, performances: int = 8, seed: int = 0,
                    min_seconds: float = 12.0, max_seconds: float = 16.0) -> list[dict]:
  """Writes the demo corpus (wavs, manifest.csv, README.txt) under out_dir.

  Args:
    out_dir: output folder (created).
    songs: number of songs (>= 1).
    performances: performances per song (>= 1).
    seed: everything is a deterministic function of it.
    min_seconds, max_seconds: range of the melody length in seconds.

  Returns:
    The manifest rows as dicts (column -> str), plus extra keys for tests and
    inspection (not written): 'q' (float), 'tier' (str), 'plan' (the `perform`
    dict) and 'melody' (the `make_melody` dict: the reference plan).

  Raises:
    ValueError: for songs < 1, performances < 1 or min_seconds > max_seconds.
  """
  if songs < 1 or performances < 1:
    raise ValueError(f"demo_corpus: need songs >= 1 and performances >= 1, got {songs}, "
                     f"{performances}")
  if min_seconds > max_seconds:
    raise ValueError(f"demo_corpus: min_seconds {min_seconds} > max_seconds {max_seconds}")
  os.makedirs(out_dir, exist_ok=True)
  root = np.random.default_rng(seed)
  judge_bias = root.normal(0.0, 4.0, N_JUDGES)
  splits = song_splits(songs)
  rows = []
  for s in range(songs):
    rng = np.random.default_rng([seed, s])
    song_id = f"song{s:02d}"
    melody = make_melody(rng, min_seconds=min_seconds, max_seconds=max_seconds)
    total = melody["total_seconds"]
    high = melody["tonic"] >= 57
    ref_voice = sample_voice(rng, reference=True, high=high)
    reference = synth_voice.render_voice(melody["notes"], ref_voice, total_seconds=total,
                                         rng=rng, sample_rate=SAMPLE_RATE)
    accompaniment = synth_voice.render_chords(make_chords(melody, rng), total_seconds=total,
                                              sample_rate=SAMPLE_RATE)
    ref_rel = f"audio/{song_id}/reference.wav"
    acc_rel = f"audio/{song_id}/accompaniment.wav"
    _write_wav(os.path.join(out_dir, ref_rel), reference)
    _write_wav(os.path.join(out_dir, acc_rel), accompaniment)
    for j, (q, tier) in enumerate(draw_qualities(rng, performances)):
      perf_id = f"{song_id}_p{j:02d}"
      plan = perform_tier(melody, q, tier, rng)
      voice = sample_voice(rng, reference=False, high=high)
      voice = Voice(**{**voice.__dict__, "breath": voice.breath + plan["breath_extra"]})
      audio = synth_voice.render_voice(plan["notes"], voice, total_seconds=total, rng=rng,
                                       sample_rate=SAMPLE_RATE,
                                       wander_cents=plan["wander_cents"])
      audio = audio * np.float32(10 ** (rng.uniform(-3, 0) / 20))
      rel = f"audio/{song_id}/{perf_id}.wav"
      _write_wav(os.path.join(out_dir, rel), audio)
      score = plan["score"]
      judges = np.clip(np.round(score + judge_bias + rng.normal(0.0, 6.0, N_JUDGES)), 0, 100)
      rows.append(dict(song_id=song_id, performance_id=perf_id, performance_audio=rel,
                       reference_audio=ref_rel, accompaniment_audio=acc_rel, score=str(score),
                       judge_scores=";".join(str(int(x)) for x in judges), split=splits[s],
                       q=float(q), tier=tier, plan=plan, melody=melody))
  with open(os.path.join(out_dir, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  _write_readme(out_dir, rows, songs=songs, performances=performances, seed=seed)
  return rows


def _write_readme(out_dir: str, rows: list[dict], *, songs: int, performances: int,
                  seed: int) -> None:
  scores = np.array([int(r["score"]) for r in rows])
  lines = [
      "Synthetic demo corpus for asa-jax (generated by input_pipeline/corpora/demo.py).",
      f"songs={songs} performances_per_song={performances} seed={seed} "
      f"sample_rate={SAMPLE_RATE} Hz (mono PCM-16 wav).",
      "",
      "Per song: reference.wav = the melody sung without errors by a reference singer",
      "(the 'original singing'); accompaniment.wav = sustained chords fitting the melody",
      "(for Racc); <song>_pXX.wav = performances by other synthetic singers in the same",
      "key and octave, aligned with the reference (onset errors are per note, not",
      "cumulative, at most 0.12 s).",
      "",
      "Ground truth ('score' column) is computed from the realised errors:",
      "  e_i = mean over note i of |sung - score pitch| (cents; detune, wrong notes,",
      "        drift, wander; vibrato excluded), capped at 300 cents",
      "  P = mean_i e_i (cents);  T = mean_i |onset_i - reference onset_i| (seconds)",
      "  score = round(100 * clip(1 - P/200 - T/0.5, 0, 1))",
      "judge_scores = score + fixed per-judge bias N(0, 4^2) + noise N(0, 6^2), 5 judges.",
      "",
      f"scores: n={len(scores)} min={scores.min()} median={np.median(scores):.0f} "
      f"max={scores.max()} >=80: {(scores >= 80).sum()} <40: {(scores < 40).sum()}",
      "splits (by song): " + ", ".join(
          f"{sp}={len({r['song_id'] for r in rows if r['split'] == sp})} songs"
          for sp in ("train", "validation", "test")),
      "",
      "song_id performance_id split score q tier mean_pitch_error_cents mean_onset_error_s "
      "wrong_notes",
  ]
  for r in rows:
    p = r["plan"]
    lines.append(f"{r['song_id']} {r['performance_id']} {r['split']} {r['score']} "
                 f"{r['q']:.2f} {r['tier']} "
                 f"{np.mean(np.minimum(p['note_errors'], NOTE_ERROR_CAP_CENTS)):.1f} "
                 f"{np.mean(np.abs(p['onset_errors'])):.3f} {int(p['wrong'].sum())}")
  with open(os.path.join(out_dir, "README.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")


FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Command-line flags; defined only when run as a script (no clash on import)."""
  flags.DEFINE_string("out_dir", None, "Output folder for manifest.csv, README.txt, audio/.")
  flags.DEFINE_integer("songs", 12, "Number of songs.")
  flags.DEFINE_integer("performances", 8, "Performances per song.")
  flags.DEFINE_integer("seed", 0, "Random seed (the corpus is a function of it).")
  flags.DEFINE_float("min_seconds", 12.0, "Shortest melody length in seconds.")
  flags.DEFINE_float("max_seconds", 16.0, "Longest melody length in seconds.")


def main(argv):
  del argv
  if not FLAGS.out_dir:
    raise app.UsageError("--out_dir is required")
  rows = generate_corpus(FLAGS.out_dir, songs=FLAGS.songs, performances=FLAGS.performances,
                         seed=FLAGS.seed, min_seconds=FLAGS.min_seconds,
                         max_seconds=FLAGS.max_seconds)
  scores = np.array([int(r["score"]) for r in rows])
  print(f"wrote {len(rows)} performances of {FLAGS.songs} songs to "
        f"{os.path.join(FLAGS.out_dir, 'manifest.csv')}; scores min {scores.min()} "
        f"median {np.median(scores):.0f} max {scores.max()}, >=80: {(scores >= 80).sum()}, "
        f"<40: {(scores < 40).sum()}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
