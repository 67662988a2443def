"""Shared config of the contour systems (issue 18): `configs/contour_rori.py`,
`contour_delta.py`, `contour_hinge_rank.py` call `get_config(system, arg)`.

Variants: "" (a 3-block 32/64/64 tower, 1 attention layer of 64, 64-d embedding,
batch 64) | "small" (CPU: 16/32/32 channels, attention 32, 32-d embedding, batch 32,
8 epochs of the pool's train windows, patience 4). Model selection and early stopping follow Pearson's r of
the scores of real graded MAST performances of `contour.selection_melodies` (the
pool's selection rows); those melodies are left out of every reported figure.
"""

import ml_collections

from configs import base

# input_pipeline.contour_pool.mast_selection_melodies of the 39 MASTmelody melodies:
# every 4th sorted melody from the 2nd.
SELECTION_MELODIES = ("510_mel2", "52_mel2", "54_mel2", "56_mel2", "58_mel2",
                      "61_mel1", "63_mel1", "65_mel1", "67_mel1", "69_mel1")


def get_config(system: str, arg: str | None, *, file: str) -> ml_collections.ConfigDict:
  """The config of contour system `system` for variant `arg` ("" or "small").

  Raises:
    ValueError: an unknown variant (names `file`).
  """
  arg = (arg or "").strip()
  if arg not in ("", "small"):
    raise ValueError(f"{file}: bad variant {arg!r}; valid: '' or 'small'")
  c = base.get_config()
  c.system = system
  c.data.reference = "original"
  c.contour = ml_collections.ConfigDict()
  c.contour.data_dir = "../shared/data"  # mir1k/, mast/, ssvd_v2/.
  c.contour.pool = ""  # "" = <workdir>/contour_pool.npz, built when missing.
  c.contour.window_frames = 640  # 6.4 s at 10 ms.
  c.contour.active_prob = 0.4  # Each error family present with this probability.
  c.contour.min_label_gap = 5.0  # Triplets / rank rows closer than this: mask 0.
  c.contour.selection_melodies = SELECTION_MELODIES
  # contour_rori only: the performance tower also sees the reference's channels
  # (stacked, time-proportional): BUILD_NOTES.md "levers" (issue 18).
  c.contour.stack_reference = False
  # Every contour system: the towers see the performance ALIGNED to the reference
  # (input_pipeline/aligned_input.py: exact time map in training, DTW on real pairs).
  # On (BUILD_NOTES.md, issue 18, "The aligned contour as the towers' input").
  c.contour.aligned = True
  # With contour.aligned: the std (frames) of a smooth (0.3 s) error added to the
  # exact time map in training, as the DTW of real pairs errs. 0 = exact.
  c.contour.align_jitter_frames = 0.0
  # With contour.aligned: the timing channels (residual offset, local tempo). Off:
  # real singers' timing against a reference is 10-20x what the degradations make
  # (rubato), so those channels are out of distribution on real pairs (BUILD_NOTES).
  c.contour.aligned_timing = False
  # Label-neutral rubato of the degradations: uniform 0..this std, seconds.
  c.contour.max_rubato_seconds = 0.0
  c.model.conv_channels = (32, 64, 64)
  c.model.attention_layers = 1
  c.model.attention_hidden = 64
  c.model.attention_heads = 4
  c.model.attention_mlp = 128
  c.model.dropout = 0.1
  c.model.embedding_dim = 64
  c.model.head_hidden = (64, 32)
  c.train.learning_rate = 1e-3
  c.train.global_batch_size = 64
  c.train.max_epochs = 60
  c.train.patience = 8
  c.train.selection_metric = "pearson"
  c.train.calibration = "minmax"
  if arg == "small":
    c.model.conv_channels = (16, 32, 32)
    c.model.attention_hidden = 32
    c.model.attention_mlp = 64
    c.model.embedding_dim = 32
    c.model.head_hidden = (32, 16)
    c.train.global_batch_size = 32
    c.train.max_epochs = 8
    c.train.patience = 4
    c.train.progress_bar = False
  return c
