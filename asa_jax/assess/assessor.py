"""Score one recording against its reference: `Assessor` -> `Assessment`.

    assessor = Assessor.from_workdir("runs/demo")           # any learned system
    result = assessor.assess("singer.wav", "original_vocal.wav")
    result.score, result.segments[0].flags, result.to_dict()

The overall score is the system's own performance score (paper 3.2.3: the mean clip
score over the voiced 3 s segments, cut and paired exactly as the evaluation cuts
them, `input_pipeline.segments.plan_segments`), mapped to 0..100 by the run's
calibration (`asa_jax.evaluation.calibration`). The feedback comes from the two
recordings' CREPE f0 contours aligned by `asa_jax.assess.alignment` (key offset, tempo
ratio, DTW time map): one `NoteFeedback` per reference note (`asa_jax.assess.notes`:
cents and timing error, wrong note / sharp / flat / early / late) and one
`SegmentFeedback` per 3 s window of the performance (the system's clip scores there,
voicing, and its notes' flags). A performance that does not follow the reference's
melody (`asa_jax.assess.confidence`) raises `NotSameMelodyError` before any scoring.
Nothing here names a system: learned systems score through their model's
`score_clips` (asa_jax.evaluation.scoring), baselines through their rating function.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any, Union

import numpy as np

from asa_jax.assess import alignment as alignment_lib
from asa_jax.assess import confidence as confidence_lib
from asa_jax.assess import contour_comparator
from asa_jax.assess import errors
from asa_jax.assess import fused as fused_lib
from asa_jax.assess import notes as notes_lib
from asa_jax.assess import refcache
from asa_jax.evaluation import calibration as calibration_lib
from asa_jax.features import audio as audio_lib
from asa_jax.features import constants

# A performance or reference: a path, or (samples (n,) or (n, channels), Hz).
AudioInput = Union[str, os.PathLike, tuple]
AudioError = audio_lib.AudioError
# An on-disk reference cache: a folder, a refcache.ReferenceCache, or None.
ReferenceCacheArg = Union[str, os.PathLike, refcache.ReferenceCache, None]
log = logging.getLogger("asa_jax.assess")

SEGMENT_SECONDS = constants.CLIP_SECONDS  # feedback windows: 3 s, the clip length.
MIN_LAST_SEGMENT_SECONDS = 1.0  # a shorter tail is merged into no segment.
MIN_ALIGNED_SECONDS = 0.5  # voiced, aligned time a segment needs for pitch/timing.
UNVOICED_FRACTION = 0.2  # segments with fewer voiced frames are "unvoiced".
SILENT_DB = 40.0  # segments quieter than the loudest frame by this are "silent".
LENGTH_WARNING = 0.25  # warn when the durations differ by more than this fraction.
FEEDBACK_CAPACITY = "tiny"  # CREPE model of the feedback's pitch contours.
# Their frame period: 512 samples = 32 ms, the clip features' rate (3.2x less CREPE
# than the baselines' 10 ms; the flags' thresholds are 50 cents and 0.2 s).
FEEDBACK_HOP = 512


@dataclasses.dataclass(frozen=True)
class SegmentFeedback:
  """Feedback on one 3 s window of the performance.

  Attributes:
    start_s, end_s: the window in the performance, seconds.
    reference_start_s, reference_end_s: where it maps in the reference (seconds;
      the global time map plus the window's lag, clipped to the reference), None
      without a reference vocal.
    score: calibrated score (0..100) of the system's clips centred in the window,
      None when none is (unvoiced windows are not scored).
    raw: the same clips' mean raw score, None likewise.
    pitch_deviation_cents: median pitch of the performance (after the key
      offset) minus the reference's along the alignment, cents; None when under
      MIN_ALIGNED_SECONDS is voiced in both (a window summary: a single wrong
      note shows in its NoteFeedback, not here).
    timing_offset_s: median time by which the window is sung later (> 0) or
      earlier (< 0) than the global tempo and latency predict, seconds (rubato
      shows here; the notes' timing errors follow the local tempo).
    voiced_fraction: fraction of the window's contour frames that are voiced.
    flags: "unvoiced" or "silent", else the union of the flags of the notes whose
      performance onset lies in the window (`notes.NOTE_FLAGS`).
  """
  start_s: float
  end_s: float
  reference_start_s: float | None
  reference_end_s: float | None
  score: float | None
  raw: float | None
  pitch_deviation_cents: float | None
  timing_offset_s: float | None
  voiced_fraction: float
  flags: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class PitchCurves:
  """Pitch curves for plots on the performance's time axis (contour frames).

  Attributes:
    times_s: float64 (T,) performance times, seconds.
    performance_midi: float64 (T,) performance pitch moved to the reference key
      (MIDI note numbers; nan where unvoiced).
    reference_midi: float64 (T,) the reference's pitch at the aligned time (nan
      where unvoiced or without a reference vocal).
  """
  times_s: np.ndarray
  performance_midi: np.ndarray
  reference_midi: np.ndarray


@dataclasses.dataclass(frozen=True)
class Assessment:
  """The result of `Assessor.assess`.

  Attributes:
    score: calibrated score, 0..100 (higher = better).
    raw: the system's own performance score (cosine similarity for triplet
      systems, predicted score for regression systems, rating for baselines).
    system: the system's name.
    key_offset_semitones: performance minus reference key, semitones in [-6, 5];
      None without a reference vocal.
    tempo_ratio: reference seconds per performance second (1 = same tempo, < 1 =
      the performance is slower); None without a reference vocal.
    latency_s: how much later (s) the performance runs than the reference: the
      performance time of reference time 0 on the global time map. A microphone's
      latency shows here (+), not as late notes; so does any extra lead-in before
      the singing. None likewise.
    duration_s, reference_duration_s: the recordings' durations, seconds.
    segments: one SegmentFeedback per 3 s window of the performance.
    warnings: human-readable problems that did not stop the assessment.
    calibration: the calibration method ('logistic' | 'isotonic' | 'minmax').
    pitch: the aligned pitch curves (for plots; left out of `to_dict`).
    key_offset_cents: performance minus reference key, cents, octaves folded to
      [-600, 600) (not rounded); None without a reference vocal.
    notes: one NoteFeedback per reference note (empty without a reference).
    alignment: how well the performance follows the reference's melody
      (`confidence.AlignmentConfidence`); None without a reference.
    contributions: "why this score": each term's `fused.TermContribution` to a
      fused score (the default scorer), largest first; empty for other systems.
  """
  score: float
  raw: float
  system: str
  key_offset_semitones: int | None
  tempo_ratio: float | None
  latency_s: float | None
  duration_s: float
  reference_duration_s: float | None
  segments: tuple[SegmentFeedback, ...]
  warnings: tuple[str, ...]
  calibration: str
  pitch: PitchCurves | None = dataclasses.field(default=None, repr=False)
  key_offset_cents: float | None = None
  notes: tuple[notes_lib.NoteFeedback, ...] = ()
  alignment: confidence_lib.AlignmentConfidence | None = None
  contributions: tuple[fused_lib.TermContribution, ...] = ()

  def to_dict(self) -> dict:
    """JSON-ready dict of everything but the pitch curves (floats rounded)."""
    def clean(v):
      if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
      if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
      if isinstance(v, dict):
        return {k: clean(x) for k, x in v.items()}
      return v
    d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
         if f.name not in ("segments", "pitch", "notes", "alignment",
                           "contributions")}
    d["segments"] = [dataclasses.asdict(s) for s in self.segments]
    d["notes"] = [dataclasses.asdict(n) for n in self.notes]
    d["alignment"] = None if self.alignment is None else self.alignment.to_dict()
    d["contributions"] = [dataclasses.asdict(t) for t in self.contributions]
    return clean(d)

  @classmethod
  def from_dict(cls, d: dict, pitch: PitchCurves | None = None) -> "Assessment":
    """The Assessment of a `to_dict` result (floats as rounded there; None where
    to_dict wrote a non-finite float), with `pitch` given separately.

    Raises:
      KeyError / TypeError: d is not a to_dict result of this version.
    """
    d = dict(d)
    tupled = lambda x: {**x, "flags": tuple(x["flags"])}
    d["segments"] = tuple(SegmentFeedback(**tupled(x)) for x in d["segments"])
    d["notes"] = tuple(notes_lib.NoteFeedback(**tupled(x)) for x in d["notes"])
    if d.get("alignment") is not None:
      fields = {f.name for f in dataclasses.fields(confidence_lib.AlignmentConfidence)}
      d["alignment"] = confidence_lib.AlignmentConfidence(
          **{k: v for k, v in d["alignment"].items() if k in fields})
    d["contributions"] = tuple(fused_lib.TermContribution(**x)
                               for x in d["contributions"])
    d["warnings"] = tuple(d["warnings"])
    return cls(**d, pitch=pitch)


def load_input(value: AudioInput, *, role: str) -> tuple[np.ndarray, str]:
  """A path or (samples, sample_rate) -> (float32 (n,) 16 kHz mono, its name).

  Args:
    value: a file path (any format `asa_jax.features.audio.load_audio` reads), or a
      (samples, sample_rate) tuple, samples (n,) or (n, channels) float in [-1, 1]
      or integer PCM.
    role: "performance" | "reference" | "accompaniment", names arrays in errors.

  Raises:
    AudioError: naming the file (or "<role array>") and the reason: missing,
      unreadable, empty, silent, non-finite, shorter than one 3 s clip, or a
      sample rate under audio.MIN_SAMPLE_RATE (8 kHz).
    TypeError: neither a path nor a (samples, sample_rate) pair.
  """
  if isinstance(value, (str, os.PathLike)):
    return (audio_lib.load_audio(value, min_seconds=constants.CLIP_SECONDS,
                                 min_sample_rate=audio_lib.MIN_SAMPLE_RATE),
            os.fspath(value))
  if isinstance(value, tuple) and len(value) == 2:
    name = f"<{role} array>"
    samples, rate = value
    return (audio_lib.prepare_samples(np.asarray(samples), int(rate), name=name,
                                      min_seconds=constants.CLIP_SECONDS,
                                      min_sample_rate=audio_lib.MIN_SAMPLE_RATE),
            name)
  raise TypeError(f"{role} must be a path or a (samples, sample_rate) tuple, not "
                  f"{type(value).__name__}")


class _Learned:
  """A trained system: its clip scores of one (performance, reference) pair."""

  def __init__(self, config, model, variables, stats):
    from asa_jax import systems  # pylint: disable=g-import-not-at-top
    from asa_jax.evaluation import scoring  # pylint: disable=g-import-not-at-top
    self.config, self.stats = config, stats
    self.system = systems.get(config)
    self.name = str(config.name or config.system)
    self.reference_kind = self.system.reference  # 'original' | 'accompaniment' | None
    self.model, self.variables = model, variables
    self.embed = scoring.make_embed_fn(model, variables)  # compiled once, reused.
    self._ref_cache: tuple[str, dict] = ("", {})  # (reference digest, start -> feats)
    self.reference_cache = None  # a refcache.ReferenceCache, set by the Assessor.

  def clip_feature_settings(self) -> dict:
    """What the reference's clip features depend on besides the samples and the
    clip start (refcache key): the system, config.features, the clip shape."""
    return {"system": self.name, "clip_features": self.config.features.to_dict(),
            "feature_shape": list(constants.FEATURE_SHAPE),
            "clip_seconds": constants.CLIP_SECONDS,
            "sample_rate": constants.SAMPLE_RATE}

  def reference_settings(self) -> dict:
    """What `contours` depends on besides the samples (refcache key)."""
    return {"system": self.name, **refcache.contour_settings(
        "stream_contours", FEEDBACK_CAPACITY, FEEDBACK_HOP)}

  def contours(self, audio: np.ndarray):
    """Feedback contours: 32 ms frames, in chunks (bounded memory)."""
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    return contours_lib.stream_contours(audio, capacity=FEEDBACK_CAPACITY,
                                        hop_length=FEEDBACK_HOP)

  def score(self, perf, ref, acc, perf_c, ref_c, melody, perf_name):
    """(raw, clip starts (s), raw clip scores): the mean clip score (paper 3.2.3)."""
    del perf_c, ref_c
    model_ref = acc if self.reference_kind == "accompaniment" else ref
    if model_ref is None:  # No-reference systems: the input is not read.
      model_ref = perf
    transposition = 0
    if self.config.data.key_align == "shift":
      if melody is not None and self.reference_kind == "original":
        transposition = melody.key_offset_semitones
      else:
        from input_pipeline import segments as segments_lib  # pylint: disable=g-import-not-at-top
        transposition = segments_lib.estimate_transposition(perf, model_ref)
    starts, clip_raw = self.clip_scores(perf, model_ref, transposition)
    if not len(clip_raw):
      raise AudioError(perf_name, "no voice found (no voiced 3 s segment)")
    return float(np.mean(clip_raw)), starts, clip_raw

  def clip_scores(self, perf: np.ndarray, ref: np.ndarray, transposition: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(clip starts (s), raw clip scores) of the voiced 3 s segments (paper 3.3).

    Features are extracted in batches of data.extract_batch_size clips, so memory
    does not grow with the recording's length; the reference's clip features are
    kept for the next call with the same reference, and in `reference_cache` when
    set (read at the first call with a reference, rewritten when it grew).
    """
    from asa_jax.evaluation import scoring  # pylint: disable=g-import-not-at-top
    from asa_jax.features.extract import clip_at  # pylint: disable=g-import-not-at-top
    from input_pipeline import shard as shard_lib  # pylint: disable=g-import-not-at-top
    from input_pipeline import segments as segments_lib  # pylint: disable=g-import-not-at-top
    segs = segments_lib.plan_segments(perf, ref, self.config,
                                      transposition=transposition)
    if not segs:
      return np.zeros(0), np.zeros(0)
    digest = refcache.samples_sha256(ref)
    cache = getattr(self, "reference_cache", None)
    settings = (None if cache is None else
                refcache.settings_fingerprint(self.clip_feature_settings()))
    if self._ref_cache[0] != digest:
      stored = None if cache is None else cache.load_clip_features(digest, settings)
      self._ref_cache = (digest, stored or {})
    ref_feats = self._ref_cache[1]
    known = len(ref_feats)
    batch = int(self.config.data.extract_batch_size)

    def stream():
      for i in range(0, len(segs), batch):
        part = segs[i:i + batch]
        todo = sorted({s.reference_start for s in part} - set(ref_feats))
        # float16 like the stored records the calibration was fitted on.
        feats = shard_lib.extract_batched(
            [clip_at(perf, s.start) for s in part] + [clip_at(ref, t) for t in todo],
            self.config)
        ref_feats.update(zip(todo, feats[len(part):]))
        for s, f in zip(part, feats[:len(part)]):
          yield ({"song_id": "", "performance_id": "", "score": None,
                  "transposition": int(transposition)}, f, ref_feats[s.reference_start])

    clips = scoring.embed_clips(
        self.model, self.variables,
        scoring.prepare_segments(stream(), self.stats, self.config),
        batch_size=int(self.config.eval.batch_size), embed=self.embed)
    if cache is not None and len(ref_feats) > known:
      try:
        cache.store_clip_features(digest, settings, ref_feats)
      except OSError as e:  # costs speed, not the score.
        log.warning("reference cache %s not written: %s", cache.directory, e)
    return np.array([s.start for s in segs]), np.asarray(clips.similarity, np.float64)


