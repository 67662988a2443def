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

A trained contour workdir is also a comparator of one tower
(`ContourComparator.from_workdir`), and `ContourScorer` scores with it inside
`Assessor.from_workdir` (issue 19, "`--workdir` still selects any trained system").
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


def is_contour_config(config) -> bool:
  """Whether a training config is a contour system's (it has configs/contour.py's
  `contour` section, as `config_specs.load_workdir_config` reads it)."""
  return "contour" in config


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

  @classmethod
  def from_workdir(cls, workdir: str, config=None) -> "ContourComparator":
    """The one-tower comparator of a trained contour system's workdir: its best
    checkpoint (else the latest), as `export_contour` would export it.

    Args:
      workdir: a `train.py --config=configs/contour_rori.py:small` run.
      config: its ConfigDict; None reads WORKDIR/config.json.

    Raises:
      FileNotFoundError: no config.json (when config is None) or no checkpoint.
      ValueError: a config that is not a contour system's (no `contour` section).
    """
    from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
    from asa_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
    if config is None:
      config = config_specs.load_workdir_config(workdir)
    if not is_contour_config(config):
      raise ValueError(f"{workdir}: system {config.system!r} is not a contour system")
    _, variables = checkpoint.restore_for_inference(config, workdir)
    return cls(config, [variables])

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


# The contours a workdir's comparator reads: the default scorer's (CREPE tiny, 10 ms
# frames, `baselines.contours.extract_contours`).
CONTOUR_CAPACITY = "tiny"


class ContourScorer:
  """An Assessor scorer (see assessor._Baseline) of one trained contour system: the
  comparator's pair score of the two recordings' CREPE-tiny 10 ms f0 contours.

  The raw score is the comparator's: the mean over windows of the tower's
  cosine similarity (`unit`; the predicted 0-100 score for a Delta system), higher
  = closer to the reference. No per-clip scores (the windows lie on the
  reference's time axis), so the segments carry no score; the notes, the alignment
  confidence and the refusal come from the Assessor as for every scorer.
  """

  def __init__(self, comparator: ContourComparator, name: str):
    from asa_jax.systems import regression  # pylint: disable=g-import-not-at-top
    self.comparator, self.name = comparator, name
    self.reference_kind = "original"
    self.unit = ("predicted score (0-100)" if isinstance(
        comparator.system, regression.RegressionSystem) else "cosine similarity")

  def reference_settings(self) -> dict:
    """What `contours` depends on besides the samples (refcache key)."""
    from asa_jax.assess import refcache  # pylint: disable=g-import-not-at-top
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    return {"system": self.name, **refcache.contour_settings(
        "extract_contours", CONTOUR_CAPACITY, contours_lib.HOP_LENGTH)}

  def contours(self, audio: np.ndarray):
    """The default scorer's contours (CREPE tiny, 10 ms, energy)."""
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    return contours_lib.extract_contours(audio, capacity=CONTOUR_CAPACITY)

  def score(self, perf, ref, acc, perf_c, ref_c, melody, perf_name):
    """(raw pair score, no clips, no clips); one DTW alignment of the two contours
    (for an aligned system), handed to the comparator.

    Raises:
      AudioError: too few voiced frames to compare the two contours.
    """
    from asa_jax.features import aligned_contour  # pylint: disable=g-import-not-at-top
    from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
    del perf, ref, acc, melody
    aligned = None
    try:
      if self.comparator.system.aligned:
        aligned = aligned_contour.aligned_contour(perf_c.f0_hz, ref_c.f0_hz,
                                                  hop_s=perf_c.hop_s)
    except ValueError as e:
      raise audio_lib.AudioError(perf_name, f"no voice found ({e})") from e
    raw = self.comparator.score(perf_c.f0_hz, ref_c.f0_hz, aligned=aligned)
    if not math.isfinite(raw):
      raise audio_lib.AudioError(perf_name, "no voice found (too few voiced frames "
                                 "to compare with the reference)")
    return raw, np.zeros(0), np.zeros(0)
