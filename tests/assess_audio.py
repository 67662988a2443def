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
