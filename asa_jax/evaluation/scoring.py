"""Clip and performance scores of a trained learned system (paper 3.2.1-3.2.4).

Clip score: triplet systems (Rori, Racc) the cosine similarity described below;
regression systems (Direct, Delta, EmbDirect) the predicted score in score units
(0..100). Models with `score_clips(performance, reference, *, train)` (every
asa_jax.models model) are scored through it; modules with only `embed_performance` /
`embed_anchor` get the cosine of the two embeddings.

"Given the 128-dimension output of the model, the final assessment output is the
cosine similarity between the embedding of the given performance and the embedding
of its reference track" (paper 3.2.3). A performance is cut into 3 s clips (paper
3.3), so each clip gets the cosine similarity between the performance-tower embedding
of the clip and the anchor-tower embedding of the reference clip it is paired with,
and the performance score is the mean of its clip scores.

The flow is three plain functions:
  `prepare_segments`  records -> normalised model inputs (training statistics,
                      key shift, channel subset: the same transform as the loader);
  `embed_clips`       model inputs -> `ClipEmbeddings` (one jitted call per batch of
                      fixed size, so the embeddings stay available for figures);
  `aggregate_scores`  clip similarities -> one `PerformanceScore` per performance.
`score_performances` composes them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from asa_jax import losses
from asa_jax.models import fold_bn
from asa_jax.performance_score import PerformanceScore

# One item of a segment stream: (metadata, performance features, reference features).
# metadata holds at least song_id, performance_id, score (nan if none) and, with
# key alignment, transposition (semitones, performance minus reference).
Segment = tuple[Mapping[str, Any], np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True)
class ClipEmbeddings:
  """Embeddings of every scored clip, in stream order (N clips, D = embedding_dim).

  Attributes:
    metadata: N metadata dicts, as read from the records.
    performance: float32 (N, D) performance-tower embeddings (regression systems:
      their tower's embedding of the model input; Delta: of reference - performance).
    anchor: float32 (N, D) anchor-tower embeddings of the paired reference clips;
      (N, 0) for systems without an anchor tower (Direct, Delta, EmbDirect).
    similarity: float32 (N,) the clip score: cosine similarity of each row pair
      (triplet systems) or the predicted score (regression systems).
  """
  metadata: list[dict[str, Any]]
  performance: np.ndarray
  anchor: np.ndarray
  similarity: np.ndarray

  def __len__(self) -> int:
    return len(self.metadata)


def cosine_similarity(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  """Row-wise cosine similarity, paper 3.2.3 (-D(x, y)): the training loss's function.

  Args:
    x, y: float arrays (N, D).

  Returns:
    float32 (N,) numpy values in [-1, 1]; 0 where either row is all zeros.
  """
  return np.asarray(losses.cosine_similarity(jnp.asarray(x), jnp.asarray(y)))


def prepare_segments(segments: Iterable[Segment], stats: Mapping[str, Any],
                     config) -> Iterator[Segment]:
  """Turns stored (un-normalised, 5-channel) clips into model inputs.

  Applies exactly the training loader's transform (`input_pipeline.model_input.
  prepare_clips`): the performance clip is moved to the reference key when
  `config.data.key_align == 'shift'` (by -transposition semitones), then both clips
  are cut to `config.features.channels` and normalised with the training statistics.

  Args:
    segments: iterable of (metadata, performance, reference); features (5, 96, 94)
      any float dtype, channels in `constants.CHANNELS` order.
    stats: {"mean": [5 floats], "std": [5 floats], "channels": [5 names]}, the
      training statistics (WORKDIR/stats.json).
    config: the system's ConfigDict (features.channels, data.key_align).

  Yields:
    (metadata, performance, reference), features float32 (C, 96, 94), C = number
    of configured channels.

  Raises:
    ValueError: key_align == 'shift' and a record has no transposition; unknown
      key_align or channel (from the loader).
  """
  from input_pipeline import model_input  # pylint: disable=g-import-not-at-top
  shift = config.data.key_align == "shift"
  for metadata, performance, reference in segments:
    if shift and metadata.get("transposition") is None:
      raise ValueError(
          f"key_align='shift' but the record of {metadata.get('song_id')}/"
          f"{metadata.get('performance_id')} has no 'transposition'")
    transposition = [int(metadata.get("transposition") or 0)]
    performance = model_input.prepare_clips(np.asarray(performance)[None], stats,
                                            config, transpositions=transposition)[0]
    reference = model_input.prepare_clips(np.asarray(reference)[None], stats,
                                          config)[0]
    yield metadata, performance, reference


def make_embed_fn(model, variables) -> Callable[
    [np.ndarray, np.ndarray], tuple[jax.Array, jax.Array, jax.Array]]:
  """Returns one jitted function (performance, reference) -> (p_emb, a_emb, score).

  Calls `model.score_clips` with `train=False` (dropout off, batch statistics
  frozen) when the model has it, else `model.embed_performance` and
  `model.embed_anchor` and scores by cosine similarity. Both inputs are float32
  (B, C, 96, 94); outputs are (B, D), (B, D) or (B, 0), and (B,) float32. The function
  compiles once per input shape, so callers should feed one fixed batch size. It runs
  the inference graph: the towers' BatchNorms folded into their convolutions
  (`asa_jax.models.fold_bn`; the same embeddings within float32 rounding).
  """
  model, variables = fold_bn.fold(model, variables)
  uniform = callable(getattr(model, "score_clips", None))

  @jax.jit
  def embed(variables, performance, reference):
    if uniform:
      return model.apply(variables, performance, reference, train=False,
                         method="score_clips")
    p = model.apply(variables, performance, train=False, method="embed_performance")
    a = model.apply(variables, reference, train=False, method="embed_anchor")
    return p, a, losses.cosine_similarity(p, a)

  fn = lambda performance, reference: embed(variables, performance, reference)
  fn.jitted = embed  # For checks that repeated calls reuse the compiled code.
  fn.variables = variables  # The (folded) variables it runs on.
  return fn


def embed_clips(model, variables, segments: Iterable[Segment], *,
                batch_size: int, embed: Callable | None = None) -> ClipEmbeddings:
  """Embeds and scores every (performance clip, reference clip) pair of a stream.

  Clips are batched by `batch_size`; the last batch is zero-padded to the same size
  (padding rows are dropped) so the jitted embedding compiles exactly once.

  Args:
    model: a Flax module with `score_clips(performance, reference, *, train)` (every
      asa_jax.models model), or with `embed_performance(x, *, train)` and
      `embed_anchor(x, *, train)` ((B, C, 96, 94) -> (B, D)).
    variables: its variables ({"params": ..., maybe "batch_stats": ...}).
    segments: iterable of (metadata, performance, reference) model inputs, features
      float32 (C, 96, 94) already normalised (see `prepare_segments`).
    batch_size: clips per jitted call (config.eval.batch_size), > 0.
    embed: a `make_embed_fn(model, variables)` to reuse (its compiled code is
      kept between calls); None makes a new one.

  Returns:
    ClipEmbeddings of all clips in stream order (empty arrays (0, 0) if none).

  Raises:
    ValueError: batch_size <= 0, or clips of different shapes in one stream.
  """
  if batch_size <= 0:
    raise ValueError(f"batch_size must be > 0, got {batch_size}")
  embed = embed or make_embed_fn(model, variables)
  metadata: list[dict[str, Any]] = []
  perf_out: list[np.ndarray] = []
  anchor_out: list[np.ndarray] = []
  score_out: list[np.ndarray] = []
  perf_buf = ref_buf = None
  fill = 0

  def flush(count: int) -> None:
    p, a, score = embed(perf_buf, ref_buf)
    perf_out.append(np.asarray(p, np.float32)[:count])
    anchor_out.append(np.asarray(a, np.float32)[:count])
    score_out.append(np.asarray(score, np.float32)[:count])

  for meta, performance, reference in segments:
    if perf_buf is None:
      shape = np.shape(performance)
      perf_buf = np.zeros((batch_size, *shape), np.float32)
      ref_buf = np.zeros((batch_size, *shape), np.float32)
    if np.shape(performance) != perf_buf.shape[1:] or (
        np.shape(reference) != perf_buf.shape[1:]):
      raise ValueError(
          f"clip of {meta.get('song_id')}/{meta.get('performance_id')} has shapes "
          f"{np.shape(performance)} / {np.shape(reference)}; expected "
          f"{perf_buf.shape[1:]} like the first clip")
    perf_buf[fill] = performance
    ref_buf[fill] = reference
    metadata.append(dict(meta))
    fill += 1
    if fill == batch_size:
      flush(fill)
      fill = 0
  if fill:
    perf_buf[fill:] = 0.0
    ref_buf[fill:] = 0.0
    flush(fill)
  if not metadata:
    empty = np.zeros((0, 0), np.float32)
    return ClipEmbeddings([], empty, empty, np.zeros((0,), np.float32))
  return ClipEmbeddings(metadata, np.concatenate(perf_out), np.concatenate(anchor_out),
                        np.concatenate(score_out))


def human_score(value) -> float | None:
  """A record's human score ('score' of its metadata): float, or None when None/nan."""
  if value is None:
    return None
  value = float(value)
  return None if math.isnan(value) else value


def aggregate_scores(clips: ClipEmbeddings) -> list[PerformanceScore]:
  """Performance score = mean of its clip scores (paper 3.2.3; regression systems:
  mean predicted clip score).

  Args:
    clips: clip embeddings; metadata needs song_id, performance_id, score.

  Returns:
    One PerformanceScore per (song_id, performance_id), in order of first clip.

  Raises:
    ValueError: clips of one performance carry different human scores.
  """
  order: list[tuple[str, str]] = []
  sims: dict[tuple[str, str], list[float]] = {}
  human: dict[tuple[str, str], float | None] = {}
  for meta, sim in zip(clips.metadata, clips.similarity):
    key = (str(meta["song_id"]), str(meta["performance_id"]))
    score = human_score(meta.get("score"))
    if key not in sims:
      order.append(key)
      sims[key] = []
      human[key] = score
    elif score != human[key]:
      raise ValueError(f"performance {key[0]}/{key[1]} has clips with different "
                       f"human scores ({human[key]} and {score})")
    sims[key].append(float(sim))
  return [PerformanceScore(s, p, float(np.mean(sims[(s, p)])), human[(s, p)])
          for s, p in order]


def score_performances(model, variables,
                       segments: Iterable[Segment] | str | os.PathLike,
                       stats: Mapping[str, Any], config, *,
                       split: str | Sequence[str] = "test",
                       return_clips: bool = False):
  """Scores every performance of a record set with any learned system.

  Paper 3.2.3 (triplet: predicted = mean clip cosine similarity), 3.2.1 / 3.2.2 /
  3.2.4 (regression: predicted = mean predicted clip score, score units 0..100).

  Args:
    model: a model from asa_jax.systems.build_model / restore_for_inference (or any
      module with `score_clips`, or `embed_performance` + `embed_anchor`).
    variables: its restored variables.
    segments: a records_dir (read with `input_pipeline.loader.load_segments` for each
      split in `split`), or an iterable of (metadata, performance, reference) with
      stored, un-normalised 5-channel features (5, 96, 94).
    stats: training statistics {"mean", "std", "channels"} (WORKDIR/stats.json).
    config: the system's ConfigDict (features.channels, data.key_align,
      eval.batch_size).
    split: split name(s) to read when `segments` is a records_dir.
    return_clips: also return the ClipEmbeddings (for embedding figures).

  Returns:
    list[PerformanceScore] (tuples (song_id, performance_id, predicted, human)), or
    (scores, ClipEmbeddings) when return_clips.
  """
  if isinstance(segments, (str, os.PathLike)):
    from input_pipeline import loader  # pylint: disable=g-import-not-at-top
    records_dir = segments
    splits = [split] if isinstance(split, str) else list(split)
    segments = (item for s in splits for item in loader.load_segments(records_dir, s))
  clips = embed_clips(model, variables, prepare_segments(segments, stats, config),
                      batch_size=int(config.eval.batch_size))
  scores = aggregate_scores(clips)
  return (scores, clips) if return_clips else scores
