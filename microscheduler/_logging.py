"""The library's logger: structlog events routed through the stdlib logger ``microscheduler``.

A library must not assume its application configured structlog, and must be silent until
the application asks for its events. So the executor's default logger is structlog's
lazy proxy around ``logging.getLogger("microscheduler")``:

* processors and wrapper class are structlog's global ones, looked up when the executor
  starts, so an application that set up structlog (its stdlib integration included) gets
  the library's events formatted like its own;
* what is *shown* is decided by ``logging``: with nothing configured, only warnings and
  errors reach stderr (``logging.lastResort``), debug and info are dropped; a handler and
  a level on ``microscheduler`` (or the root logger) show more.

Per-task events are debug events; :func:`debug_enabled` lets the executor skip them
entirely (no event dict is built) when neither structlog nor ``logging`` would keep them.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

__all__ = ("STDLIB_LOGGER", "debug_enabled", "logger")

#: The stdlib logger every event of the library's default logger goes to.
STDLIB_LOGGER = logging.getLogger("microscheduler")

#: The library's default structlog logger; never configures structlog itself.
logger: Any = structlog.wrap_logger(STDLIB_LOGGER)


def debug_enabled(log: Any) -> bool:
    """Whether a debug event sent to the bound logger ``log`` could be emitted at all.

    False when a stdlib logger it wraps (a bound logger keeps it as ``_logger``) is not
    enabled for DEBUG, or when its structlog wrapper filters debug out. A logger that says
    neither is assumed to keep everything.
    """
    wrapped = getattr(log, "_logger", None)
    if isinstance(wrapped, logging.Logger) and not wrapped.isEnabledFor(logging.DEBUG):
        return False
    check = getattr(log, "is_enabled_for", None) or getattr(log, "isEnabledFor", None)
    if check is None:
        return True
    try:
        return bool(check(logging.DEBUG))
    except Exception:
        return True
