"""Exceptions of a scoring job -> (HTTP status, message): the one place they are mapped.

  400  wrong or corrupt audio (asa_jax.features.audio.AudioError: unreadable, empty,
       silent, too short, no voice found), or a missing input the system needs;
  413  an upload over the duration limit (the byte limit is the app's middleware);
  422  "not the same melody": the performance sings another song than the
       reference (asa_jax.assess.errors.NotSameMelodyError, issue 19);
  500  anything else (logged with the request id in the worker).
"""

from __future__ import annotations

import dataclasses

@dataclasses.dataclass
class ServiceError(Exception):
  """An answer other than 200: HTTP status, message and extra headers."""
  status: int
  message: str
  headers: dict = dataclasses.field(default_factory=dict)

  def __str__(self) -> str:
    return f"{self.status}: {self.message}"


def classify(error: Exception) -> ServiceError:
  """The ServiceError of an exception raised while scoring (module doc).

  AudioError messages name the form field (the worker raises them with the field
  name, never the server's temporary path).
  """
  from asa_jax.assess import AudioError, NotSameMelodyError  # pylint: disable=g-import-not-at-top
  if isinstance(error, ServiceError):
    return error
  if isinstance(error, NotSameMelodyError):  # before AudioError / ValueError.
    return ServiceError(422, f"not the same melody: {error}")
  if isinstance(error, AudioError):
    return ServiceError(400, str(error))
  if isinstance(error, ValueError):  # e.g. the system needs a reference.
    return ServiceError(400, str(error))
  return ServiceError(500, f"{type(error).__name__} while scoring")