class _Baseline:
  """A rule-based baseline's rating of the whole performance (paper 4.2)."""

  def __init__(self, name: str):
    from asa_jax.baselines import score as score_lib  # pylint: disable=g-import-not-at-top
    self.name = name
    self.rate = score_lib.rating_function(name)  # Raises on unknown names.
    self.reference_kind = "original" if score_lib.needs_reference(name) else None

  def reference_settings(self) -> dict:
    """What `contours` depends on besides the samples (refcache key)."""
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    return {"system": self.name, **refcache.contour_settings(
        "extract_contours", FEEDBACK_CAPACITY, contours_lib.HOP_LENGTH)}

  def contours(self, audio: np.ndarray):
    """The contours the baseline was evaluated on (10 ms, with onsets)."""
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    return contours_lib.extract_contours(audio, capacity=FEEDBACK_CAPACITY)

  def score(self, perf, ref, acc, perf_c, ref_c, melody, perf_name):
    """(rating, no clips, no clips)."""
    del perf, ref, acc, melody
    try:
      return float(self.rate(perf_c, ref_c)), np.zeros(0), np.zeros(0)
    except ValueError as e:
      raise AudioError(perf_name, f"no voice found ({e})") from e


class Assessor:
  """Scores performances against references with one system and its calibration.

  Build it with `default()` (the fusion of a contour comparator and measured
  terms shipped with the package: no workdir, no training), `from_workdir` (a trained
  learned system, a contour system's included) or
  `from_baseline` (a rule-based baseline by name). `assess` is reentrant; the
  compiled model, the CREPE networks and the last reference's samples and
  analysis are kept between calls. With a `reference_cache` folder (every
  constructor takes one) each reference's contours are computed once and kept on
  disk, keyed by its decoded samples and the scorer's feature settings (issue 20,
  part 2).
  """

  def __init__(self, scorer: Any, calibration: calibration_lib.Calibration, *,
               reference_cache: ReferenceCacheArg = None):
    self._scorer = scorer
    self.calibration = calibration
    self.name = scorer.name
    self.reference_cache = reference_cache
    self._ref_contours: tuple[str, Any] = ("", None)  # (samples sha256, Contours)
    self._ref_decoded: tuple[Any, Any] = (None, None)  # (file key, (audio, name))

  @property
  def reference_cache(self) -> refcache.ReferenceCache | None:
    """The on-disk reference cache (issue 20, part 2), or None (memory only).

    Set it to a folder (str or PathLike), a `refcache.ReferenceCache` or None. A hit
    skips the reference's contour computation (CREPE, energy, onsets) and, for a
    learned system, its clip features; the key is the SHA-256 of the decoded
    samples and `reference_fingerprint` (the clip features: the system's
    config.features). Scorers without `reference_settings` (e.g. test doubles)
    never use it.
    """
    return self._reference_cache

  @reference_cache.setter
  def reference_cache(self, value: ReferenceCacheArg) -> None:
    if value is not None and not isinstance(value, refcache.ReferenceCache):
      value = refcache.ReferenceCache(value)
    self._reference_cache = value
    if isinstance(self._scorer, _Learned):  # its reference clip features too.
      self._scorer.reference_cache = value

  @property
  def reference_settings(self) -> dict | None:
    """The scorer's feature settings its reference contours depend on (system,
    contour function, CREPE capacity, hop in samples, sample rate in Hz, voicing
    and energy constants), or None when the scorer does not say."""
    settings = getattr(self._scorer, "reference_settings", None)
    return None if settings is None else settings()

  @property
  def reference_fingerprint(self) -> str | None:
    """16 hex digits of `reference_settings` and the contour libraries' versions
    (`refcache.settings_fingerprint`), or None likewise."""
    settings = self.reference_settings
    return None if settings is None else refcache.settings_fingerprint(settings)

  @classmethod
  def default(cls, directory: str | os.PathLike | None = None, *,
              reference_cache: ReferenceCacheArg = None) -> "Assessor":
    """The default scorer shipped with the package (`asa_jax.assess.fused`): the
    monotone fusion of the learned contour comparator's score and the measured
    terms, fitted on real human labels, with its centred isotonic calibration to 0-100.
    Needs no workdir and no training.

    Args:
      directory: a default-scorer folder (fusion.pkl + manifest.json); None is
        the one inside the package (fused.DEFAULT_DIR).
      reference_cache: a folder for references' contours on disk (the
        `reference_cache` attribute), or None.

    Raises:
      fused.DefaultScorerError: the files are missing or unreadable, or were
        pickled with another scikit-learn version than the installed one.
    """
    directory = fused_lib.DEFAULT_DIR if directory is None else os.fspath(directory)
    fusion, manifest = fused_lib.load_fusion(directory)
    comparator = fused_lib.load_comparator(directory, manifest)
    return cls(fused_lib.FusedScorer(fusion, manifest, comparator),
               fused_lib.calibration_of(fusion, manifest),
               reference_cache=reference_cache)

  @classmethod
  def from_workdir(cls, workdir: str | os.PathLike, *, config=None,
                   reference_cache: ReferenceCacheArg = None) -> "Assessor":
    """Loads a trained learned system (best checkpoint) and its calibration.

    A contour system's workdir (`configs/contour_rori.py`, ...: its config has a
    `contour` section) scores with its tower as a one-tower
    `contour_comparator.ContourComparator` on CREPE-tiny 10 ms contours
    (`contour_comparator.ContourScorer`; raw = cosine similarity); its
    calibration.json is written by its evaluation (`python -m
    asa_jax.evaluation.contour_scores --workdir=W`), not by training.

    Args:
      workdir: the training workdir (checkpoints/, stats.json, calibration.json;
        a contour workdir has no stats.json).
      config: its ConfigDict or config spec ("configs/rori.py:demo"); None reads
        WORKDIR/config.json (written by train.py).
      reference_cache: as in `default`.

    Raises:
      FileNotFoundError: no workdir, checkpoint, stats.json, config.json (when
        config is None) or calibration.json (train.py writes it at the end of
        training; running train.py again on a finished run writes it; for a
        contour workdir the error names the contour_scores command).
    """
    from asa_jax import config_specs  # pylint: disable=g-import-not-at-top
    from asa_jax.train import checkpoint  # pylint: disable=g-import-not-at-top
    from input_pipeline import records as records_lib  # pylint: disable=g-import-not-at-top
    workdir = os.fspath(workdir)
    if not os.path.isdir(workdir):
      raise FileNotFoundError(f"{workdir}: no such workdir")
    if config is None:
      config = config_specs.load_workdir_config(workdir)
    elif isinstance(config, str):
      config = config_specs.load_config(config)
    cal_path = os.path.join(workdir, calibration_lib.FILENAME)
    if contour_comparator.is_contour_config(config):
      if not os.path.isfile(cal_path):
        raise FileNotFoundError(
            f"{cal_path}: no calibration of this contour system; its evaluation "
            "writes it from the MAST selection melodies' jury grades: `python -m "
            f"asa_jax.evaluation.contour_scores --workdir={workdir}`")
      comparator = contour_comparator.ContourComparator.from_workdir(workdir, config)
      return cls(contour_comparator.ContourScorer(
          comparator, str(config.name or config.system)),
                 calibration_lib.load(cal_path), reference_cache=reference_cache)
    if not os.path.isfile(cal_path):
      raise FileNotFoundError(
          f"{cal_path}: no calibration; train.py writes it at the end of training "
          "(run the same train.py command again to add it to a finished run)")
    stats = records_lib.load_stats(os.path.join(workdir, "stats.json"))
    model, variables = checkpoint.restore_for_inference(config, workdir)
    return cls(_Learned(config, model, variables, stats),
               calibration_lib.load(cal_path), reference_cache=reference_cache)

  @classmethod
  def from_baseline(cls, name: str, *, calibration: str | os.PathLike,
                    reference_cache: ReferenceCacheArg = None) -> "Assessor":
    """A rule-based baseline (asa_jax.baselines names) with a calibration file.

    A baseline has no training run, so its calibration is fitted from an
    evaluation's scores: `python -m asa_jax.assess.calibrate --scores=
    EVAL/scores.csv --system=NAME --output=cal.json`. reference_cache: as in
    `default`.

    Raises:
      ValueError: unknown baseline name (lists the known ones).
      FileNotFoundError: no calibration file.
    """
    return cls(_Baseline(name), calibration_lib.load(calibration),
               reference_cache=reference_cache)

  # --- analysis ------------------------------------------------------------------

  def _contours(self, audio: np.ndarray, *, reference: bool):
    """The scorer's contours; a reference's come from memory (the last one), else
    the on-disk cache, else are computed (and stored there)."""
    if not reference:
      return self._scorer.contours(audio)
    digest = refcache.samples_sha256(audio)
    if self._ref_contours[0] == digest:
      return self._ref_contours[1]
    cache, settings = self.reference_cache, None
    if cache is not None:
      settings = self.reference_fingerprint
    contours = (None if settings is None else
                cache.load_contours(digest, settings))
    if contours is None:
      contours = self._scorer.contours(audio)
      if settings is not None:
        try:
          cache.store(digest, settings, contours)
        except OSError as e:  # A read-only or full disk costs speed, not the score.
          log.warning("reference cache %s not written: %s", cache.directory, e)
    self._ref_contours = (digest, contours)
    return contours

  def reference_contours(self, ref: np.ndarray):
    """The contours `assess_audio` computes of a reference, for callers that keep
    them (the service's on-disk reference cache, issue 21); from memory or
    `reference_cache` when they hold them.

    Args:
      ref: float32 (n,) 16 kHz mono audio (`load_input`).

    Returns:
      asa_jax.baselines.contours.Contours: CREPE f0 (Hz), confidence, energy (dB)
      on the scorer's frame grid (10 ms for baselines, 32 ms for learned systems).
    """
    return self._contours(np.asarray(ref, np.float32), reference=True)

  def assess(self, performance: AudioInput, reference: AudioInput | None = None, *,
             accompaniment: AudioInput | None = None) -> Assessment:
    """Scores one performance (module doc).

    Args:
      performance: the singer's recording: a path or (samples, sample_rate); any
        length >= 3 s, any rate, mono or stereo.
      reference: the original singer's vocal (needed by systems that compare with
        it, and for pitch and timing feedback).
      accompaniment: the backing track (needed by systems trained against it).

    Returns:
      The Assessment.

    Raises:
      AudioError: a bad input, naming the file and the reason (missing,
        unreadable, empty, silent, too short, a sample rate under
        audio.MIN_SAMPLE_RATE, or no voice found in the performance).
      NotSameMelodyError: the performance does not follow the reference's melody
        (names both; no score).
      ValueError: the system needs a reference (or accompaniment) that was not
        given.
      TypeError: an input is neither a path nor (samples, sample_rate).
    """
    perf, perf_name = load_input(performance, role="performance")
    ref, ref_name = (None, None) if reference is None else self._load_reference(
        reference)
    acc = None if accompaniment is None else load_input(
        accompaniment, role="accompaniment")[0]
    return self.assess_audio(perf, ref, acc, performance_name=perf_name,
                             reference_name=ref_name)

  def _load_reference(self, reference: AudioInput) -> tuple[np.ndarray, str]:
    """`load_input` of a reference; the last reference file's samples are kept, so
    a batch of singers against one song decodes it once. A file is the same while
    its path, size and modification time are."""
    if not isinstance(reference, (str, os.PathLike)):
      return load_input(reference, role="reference")
    path = os.fspath(reference)
    try:
      stat = os.stat(path)
      key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    except OSError:
      key = None  # load_input names the file and the reason.
    if key is None or self._ref_decoded[0] != key:
      self._ref_decoded = (key, load_input(path, role="reference"))
    return self._ref_decoded[1]

  def _check_inputs(self, reference, accompaniment) -> None:
    kind = self._scorer.reference_kind
    if kind == "original" and reference is None:
      raise ValueError(f"system {self.name} compares with the original vocal: give "
                       "reference=")
    if kind == "accompaniment" and accompaniment is None:
      raise ValueError(f"system {self.name} compares with the accompaniment: give "
                       "accompaniment=")

  def assess_audio(self, perf: np.ndarray, ref: np.ndarray | None = None,
                   acc: np.ndarray | None = None, *,
                   performance_name: str = "<performance array>",
                   reference_name: str | None = "<reference array>",
                   reference_contours=None) -> Assessment:
    """`assess` on audio already loaded by `load_input` (float32 (n,) 16 kHz mono);
    the names are used in errors and warnings (e.g. the files' paths).
    reference_contours: `reference_contours(ref)` computed earlier (kept by the
    caller), or None to compute them here.

    Raises:
      AudioError: no voice found in the performance (names performance_name).
      NotSameMelodyError: the performance does not follow the reference's melody.
      ValueError: the system needs a reference or accompaniment that is None.
    """
    self._check_inputs(ref, acc)
    perf_name, ref_name = performance_name, reference_name
    warnings: list[str] = []
    duration = len(perf) / constants.SAMPLE_RATE
    ref_duration = None if ref is None else len(ref) / constants.SAMPLE_RATE

    perf_c = self._contours(perf, reference=False)
    if perf_c.voiced.sum() * perf_c.hop_s < MIN_ALIGNED_SECONDS:
      raise AudioError(perf_name, "no voice found (under "
                       f"{MIN_ALIGNED_SECONDS} s of voiced singing)")
    melody = ref_c = agreement = None
    notes: tuple = ()
    if ref is not None:
      if ref_duration and abs(duration / ref_duration - 1) > LENGTH_WARNING:
        pct = round(100 * abs(1 - duration / ref_duration))
        warnings.append(f"performance {pct}% {'shorter' if duration < ref_duration else 'longer'} "
                        "than the reference")
      ref_c = (reference_contours if reference_contours is not None else
               self._contours(ref, reference=True))
      if ref_c.voiced.sum() * ref_c.hop_s < MIN_ALIGNED_SECONDS:
        warnings.append(f"reference has no voiced frames ({ref_name}): no pitch or "
                        "timing feedback")
      else:
        try:
          melody = alignment_lib.align(perf_c, ref_c)
          agreement = confidence_lib.measure(perf_c, ref_c, melody)
        except ValueError as e:
          # No DTW path between the two melodies (voiced lengths beyond the
          # tempo normalisation's reach): they cannot be the same melody.
          raise errors.NotSameMelodyError(
              perf_name, ref_name or "<reference>",
              reason=f"no alignment of the two melodies: {e}") from e
        if not agreement.same_melody:
          raise errors.NotSameMelodyError(perf_name, ref_name or "<reference>",
                                          agreement)
        notes = tuple(notes_lib.note_feedback(perf_c, ref_c, melody))
    else:
      warnings.append("no reference vocal given: no pitch or timing feedback")

    scored = self._scorer.score(perf, ref, acc, perf_c, ref_c, melody, perf_name)
    raw, clip_starts, clip_raw = scored[:3]
    contributions = tuple(scored[3]) if len(scored) > 3 else ()  # fused scorers.

    cal = self.calibration
    if not cal.human:
      warnings.append("calibration fitted without human scores (min-max of the "
                      "validation split)")
    lo, hi = cal.raw_range
    if not lo <= raw <= hi:
      warnings.append(f"raw score {raw:.4g} outside the calibration's range "
                      f"[{lo:.4g}, {hi:.4g}]")
    segments, lags = _segment_feedback(perf_c, ref_c, melody, duration, clip_starts,
                                       clip_raw, cal, notes)
    silent = sum("silent" in s.flags for s in segments)
    if silent:
      warnings.append(f"{silent} of {len(segments)} segments are silent")
    return Assessment(
        score=float(cal(raw)), raw=raw, system=self.name,
        key_offset_semitones=None if melody is None else melody.key_offset_semitones,
        tempo_ratio=None if melody is None else melody.tempo_ratio,
        latency_s=None if melody is None else -melody.latency_s / melody.tempo_ratio,
        duration_s=duration, reference_duration_s=ref_duration,
        segments=tuple(segments), warnings=tuple(warnings), calibration=cal.method,
        pitch=_pitch_curves(perf_c, ref_c, melody, segments, lags),
        key_offset_cents=None if melody is None else float(
            (-melody.offset_cents + 600.0) % 1200.0 - 600.0),
        notes=notes, alignment=agreement, contributions=contributions)


