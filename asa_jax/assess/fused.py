"""The default scorer shipped with the package: the fitted fusion of a learned
contour comparator and measured terms.

Issue 19, section 2 (issue 18, sections 5-6). `Assessor.default()` scores with it;
no workdir and no training. The fitted files live in DEFAULT_DIR
(asa_jax/assess/default_scorer/, package data):

  fusion.pkl     an `asa_jax.evaluation.fusion.Fusion` (monotone, fitted on real
                 labels only; pickle of scikit-learn objects);
  manifest.json  the training data, the feature list, the library versions, the
                 CREPE contours the features were read from, the CV figures and the
                 recipe (`python -m asa_jax.experiments.default_scorer ...`) that
                 rebuilds both;
  contour/       where MANIFEST["contour"] names it: the learned contour comparator
                 (`assess.contour_comparator`: trained contour towers), whose pair
                 score joins the terms as the feature `contour_score`.

A scoring reads both recordings' CREPE contours (MANIFEST["contours"]: the model
capacity and the 10 ms hop of the fitting tables), computes `baselines.pair_terms`
and the comparator's score, orients each term as its rating and feeds the
manifest's features to the fusion.
The raw score is on the 0-100 target scale; the calibration is the fusion's own
(centred) isotonic map to 0-100. Each term's contribution ("why this score",
`Fusion.contributions`: the raw score minus the raw score with that term set to
the training median, in points) comes back as `TermContribution`s.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from asa_jax.assess import refcache
from asa_jax.evaluation import calibration as calibration_lib
from asa_jax.evaluation import pooled_terms

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "default_scorer")
FUSION_FILE = "fusion.pkl"
MANIFEST_FILE = "manifest.json"
# The comparator's score among the fusion's features.
LEARNED_FEATURE = pooled_terms.LEARNED_COLUMN
LEARNED_UNIT = "cosine similarity"


@dataclasses.dataclass(frozen=True)
class TermContribution:
  """One term's part in a fused score ("why this score").

  Attributes:
    name: the term (asa_jax.baselines.pair_terms.TERMS).
    value: the term as measured, in `unit` (nan: could not be computed; the fusion
      then uses its missing-value branch).
    unit: its unit ('' for the dimensionless histogram measures).
    contribution: points of the raw 0-100 score this term moves the score by
      against a typical training performance (+ raises the score).
  """
  name: str
  value: float
  unit: str
  contribution: float


class DefaultScorerError(RuntimeError):
  """The shipped default scorer cannot be used (missing, mismatched, corrupt)."""


def read_manifest(directory: str = DEFAULT_DIR) -> dict:
  """The manifest.json of a default-scorer folder.

  Raises:
    DefaultScorerError: missing or not JSON (names the file).
  """
  path = os.path.join(directory, MANIFEST_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      return json.load(f)
  except (OSError, ValueError) as e:
    raise DefaultScorerError(f"{path}: cannot read the default scorer's manifest "
                             f"({e})") from e


def check_versions(manifest: dict, path: str) -> None:
  """Refuses a pickle made with another scikit-learn than the installed one.

  Raises:
    DefaultScorerError: the versions differ (says which and how to fix it).
  """
  import sklearn  # pylint: disable=g-import-not-at-top
  want = manifest.get("versions", {}).get("scikit-learn")
  if want != sklearn.__version__:
    raise DefaultScorerError(
        f"{path}: fitted with scikit-learn {want}, this environment has "
        f"{sklearn.__version__}; pickles are version-specific: install "
        f"scikit-learn=={want} (requirements-lock.txt) or rebuild it with "
        f"`{manifest.get('recipe', 'python -m asa_jax.experiments.default_scorer')}`")


def load_fusion(directory: str = DEFAULT_DIR):
  """(Fusion, manifest) of a default-scorer folder, after the version check.

  Raises:
    DefaultScorerError: missing files, a scikit-learn version other than the
      manifest's, or a fusion whose features differ from the manifest's.
  """
  from asa_jax.evaluation import fusion as fusion_lib  # pylint: disable=g-import-not-at-top
  manifest = read_manifest(directory)
  path = os.path.join(directory, FUSION_FILE)
  check_versions(manifest, path)
  try:
    fusion = fusion_lib.load(path)
  except (OSError, ValueError, EOFError, AttributeError, ImportError) as e:
    raise DefaultScorerError(f"{path}: cannot load the default scorer ({e})") from e
  if list(fusion.features) != list(manifest["features"]):
    raise DefaultScorerError(f"{path}: its features {list(fusion.features)} differ "
                             f"from {MANIFEST_FILE}'s {manifest['features']}")
  return fusion, manifest


def load_comparator(directory: str, manifest: dict):
  """The manifest's contour comparator (`contour_comparator.ContourComparator`), or
  None when the manifest names none.

  Raises:
    DefaultScorerError: the folder or its towers are missing or unreadable.
  """
  spec = manifest.get("contour")
  if not spec:
    return None
  from asa_jax.assess import contour_comparator  # pylint: disable=g-import-not-at-top
  folder = os.path.join(directory, spec["folder"])
  try:
    comparator = contour_comparator.ContourComparator.load(folder)
  except (OSError, ValueError, KeyError) as e:
    raise DefaultScorerError(f"{folder}: cannot load the default scorer's contour "
                             f"comparator ({e})") from e
  if comparator.n_towers != int(spec.get("towers", comparator.n_towers)):
    raise DefaultScorerError(f"{folder}: {comparator.n_towers} towers, the manifest "
                             f"says {spec['towers']}")
  return comparator


def calibration_of(fusion, manifest: dict) -> calibration_lib.Calibration:
  """The fusion's 0-100 map as an `evaluation.calibration.Calibration` ('isotonic'
  knots: np.interp of them equals the calibrator's predict with clipping, for the
  stepped and the centred isotonic map alike; the source names which)."""
  iso = fusion.calibrator
  x = np.asarray(iso.X_thresholds_, np.float64)
  y = np.asarray(iso.y_thresholds_, np.float64)
  lo, hi = manifest.get("raw_range", (float(x[0]), float(x[-1])))
  cv = manifest.get("cv", {}).get("pooled", {})
  return calibration_lib.Calibration(
      method="isotonic", params={"x": x.tolist(), "y": y.tolist()}, human=True,
      n=int(manifest.get("rows", 0)), raw_range=(float(lo), float(hi)),
      fit_metrics={"pearson_calibrated": cv.get("pearson", math.nan)},
      source=(f"default scorer fitted on {manifest.get('training_data', '?')}; "
              + ("centred " if manifest.get("calibration") == "centred" else "")
              + "isotonic map"))


class FusedScorer:
  """An Assessor scorer (see assessor._Baseline): the fusion of the pair's terms and,
  with a comparator, its learned contour score (feature LEARNED_FEATURE)."""

  def __init__(self, fusion, manifest: dict, comparator=None):
    if (LEARNED_FEATURE in manifest["features"]) != (comparator is not None):
      raise DefaultScorerError(
          f"the fusion's features {'include' if comparator is None else 'lack'} "
          f"{LEARNED_FEATURE}, but a comparator was "
          f"{'not ' if comparator is None else ''}given")
    self.fusion, self.manifest, self.comparator = fusion, manifest, comparator
    self.units = dict(manifest.get("units", {}))
    # The fusion saw the comparator's score standardised per corpus; a recording
    # is read as the product's f0 source (CREPE on audio) was.
    spec = manifest.get("contour") or {}
    stats = spec.get("standardise", {}).get(spec.get("product_source", ""), {})
    self.learned_mean = float(stats.get("mean", 0.0))
    self.learned_sd = float(stats.get("sd", 1.0))
    self.name = manifest.get("name", "default")
    self.reference_kind = "original"
    self.features = list(manifest["features"])
    self.capacity = manifest["contours"]["capacity"]
    self.hop_length = int(manifest["contours"]["hop_length"])
    # CREPE's own hop (extract_contours' network_hop): the frame hop unless the
    # manifest names a coarser one.
    self.network_hop = int(manifest["contours"].get("network_hop", self.hop_length))
    # The f0 tracker the fit's contours came from (contours.TRACKERS; CREPE unless
    # the manifest names another).
    self.tracker = str(manifest["contours"].get("tracker", "crepe"))

  def reference_settings(self) -> dict:
    """What `contours` depends on besides the samples (the refcache key)."""
    return {"system": self.name, **refcache.contour_settings(
        "extract_contours", self.capacity, self.hop_length, self.network_hop,
        self.tracker)}

  def contours(self, audio: np.ndarray):
    """The contours the fitting tables were read from (the manifest's tracker,
    10 ms, energy)."""
    from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
    if self.hop_length != contours_lib.HOP_LENGTH:
      raise DefaultScorerError(f"default scorer expects {self.hop_length}-sample "
                               f"frames; extract_contours uses {contours_lib.HOP_LENGTH}")
    return contours_lib.extract_contours(audio, capacity=self.capacity,
                                         network_hop=self.network_hop,
                                         tracker=self.tracker)

  def features_of(self, perf_c, ref_c) -> tuple[np.ndarray, dict]:
    """(float64 (1, d) ratings in the manifest's order, {term: measured value}); the
    comparator's score enters standardised by the manifest's statistics of the
    product's f0 source, and is reported as measured (cosine similarity)."""
    from asa_jax.baselines import pair_terms  # pylint: disable=g-import-not-at-top
    values, aligned = pair_terms.pair_terms_and_alignment(perf_c, ref_c)
    if self.comparator is not None:  # the terms' alignment: one DTW per pair.
      values[LEARNED_FEATURE] = (
          math.nan if aligned is None else
          self.comparator.score(perf_c.f0_hz, ref_c.f0_hz, aligned=aligned))
    x = np.array([[pair_terms.rating(n, values[n]) for n in self.features]])
    if self.comparator is not None:  # on the fitting's scale (manifest "contour").
      x[0, self.features.index(LEARNED_FEATURE)] = (
          (values[LEARNED_FEATURE] - self.learned_mean) / self.learned_sd)
    return x, values

  def score(self, perf, ref, acc, perf_c, ref_c, melody, perf_name):
    """(raw 0-100, no clips, no clips, TermContributions sorted by |contribution|)."""
    from asa_jax.baselines import pair_terms  # pylint: disable=g-import-not-at-top
    from asa_jax.features import audio as audio_lib  # pylint: disable=g-import-not-at-top
    del perf, ref, acc, melody
    x, values = self.features_of(perf_c, ref_c)
    if not np.isfinite(x).any():
      raise audio_lib.AudioError(perf_name, "no voice found (no measurable term)")
    raw = float(self.fusion.predict_raw(x)[0])
    contrib = self.fusion.contributions(x)[0]
    terms = sorted((TermContribution(
        n, values[n], self.units.get(n, pair_terms.UNITS.get(n, "")), float(c))
                    for n, c in zip(self.features, contrib)),
                   key=lambda t: -abs(t.contribution))
    return raw, np.zeros(0), np.zeros(0), tuple(terms)
