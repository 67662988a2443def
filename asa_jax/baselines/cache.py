"""Per-audio-file cache of baseline contours (npz, atomic writes).

CREPE on a whole song is the slow part of the baselines, so `cached_contours`
stores each file's `Contours` as `<cache_dir>/<stem>-<key>.npz`, where the key
hashes the file's absolute path, size and modification time, the CREPE capacity
(and the f0 tracker's `contours.tracker_tag` where it is not CREPE) and
CONTOURS_VERSION: a changed file or setting gets a new entry, a rerun reuses the old
one. Writes go to a temporary file in cache_dir and are moved into place with
os.replace, so a crash never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from asa_jax import atomic
from asa_jax.baselines import contours as contours_lib
from asa_jax.features import audio as audio_lib

CONTOURS_VERSION = 1  # bump when extract_contours' output changes.


def cache_path(audio_path: str, cache_dir: str, capacity: str,
               tracker: str = "crepe") -> str:
  """Cache file of `audio_path`'s contours (the file must exist); the tracker is
  in the key only where it is not CREPE (existing entries stay valid).

  Raises:
    OSError: the audio file cannot be stat'ed.
  """
  path = os.path.abspath(os.fspath(audio_path))
  st = os.stat(path)
  key = "|".join([path, str(st.st_size), str(st.st_mtime_ns), capacity,
                  str(contours_lib.HOP_LENGTH), str(CONTOURS_VERSION)]
                 + ([contours_lib.tracker_tag(tracker)] if tracker != "crepe" else []))
  digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
  stem = os.path.splitext(os.path.basename(path))[0]
  return os.path.join(cache_dir, f"{stem}-{digest}.npz")


def derived_suffix(tracker: str) -> str:
  """The name suffix of anything computed from these contours (term tables, score
  folders): "_<contours.tracker_tag>" where the tracker is not CREPE, then
  "_c<CONTOURS_VERSION>", so a new tracker or contour version never reads them.

  Raises:
    OSError: the student's weights cannot be read.
  """
  tag = "" if tracker == "crepe" else f"_{contours_lib.tracker_tag(tracker)}"
  return f"{tag}_c{CONTOURS_VERSION}"


def _save(path: str, c: contours_lib.Contours) -> None:
  with atomic.atomic_path(path) as tmp, open(tmp, "wb") as f:
    np.savez(f, f0_hz=c.f0_hz, hop_s=np.float64(c.hop_s),
             energy_db=c.energy_db, onsets_s=c.onsets_s,
             confidence=c.confidence)


def _load(path: str) -> contours_lib.Contours:
  with np.load(path) as z:
    return contours_lib.Contours(
        f0_hz=z["f0_hz"], hop_s=float(z["hop_s"]), energy_db=z["energy_db"],
        onsets_s=z["onsets_s"], confidence=z["confidence"])


def cached_contours(audio_path: str, cache_dir: str, *,
                    capacity: str = "tiny", tracker: str = "crepe"
                    ) -> tuple[contours_lib.Contours, bool]:
  """Contours of an audio file, computed once and then read from the cache.

  Args:
    audio_path: any audio file load_audio reads (resampled to 16 kHz mono).
    cache_dir: cache folder (created if missing).
    capacity: CREPE capacity, 'tiny' or 'full'.
    tracker: `contours.TRACKERS` ('crepe' or 'praat').

  Returns:
    (contours, from_cache): from_cache is True when the entry already existed.

  Raises:
    asa_jax.features.audio.AudioError: the audio is missing, unreadable,
      empty, silent or non-finite (nothing is cached then).
  """
  if not os.path.isfile(audio_path):
    raise audio_lib.AudioError(audio_path, "file not found (missing)")
  os.makedirs(cache_dir, exist_ok=True)
  path = cache_path(audio_path, cache_dir, capacity, tracker)
  if os.path.exists(path):
    try:
      return _load(path), True
    except Exception:  # pylint: disable=broad-except  (corrupt entry: redo)
      pass
  c = contours_lib.extract_contours(audio_lib.load_audio(audio_path),
                                    capacity=capacity, tracker=tracker)
  _save(path, c)
  return c, False