def _segment_feedback(perf_c, ref_c, melody, duration: float,
                      clip_starts: np.ndarray, clip_raw: np.ndarray, cal,
                      notes: tuple = ()
                      ) -> tuple[list[SegmentFeedback], list[float]]:
  """One SegmentFeedback per SEGMENT_SECONDS window of the performance, and each
  window's reference lag (s; 0 without a local fit) for the plot. A voiced window's
  flags are those of the notes starting in it (one source of truth: the notes)."""
  hop = perf_c.hop_s
  times = np.arange(perf_c.n_frames) * hop
  loudest = float(np.max(perf_c.energy_db)) if perf_c.energy_db is not None else 0.0
  starts = np.arange(0.0, duration, SEGMENT_SECONDS)
  if len(starts) > 1 and duration - starts[-1] < MIN_LAST_SEGMENT_SECONDS:
    starts = starts[:-1]
  centres = clip_starts + constants.CLIP_SECONDS / 2
  if melody is not None:
    perf_cents = alignment_lib.frame_cents(perf_c)
    ref_cents = alignment_lib.frame_cents(ref_c)
  out, lags = [], []
  for k, start in enumerate(starts):
    end = duration if k == len(starts) - 1 else min(start + SEGMENT_SECONDS, duration)
    in_win = (times >= start) & (times < end)
    voiced = float(perf_c.voiced[in_win].mean()) if in_win.any() else 0.0
    flags = []
    if perf_c.energy_db is not None and in_win.any() and (
        perf_c.energy_db[in_win].max() < loudest - SILENT_DB):
      flags.append("silent")
    elif voiced < UNVOICED_FRACTION:
      flags.append("unvoiced")
    mine = (centres >= start) & (centres < end)
    seg_raw = float(np.mean(clip_raw[mine])) if mine.any() else None
    fit = ref_start = ref_end = None
    if melody is not None:
      fit = alignment_lib.local_fit(perf_cents, ref_cents, hop, melody, start, end,
                                    MIN_ALIGNED_SECONDS)
      lag = fit.lag_s if fit is not None else 0.0
      ref_len = ref_c.n_frames * ref_c.hop_s
      ref_start, ref_end = (min(max(float(melody.local_reference(t)) + lag, 0.0),
                                ref_len) for t in (start, end))
      if not flags:
        in_window = {f for n in notes if start <= n.performance_onset_s < end
                     for f in n.flags}
        flags += [f for f in notes_lib.NOTE_FLAGS if f in in_window]
    lags.append(0.0 if fit is None else fit.lag_s)
    out.append(SegmentFeedback(
        start_s=float(start), end_s=float(end),
        reference_start_s=None if ref_start is None else float(ref_start),
        reference_end_s=None if ref_end is None else float(ref_end),
        score=None if seg_raw is None else float(cal(seg_raw)), raw=seg_raw,
        pitch_deviation_cents=None if fit is None else fit.deviation_cents,
        timing_offset_s=None if fit is None else fit.timing_offset_s,
        voiced_fraction=voiced, flags=tuple(flags)))
  return out, lags


