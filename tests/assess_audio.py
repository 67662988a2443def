"""Generated sung phrases with known errors for the asa_jax.assess tests.

A melody of PHRASES phrases, phrase k sung in [3k + 0.3, 3k + 2.7] s (one per 3 s
feedback window), four notes each, rendered by input_pipeline.corpora.synth_voice.
"""

import numpy as np

from input_pipeline.corpora import synth_voice

PHRASES = 5
SECONDS = 3.0 * PHRASES
SAMPLE_RATE = 16000
_PITCHES = ((60, 62, 64, 65), (67, 65, 64, 62), (64, 67, 69, 67), (65, 64, 62, 60),
            (62, 64, 62, 60))


def melody(*, detune_phrase: int | None = None, detune_cents: float = 0.0,
           shift_phrase: int | None = None, shift_seconds: float = 0.0,
           transpose: float = 0.0, seed: int = 0) -> np.ndarray:
  """float32 (SECONDS * 16000,) audio of the melody.

  Args:
    detune_phrase / detune_cents: that phrase sung this many cents off.
    shift_phrase / shift_seconds: that phrase sung this much later (s).
    transpose: every note moved by this many semitones.
    seed: breath noise and vibrato phase.
  """
  notes = []
  for k, pitches in enumerate(_PITCHES[:PHRASES]):
    onset = 3.0 * k + 0.3 + (shift_seconds if k == shift_phrase else 0.0)
    for i, midi in enumerate(pitches):
      notes.append(synth_voice.Note(
          onset=onset + 0.6 * i, duration=0.58, midi=midi + transpose,
          offset_cents=detune_cents if k == detune_phrase else 0.0, vowel=i % 5))
  return synth_voice.render_voice(notes, synth_voice.Voice(vibrato_depth=20.0),
                                  total_seconds=SECONDS,
                                  rng=np.random.default_rng(seed))


# --- A note-level melody for the per-note feedback (issue 19). ---------------------

NOTE_PITCHES = (60, 64, 62, 67, 65, 64, 60, 62, 64, 67, 69, 67, 65, 64, 62, 60)
NOTE_IOI = 0.6  # seconds between onsets at tempo 1.
NOTE_DURATION = 0.54  # sung length of each note at tempo 1 (a short breath between).
NOTE_START = 0.4
NOTE_SECONDS = NOTE_START + NOTE_IOI * len(NOTE_PITCHES) + 0.6


def note_melody(*, detune: dict | None = None, early: dict | None = None,
                warp=None, latency_s: float = 0.0, seed: int = 0) -> np.ndarray:
  """float32 audio of NOTE_PITCHES sung with known per-note errors.

  Args:
    detune: {note index: cents} sung off by that many cents (a wrong note is a
      detune of 100 cents or more).
    early: {note index: seconds} that note starts this much earlier (> 0) or later
      (< 0); the previous note is shortened (lengthened), the note ends in time.
    warp: a smooth monotone map of score time (s) to sung time (s): rubato; every
      onset and offset goes through it.
    latency_s: silence prepended (a microphone's latency).
    seed: breath noise and vibrato phase.
  """
  detune, early = detune or {}, early or {}
  warp = warp or (lambda t: t)
  notes = []
  for i, midi in enumerate(NOTE_PITCHES):
    onset = NOTE_START + NOTE_IOI * i
    offset = onset + NOTE_DURATION
    if i + 1 in early:  # the next note enters early: this one stops earlier.
      offset -= early[i + 1]
    onset -= early.get(i, 0.0)
    a, b = float(warp(onset)), float(warp(offset))
    notes.append(synth_voice.Note(onset=a, duration=b - a, midi=midi,
                                  offset_cents=float(detune.get(i, 0.0)),
                                  vowel=i % 5))
  total = float(warp(NOTE_SECONDS))
  audio = synth_voice.render_voice(notes, synth_voice.Voice(vibrato_depth=20.0),
                                   total_seconds=total, rng=np.random.default_rng(seed))
  if latency_s:
    audio = np.concatenate([np.zeros(int(round(latency_s * SAMPLE_RATE)), np.float32),
                            audio])
  return audio


def rubato(t):
  """A smooth tempo change (score time -> sung time, seconds): the tempo slows from 1
  to 0.8 along the melody, with a push and pull of +-0.3 s over 16 s (tempo
  +-12 %)."""
  t = np.asarray(t, np.float64)
  return t + 0.25 * t * t / (2 * NOTE_SECONDS) + 0.3 * np.sin(2 * np.pi * t / 16.0)


OTHER_PITCHES = (67, 67, 74, 74, 76, 76, 74, 72, 72, 71, 71, 69, 69, 67)


def other_melody(seed: int = 2) -> np.ndarray:
  """float32 audio of a different song (Twinkle Twinkle in G), about as long as
  `note_melody` and in its range."""
  notes = [synth_voice.Note(onset=0.4 + 0.7 * i, duration=0.62, midi=m - 5,
                            vowel=i % 5) for i, m in enumerate(OTHER_PITCHES)]
  return synth_voice.render_voice(notes, synth_voice.Voice(vibrato_depth=20.0),
                                  total_seconds=NOTE_SECONDS,
                                  rng=np.random.default_rng(seed))
