"""Clip representation of paper 3.1: audio -> (5, 96, 94) per 3 s clip.

Modules (imported explicitly; nothing is re-exported here so that importing
`asa_jax.features.constants` stays cheap): audio (load_audio, AudioError),
logmel, chroma, crepe, tempogram, extract (extract_features, clip_at),
keyshift (shift_pitch_channels).
"""
