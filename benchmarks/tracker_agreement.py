r"""How closely the pitch student follows CREPE tiny on given recordings (issue 20).

  PYTHONPATH=. python benchmarks/tracker_agreement.py \
      demo_data/audio/song10/reference.wav demo_data/audio/song11/reference.wav \
      [--weights=asa_jax/features/pitch_student.npz]

For each file (`asa_jax.evaluation.tracker_agreement.agreement`), on the 10 ms frames
that both trackers call voiced and that are loud: the share within 50 cents of CREPE
tiny, the share an octave away (1200 +- 100 cents), and the median f0 of each tracker
in Hz. The demo synthesiser's voice is what
the first student misread (BUILD_NOTES, issue 20, "Reverted"); rule (d) of the
student's retraining asks >= 95 % within 50 cents on the main job's test references.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags

from asa_jax.evaluation import tracker_agreement
from asa_jax.features import audio as audio_lib
from asa_jax.features import pitch_student

_WEIGHTS = flags.DEFINE_string("weights", pitch_student.WEIGHTS, "Student weights (npz).")


def main(argv):
  if len(argv) < 2:
    raise app.UsageError("name one or more audio files")
  for path in argv[1:]:
    a = tracker_agreement.agreement(audio_lib.load_audio(path), weights=_WEIGHTS.value)
    print(f"{os.path.relpath(path)}: {a['frames']} frames voiced by both, "
          f"{100 * a['within_50']:.1f} % within 50 cents, {100 * a['octave']:.1f} % an "
          f"octave away; median f0 student {a['median_student_hz']:.1f} Hz, CREPE tiny "
          f"{a['median_crepe_hz']:.1f} Hz")


if __name__ == "__main__":
  app.run(main)
