"""A reference's decoded audio and contours on disk, keyed by content hash.

One `.npz` per reference in the cache folder, named by `reference_id`: a hash of the
uploaded file's bytes (SHA-256) and the scorer's feature settings (the worker's
`fingerprint`: system, CREPE capacity, frame period, sample rate), so changing the
scorer never reads contours computed another way. Written atomically
(asa_jax.atomic): a crash leaves the old state or none, and a restart keeps the
cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re

import numpy as np

from asa_jax import atomic

FORMAT = 1  # bump when the stored fields change.
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_CONTOUR_FIELDS = ("f0_hz", "energy_db", "onsets_s", "confidence")


def fingerprint(system: str, hop_s: float, capacity: str, sample_rate: int) -> str:
  """The feature settings a cached reference depends on, as a short hex string."""
  text = json.dumps({"format": FORMAT, "system": system, "hop_s": round(hop_s, 6),
                     "capacity": capacity, "sample_rate": sample_rate},
                    sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def reference_id(content_sha256: str, settings: str) -> str:
  """32 hex digits naming (file content, feature settings)."""
  return hashlib.sha256(f"{content_sha256}:{settings}".encode()).hexdigest()[:32]


def path_of(cache_dir: str, ref_id: str) -> str:
  """The cache file of an id.

  Raises:
    ValueError: ref_id is not 32 lower-case hex digits (never a path).
  """
  if not ID_PATTERN.match(ref_id or ""):
    raise ValueError("reference_id must be 32 hex digits")
  return os.path.join(cache_dir, f"{ref_id}.npz")


def save(path: str, audio: np.ndarray, contours) -> None:
  """Writes float32 (n,) 16 kHz audio and its Contours atomically."""
  arrays = {"audio": np.asarray(audio, np.float32),
            "hop_s": np.float64(contours.hop_s)}
  for name in _CONTOUR_FIELDS:
    value = getattr(contours, name)
    if value is not None:
      arrays[name] = np.asarray(value)
  with atomic.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.savez(f, **arrays)


def load(path: str):
  """(float32 (n,) audio, Contours) of a cache file written by `save`.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is not a cache entry.
  """
  from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
  try:
    with np.load(path, allow_pickle=False) as z:
      fields = {name: z[name] for name in _CONTOUR_FIELDS if name in z.files}
      return z["audio"], contours_lib.Contours(hop_s=float(z["hop_s"]), **fields)
  except (KeyError, OSError, EOFError) as e:
    if isinstance(e, FileNotFoundError):
      raise
    raise ValueError(f"{path}: not a reference cache entry ({e})") from e
