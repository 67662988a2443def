"""A monotone map from a system's raw performance score to the human 0-100 scale.

A raw score is a cosine similarity (triplet systems, paper 3.2.3) or a regression
output (3.2.1-3.2.4); neither reads as a mark. `fit` learns a non-decreasing map
raw -> [0, 100] from the validation split's (raw, human) pairs at the end of training
(`asa_jax.train.loop` writes WORKDIR/calibration.json; not in the paper, which reports
Pearson's r only):

  * 'linear' (default): y = a + b x with b >= 0 (scikit-learn's LinearRegression
    with positive=True), clipped to [0, 100]. Keeps Pearson's r of the raw scores
    exactly wherever nothing is clipped; with a weak validation correlation it
    shrinks the scores towards the mean (the least-squares answer), it does not
    invent a steep curve. Chosen as the default because validation splits are small
    (16 performances on the demo corpus; BUILD_NOTES.md, "Calibration").
  * 'logistic': y = lo + span * sigmoid(slope * (x - x0)), slope >= 0 and
    span >= 0, fitted by least squares (scipy.optimize.least_squares with bounds).
    Smooth and strictly increasing where slope > 0, so it keeps the ranking and,
    nearly, Pearson's r of the raw scores.
  * 'isotonic': scikit-learn's IsotonicRegression (increasing, clipped to [0, 100],
    out-of-range raw scores clipped to the fitted range); piecewise linear with flat
    steps, so ties can lower Pearson's r on small validation sets.
  * 'minmax': without human scores, raw min..max of the validation split -> 0..100
    (clipped). Documented fallback; `Calibration.human` is False.

Every map is non-decreasing in the raw score (tests/test_calibration.py checks it).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from asa_jax import atomic

METHODS = ("linear", "logistic", "isotonic", "minmax")
SCALE = (0.0, 100.0)  # The human scale of every corpus here (paper 4.1: 0..100).
FILENAME = "calibration.json"


@dataclasses.dataclass(frozen=True)
class Calibration:
  """A fitted non-decreasing map raw score -> calibrated score in [0, 100].

  Attributes:
    method: 'linear' | 'logistic' | 'isotonic' | 'minmax'.
    params: the method's parameters: linear {"intercept", "slope"}; logistic {"lo", "span", "slope", "x0"};
      isotonic {"x": [...], "y": [...]} (the knots, x ascending); minmax
      {"min", "max"}.
    human: whether it was fitted to human scores (False for 'minmax').
    n: number of (raw, human) pairs it was fitted on.
    raw_range: (min, max) raw score of the fitting data.
    fit_metrics: {"pearson_raw", "pearson_calibrated", "mae"} on the fitting data
      (nan without human scores).
    source: free text, e.g. "validation split of WORKDIR/records, step 1234".
  """
  method: str
  params: dict
  human: bool
  n: int
  raw_range: tuple[float, float]
  fit_metrics: dict = dataclasses.field(default_factory=dict)
  source: str = ""

  def __call__(self, raw) -> np.ndarray:
    """Calibrated scores of raw scores: float64 array of raw's shape, in [0, 100].

    Raises:
      ValueError: unknown method.
    """
    x = np.asarray(raw, np.float64)
    p = self.params
    if self.method == "linear":
      y = p["intercept"] + p["slope"] * x
    elif self.method == "logistic":
      z = p["slope"] * (x - p["x0"])
      y = p["lo"] + p["span"] / (1.0 + np.exp(-np.clip(z, -500, 500)))
    elif self.method == "isotonic":
      y = np.interp(x, p["x"], p["y"])
    elif self.method == "minmax":
      width = p["max"] - p["min"]
      y = (np.full_like(x, 50.0) if width <= 0 else
           (x - p["min"]) / width * (SCALE[1] - SCALE[0]) + SCALE[0])
    else:
      raise ValueError(f"unknown calibration method {self.method!r}; use one of "
                       f"{METHODS}")
    return np.clip(y, *SCALE)

  def to_dict(self) -> dict:
    """JSON-ready dict (`from_dict` inverts it)."""
    d = dataclasses.asdict(self)
    d["raw_range"] = list(self.raw_range)
    d["fit_metrics"] = {k: None if isinstance(v, float) and math.isnan(v) else v
                        for k, v in self.fit_metrics.items()}  # JSON has no nan.
    return d

  @classmethod
  def from_dict(cls, d: dict) -> "Calibration":
    """Inverse of `to_dict`.

    Raises:
      ValueError: a missing field or unknown method.
    """
    try:
      cal = cls(method=d["method"], params=dict(d["params"]), human=bool(d["human"]),
                n=int(d["n"]), raw_range=tuple(d["raw_range"]),
                fit_metrics={k: math.nan if v is None else v
                             for k, v in d.get("fit_metrics", {}).items()},
                source=d.get("source", ""))
    except (KeyError, TypeError) as e:
      raise ValueError(f"malformed calibration: {e!r}") from e
    if cal.method not in METHODS:
      raise ValueError(f"unknown calibration method {cal.method!r}; use one of {METHODS}")
    return cal


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
  """asa_jax.evaluation.pearson.pearson's r, nan where it is undefined."""
  from asa_jax.evaluation import pearson as pearson_lib  # pylint: disable=g-import-not-at-top
  r = pearson_lib.pearson(x, y).r
  return math.nan if r is None else float(r)


