"""In-memory batch sources with the TripletLoader / ClipLoader interface (for tests).

Global batch b of epoch e is a deterministic function of (seed, split, e, b); process
p of P gets rows [p*L, (p+1)*L) with L = global_batch / P, like the real loader. The
positive clips are the anchor plus a little noise and the negatives unrelated noise,
so the triplet loss can fall.
"""

import grain
import ml_collections
import numpy as np

from asa_jax.features import constants


class FakeTripletLoader:
  """Fake loader: `.epoch(e)` -> process-local batches, `.num_batches(e)`."""

  def __init__(self, split: str, config: ml_collections.ConfigDict, *,
               num_batches: int = 3, process_index: int = 0, process_count: int = 1,
               last_batch_rows: int | None = None):
    self.split = split
    self.channels = len(config.features.channels)
    self.global_batch = config.train.global_batch_size
    self.seed = config.seed
    self._n = num_batches
    self.p, self.count = process_index, process_count
    self.last_batch_rows = last_batch_rows  # Validation tail (padded by the loop).
    self.made: list[tuple[int, int]] = []  # (epoch, batch) of every batch made.

  def num_batches(self, epoch: int) -> int:
    return self._n

  def global_batch_at(self, epoch: int, b: int) -> dict:
    """The full global batch b of `epoch` (float32 (G, C, 96, 94) + mask (G,))."""
    rng = np.random.default_rng(
        [self.seed, 0 if self.split == "train" else 1, epoch, b])
    shape = (self.global_batch, self.channels, constants.N_BINS, constants.N_FRAMES)
    anchor = rng.standard_normal(shape, dtype=np.float32)
    positive = anchor + 0.3 * rng.standard_normal(shape, dtype=np.float32)
    negative = rng.standard_normal(shape, dtype=np.float32)
    return {"anchor": anchor, "positive": positive, "negative": negative,
            "mask": np.ones((self.global_batch,), np.float32)}

  def _local_batch(self, epoch: int, b: int) -> dict:
    self.made.append((epoch, b))
    rows = self.global_batch // self.count
    g = self.global_batch_at(epoch, b)
    local = {k: v[self.p * rows:(self.p + 1) * rows] for k, v in g.items()}
    if self.last_batch_rows is not None and b == self._n - 1:
      local = {k: v[:self.last_batch_rows] for k, v in local.items()}
      local.pop("mask")
    return local

  def epoch(self, epoch: int):
    """A checkpointable grain.DatasetIterator over the epoch's local batches."""
    ds = grain.MapDataset.range(self._n).map(lambda b: self._local_batch(epoch, b))
    return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=0)))


class FakeClipLoader(FakeTripletLoader):
  """Fake scored-clip loader (regression systems): batches {"performance",
  "reference", "target", "mask"}. The target (score units) is a function of the
  performance clip's mean (and, for the reference, of its distance), so it is
  learnable."""

  def global_batch_at(self, epoch: int, b: int) -> dict:
    """The full global batch b of `epoch`: features (G, C, 96, 94), target (G,)."""
    rng = np.random.default_rng(
        [self.seed, 0 if self.split == "train" else 1, epoch, b, 7])
    shape = (self.global_batch, self.channels, constants.N_BINS, constants.N_FRAMES)
    quality = rng.uniform(0.0, 1.0, self.global_batch).astype(np.float32)
    reference = rng.standard_normal(shape, dtype=np.float32)
    noise = rng.standard_normal(shape, dtype=np.float32)
    scale = (1.0 - quality)[:, None, None, None]
    performance = reference + scale * noise + quality[:, None, None, None]
    return {"performance": performance, "reference": reference,
            "target": 100.0 * quality, "mask": np.ones((self.global_batch,), np.float32)}


def tiny_config(arg: str = "small", system: str = "rori", *, blocks: int = 7):
  """A system config (configs/<system>.py:<arg>) shrunk for fast CPU tests (8 conv
  channels, 1 attention layer, 8-d embedding, head (8, 8)); blocks=4 uses 4 residual
  blocks with frequency stride 4 (96 -> 24 -> 6 -> 2 -> 1 rows) to compile faster."""
  import importlib  # pylint: disable=g-import-not-at-top
  c = importlib.import_module(f"configs.{system}").get_config(arg)
  c.model.head_hidden = (8, 8)
  c.model.conv_channels = (8,) * 7
  if blocks == 4:
    c.model.conv_channels = (8,) * 4
    c.model.conv_strides = ((4, 4), (4, 4), (4, 1), (4, 1))
  elif blocks != 7:
    raise ValueError(f"blocks must be 7 or 4, got {blocks}")
  c.model.attention_layers = 1
  c.model.attention_hidden = 16
  c.model.attention_heads = 2
  c.model.attention_mlp = 32
  c.model.embedding_dim = 8
  c.train.global_batch_size = 8
  c.train.learning_rate = 1e-3
  c.train.max_epochs = 2
  c.train.progress_bar = False
  return c


def factory(config, *, num_batches: int = 3, process_index: int = 0,
            process_count: int = 1, val_last_batch_rows: int | None = None):
  """loader_factory for train_and_evaluate: split -> FakeTripletLoader (triplet
  systems) or FakeClipLoader (regression systems)."""
  from asa_jax import systems  # pylint: disable=g-import-not-at-top
  cls = (FakeTripletLoader if systems.get(config).batch_kind == "triplet"
         else FakeClipLoader)

  def make(split):
    loader = cls(
        split, config, num_batches=num_batches if split == "train" else 2,
        process_index=process_index, process_count=process_count,
        last_batch_rows=None if split == "train" else val_last_batch_rows)
    make.loaders[split] = loader
    return loader
  make.loaders = {}  # split -> the latest loader made (tests read its `made`).
  return make
