"""Corpus generators: each writes audio and a manifest.csv (input_pipeline/manifest.py).

  demo.py         the synthetic demo corpus of the README's main job (`python -m
                  input_pipeline.corpora.demo`), voices from synth_voice.py
  synth_voice.py  a formant-filtered synthetic singing voice (vibrato, breath, jitter)
  real.py         labelled degradations of real recordings (SSVD, MIR-1K voices)
  degrade.py      the degradations: pitch, timing, breathiness, noise (WORLD vocoder)
  ssvd.py         the SSVD corpus: references, performances and their judges' scores
  folds.py        leave-songs-out cross-validation folds of a manifest
"""