def metrics(cal: Calibration, raw: Sequence[float], human: Sequence[float]) -> dict:
  """{"n", "pearson_raw", "pearson_calibrated", "mae"} of a calibration on labelled
  scores (MAE in score units; nan where undefined). Uses scikit-learn's MAE."""
  from sklearn.metrics import mean_absolute_error  # pylint: disable=g-import-not-at-top
  raw = np.asarray(raw, np.float64)
  human = np.asarray(human, np.float64)
  keep = np.isfinite(raw) & np.isfinite(human)
  raw, human = raw[keep], human[keep]
  if not len(raw):
    return {"n": 0, "pearson_raw": math.nan, "pearson_calibrated": math.nan,
            "mae": math.nan}
  calibrated = cal(raw)
  return {"n": int(len(raw)), "pearson_raw": _pearson(raw, human),
          "pearson_calibrated": _pearson(calibrated, human),
          "mae": float(mean_absolute_error(human, calibrated))}


def _fit_logistic(x: np.ndarray, y: np.ndarray) -> dict:
  import scipy.optimize  # pylint: disable=g-import-not-at-top
  spread = float(np.std(x)) or 1.0
  # Start from the least-squares line: its slope at x0 = mean(x) is span * slope / 4.
  line = np.polyfit(x, y, 1)[0] if np.ptp(x) > 0 else 0.0
  span0 = max(float(np.ptp(y)) * 1.5, 1.0)
  start = np.array([max(float(y.min()) - span0 / 6, 0.0), span0,
                    max(4 * line / span0, 1e-3 / spread), float(np.mean(x))])

  def residual(theta):
    lo, span, slope, x0 = theta
    return lo + span / (1.0 + np.exp(-np.clip(slope * (x - x0), -500, 500))) - y

  lower = [-SCALE[1], 0.0, 0.0, float(x.min()) - 10 * spread]
  upper = [SCALE[1], 2 * (SCALE[1] - SCALE[0]), 1e3 / spread,
           float(x.max()) + 10 * spread]
  start = np.clip(start, lower, upper)
  fit = scipy.optimize.least_squares(residual, start, bounds=(lower, upper))
  lo, span, slope, x0 = (float(v) for v in fit.x)
  return {"lo": lo, "span": span, "slope": slope, "x0": x0}


def fit(raw: Sequence[float], human: Sequence[float] | None = None, *,
        method: str = "linear", source: str = "") -> Calibration:
  """Fits a non-decreasing map raw -> [0, 100] (module doc).

  Args:
    raw: (N,) raw performance scores (finite values are used).
    human: (N,) human scores on 0..100 aligned with raw, or None / all nan: then
      the 'minmax' fallback is fitted whatever `method` says.
    method: 'linear' | 'logistic' | 'isotonic' (with human scores).
    source: recorded in the result.

  Returns:
    The Calibration, with its metrics on the fitting data.

  Raises:
    ValueError: unknown method, or no finite raw score.
  """
  if method not in METHODS:
    raise ValueError(f"unknown calibration method {method!r}; use one of {METHODS}")
  x = np.asarray(raw, np.float64)
  y = (np.full_like(x, np.nan) if human is None else
       np.asarray([np.nan if h is None else h for h in human], np.float64))
  if x.shape != y.shape:
    raise ValueError(f"raw and human scores differ in length: {x.shape} vs {y.shape}")
  if not np.isfinite(x).any():
    raise ValueError("no finite raw score to calibrate on")
  labelled = np.isfinite(x) & np.isfinite(y)
  if labelled.sum() < 2 or method == "minmax":
    xs = x[np.isfinite(x)]
    cal = Calibration("minmax", {"min": float(xs.min()), "max": float(xs.max())},
                      human=False, n=int(xs.size),
                      raw_range=(float(xs.min()), float(xs.max())), source=source)
  else:
    xl, yl = x[labelled], y[labelled]
    if method == "isotonic":
      from sklearn.isotonic import IsotonicRegression  # pylint: disable=g-import-not-at-top
      iso = IsotonicRegression(increasing=True, y_min=SCALE[0], y_max=SCALE[1],
                               out_of_bounds="clip").fit(xl, yl)
      params = {"x": [float(v) for v in iso.X_thresholds_],
                "y": [float(v) for v in iso.y_thresholds_]}
    elif method == "linear":
      from sklearn.linear_model import LinearRegression  # pylint: disable=g-import-not-at-top
      reg = LinearRegression(positive=True).fit(xl[:, None], yl)
      params = {"intercept": float(reg.intercept_), "slope": float(reg.coef_[0])}
    else:
      params = _fit_logistic(xl, yl)
    cal = Calibration(method, params, human=True, n=int(labelled.sum()),
                      raw_range=(float(xl.min()), float(xl.max())), source=source)
  labelled_or_all = labelled if cal.human else np.zeros_like(labelled)
  return dataclasses.replace(cal, fit_metrics=metrics(
      cal, x[labelled_or_all], y[labelled_or_all]))


def save(cal: Calibration, path: str | os.PathLike) -> None:
  """Writes a calibration as JSON, atomically."""
  atomic.write_json(path, cal.to_dict())


def load(path: str | os.PathLike) -> Calibration:
  """Reads a calibration JSON file.

  Raises:
    FileNotFoundError: no such file.
    ValueError: not a calibration file (names the path).
  """
  with open(path, encoding="utf-8") as f:
    try:
      data: Any = json.load(f)
      return Calibration.from_dict(data)
    except (ValueError, AttributeError) as e:
      raise ValueError(f"{os.fspath(path)}: not a calibration file: {e}") from e
