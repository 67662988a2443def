"""The learned contour comparator of the default scorer (issue 18, 2 and 6; issue 19, 2).

An ensemble of trained contour towers (`asa_jax.systems.contour`, e.g. contour Rori
`:small` over seeds 0-2) that compares a performance's f0 contour with its
reference's: the performance is aligned to the reference by DTW
(`input_pipeline.aligned_input.real_pair_windows`), cut into windows of
config.contour.window_frames 10 ms frames, and each tower scores every window (the
cosine similarity of its embeddings for a triplet system). The pair's score is the
mean over windows and towers: one number, higher = closer to the reference, in
[-1, 1] for the triplet towers. It carries no timbre: only what was sung.

A comparator folder (written by `python -m asa_jax.experiments.export_contour`):

  config.json        the towers' training config (`config_specs.save_workdir_config`);
  tower_<k>.msgpack  tower k's inference variables {"params", "batch_stats"},
                     float32 (`flax.serialization.msgpack_serialize`).
"""

from __future__ import annotations

import glob
import hashlib
import math
import os

import numpy as np

CONFIG_FILE = "config.json"
TOWER_GLOB = "tower_*.msgpack"
# Windows are padded to a power of two (at least this many), so a new recording
# length recompiles only when it crosses a power of two.
MIN_BUCKET = 8


def fingerprint(directory: str) -> str:
  """16 hex digits of the SHA-256 of a comparator folder's files (names and bytes,
  in name order): the default scorer's manifest records it, and the fitting's
  cached scores are keyed by it."""
  h = hashlib.sha256()
  for name in sorted(os.listdir(directory)):
    h.update(name.encode())
    with open(os.path.join(directory, name), "rb") as f:
      h.update(f.read())
  return h.hexdigest()[:16]


def tower_file(k: int) -> str:
  """The file name of tower k in a comparator folder."""
  return f"tower_{k}.msgpack"


def save(directory: str, config, variables: list[dict]) -> list[str]:
  """Writes a comparator folder (module docstring) atomically; returns its files.

  Args:
    config: the towers' training ConfigDict (one config for every tower).
    variables: per tower {"params", "batch_stats"} pytrees (jax or numpy arrays).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from flax import serialization  # pylint: disable=g-import-not-at-top
  from asa_jax import atomic  # pylint: disable=g-import-not-at-top
  from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  for old in glob.glob(os.path.join(directory, TOWER_GLOB)):
    os.remove(old)
  paths = [config_specs.save_workdir_config(config, directory)]
  for k, v in enumerate(variables):
    state = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), dict(v))
    path = os.path.join(directory, tower_file(k))
    atomic.write_bytes(path, serialization.msgpack_serialize(state))
    paths.append(path)
  return paths


class ContourComparator:
  """An ensemble of contour towers scoring (performance, reference) f0 contours.

  Callable on the window arrays of `system.pair_inputs` (float32 (K, T) each):
  returns float32 (K,) window scores, the mean over towers. `score` takes whole
  f0 contours. Jitted once per tower and power-of-two window count.

  Attributes:
    config: the towers' training config; system: its `asa_jax.systems` System
      (for `pair_inputs`); window: T, frames at 100 Hz; n_towers.
  """

  def __init__(self, config, variables: list[dict]):
    import jax  # pylint: disable=g-import-not-at-top
    from asa_jax import systems  # pylint: disable=g-import-not-at-top
    if not variables:
      raise ValueError("a contour comparator needs at least one tower")
    self.config = config
    self.system = systems.get(config)
    self.window = int(config.contour.window_frames)
    self.n_towers = len(variables)
    model = systems.build_model(config)
    system = self.system

    def ensemble(stacked, *arrays):
      one = lambda v: system.score_inputs(model, v, *arrays)
      return jax.numpy.mean(jax.vmap(one)(stacked), axis=0)

    # The towers' variables stacked on a leading axis: one vmapped call scores
    # every window with every tower.
    self._stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *variables)
    self._fn = jax.jit(ensemble)

  @classmethod
  def load(cls, directory: str) -> "ContourComparator":
    """The comparator of a folder written by `save`.

    Raises:
      FileNotFoundError: no config.json or no tower file in `directory`.
      ValueError: a tower file that is not a msgpack state (names it), or a
        config field the code does not know.
    """
    from flax import serialization  # pylint: disable=g-import-not-at-top
    from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
    paths = sorted(glob.glob(os.path.join(directory, TOWER_GLOB)))
    if not paths:
      raise FileNotFoundError(f"{directory}: no contour tower ({TOWER_GLOB})")
    config = config_specs.load_workdir_config(directory)
    variables = []
    for path in paths:
      with open(path, "rb") as f:
        try:
          variables.append(serialization.msgpack_restore(f.read()))
        except Exception as e:  # msgpack raises its own types.
          raise ValueError(f"{path}: not a contour tower state ({e})") from e
    return cls(config, variables)

  def __call__(self, *arrays) -> np.ndarray:
    """float32 (K,) scores of K windows (mean over towers)."""
    k = len(arrays[0])
    if k == 0:
      return np.zeros(0, np.float32)
    bucket = max(MIN_BUCKET, 1 << (k - 1).bit_length())
    padded = [np.concatenate([a, np.repeat(a[:1], bucket - k, axis=0)])
              for a in (np.asarray(a, np.float32) for a in arrays)]
    return np.asarray(self._fn(self._stacked, *padded))[:k]

  def score(self, performance_f0_hz: np.ndarray, reference_f0_hz: np.ndarray, *,
            aligned=None) -> float:
    """The pair's score: mean over windows and towers; nan when either contour has
    too few voiced frames to align.

    Args:
      performance_f0_hz, reference_f0_hz: float (N,) / (M,) f0 in Hz at 10 ms
        frames (`baselines.contours.Contours.f0_hz`), 0 = unvoiced.
      aligned: their `features.aligned_contour.AlignedContour`, when the caller
        has it (the DTW, most of the time of a long pair, is then not run again).
    """
    from input_pipeline import aligned_input  # pylint: disable=g-import-not-at-top
    from input_pipeline import contour_pool  # pylint: disable=g-import-not-at-top
    if aligned is not None and not self.system.aligned:
      raise ValueError("an alignment was given to towers without aligned input")
    perf = contour_pool.hz_to_cents(np.nan_to_num(performance_f0_hz))
    ref = contour_pool.hz_to_cents(np.nan_to_num(reference_f0_hz))
    try:
      arrays = (self.system.pair_inputs(perf, ref, self.window) if aligned is None
                else aligned_input.real_pair_windows(perf, ref, self.window,
                                                     aligned=aligned))
    except ValueError:
      return math.nan
    return float(np.mean(self(*arrays)))
