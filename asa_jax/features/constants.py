"""Fixed shapes of the 5-channel clip representation (paper section 3.1)."""

SAMPLE_RATE = 16_000  # Hz; every clip is resampled to 16 kHz mono.
CLIP_SECONDS = 3.0  # seconds per clip (paper 3.1, citing Nakano et al. [20]).
CLIP_SAMPLES = 48_000  # samples per clip at SAMPLE_RATE.
HOP_LENGTH = 512  # samples between frames (32 ms).
N_FRAMES = 94  # 1 + CLIP_SAMPLES // HOP_LENGTH with centred frames.
N_BINS = 96  # rows of every channel.

# Channel names, in stacking order: log-mel spectrogram, chroma, circle-of-fifths
# chroma, CREPE activation, cyclic tempogram.
CHANNELS = ("spec", "chroma", "tchroma", "f0", "tempo")
N_CHANNELS = len(CHANNELS)
FEATURE_SHAPE = (N_CHANNELS, N_BINS, N_FRAMES)

# Channels whose rows are pitch; these move under key alignment.
PITCH_CHANNELS = ("chroma", "tchroma", "f0")
