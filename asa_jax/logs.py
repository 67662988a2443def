"""Log hygiene for the entry points: keep our INFO lines, drop library chatter."""

import logging as py_logging


class _DropLibraryInfo(py_logging.Filter):
  """Drops records below WARNING whose source file lies in one of `packages`."""

  def __init__(self, packages: tuple[str, ...]):
    super().__init__()
    self._needles = tuple(f"/{p}/" for p in packages)

  def filter(self, record: py_logging.LogRecord) -> bool:
    if record.levelno >= py_logging.WARNING:
      return True
    return not any(n in record.pathname for n in self._needles)


def quiet_libraries(packages: tuple[str, ...] = ("orbax", "grain", "jax")) -> None:
  """Hides INFO/DEBUG log records emitted from `packages` (Orbax logs every save).

  Orbax and Grain log through absl, i.e. Python's "absl" logger, so a filter on its
  handlers (and on the logger) removes their INFO lines while ours stay. Warnings and
  errors always pass. Call it after `absl.app.run` has set up logging.
  """
  flt = _DropLibraryInfo(packages)
  for logger in (py_logging.getLogger("absl"), py_logging.getLogger()):
    logger.addFilter(flt)
    for handler in logger.handlers:
      handler.addFilter(flt)