def _pitch_curves(perf_c, ref_c, melody, segments, lags) -> PitchCurves:
  """Performance pitch in the reference key and the reference's pitch at the time
  each window was compared with (local map + the window's lag), MIDI numbers."""
  times = np.arange(perf_c.n_frames) * perf_c.hop_s
  midi = lambda f: np.where(f > 0, 69.0 + 12.0 * np.log2(np.maximum(f, 1e-6) / 440.0),
                            np.nan)
  perf_midi = midi(np.asarray(perf_c.f0_hz, np.float64))
  ref_midi = np.full_like(perf_midi, np.nan)
  if melody is not None and ref_c is not None:
    perf_midi = perf_midi + melody.offset_cents / 100.0
    lag = np.zeros_like(times)
    for seg, seg_lag in zip(segments, lags):
      lag[(times >= seg.start_s) & (times < seg.end_s)] = seg_lag
    ref_t = melody.local_reference(times) + lag
    idx = np.round(ref_t / ref_c.hop_s).astype(int)
    inside = (idx >= 0) & (idx < ref_c.n_frames)
    ref_f0 = np.asarray(ref_c.f0_hz, np.float64)[np.clip(idx, 0, ref_c.n_frames - 1)]
    ref_midi = np.where(inside, midi(ref_f0), np.nan)
  return PitchCurves(times, perf_midi, ref_midi)


__all__ = ["Assessment", "Assessor", "AudioError", "PitchCurves", "SegmentFeedback",
           "load_input"]
