"""Corpus generators and readers: each writes audio and a manifest.csv
(input_pipeline/manifest.py), or reads a real corpus's own files.

  demo.py         the synthetic demo corpus of the README's main job (`python -m
                  input_pipeline.corpora.demo`), voices from synth_voice.py
  synth_voice.py  a formant-filtered synthetic singing voice (vibrato, breath, jitter)
  real.py         labelled degradations of real recordings (SSVD, MIR-1K voices)
  degrade.py      the degradations: pitch, timing, breathiness, noise (WORLD vocoder)
  ssvd.py         the SSVD corpus: references, performances and their judges' scores
  folds.py        leave-songs-out cross-validation folds of a manifest
  mast_data.py    MASTmelody's f0 curves, jury grades and reference pairing
"""
