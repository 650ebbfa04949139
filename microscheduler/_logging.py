"""The library's logger: structlog events routed through the stdlib logger ``microscheduler``.

A library must not assume its application configured structlog, and must be silent until
the application asks for its events. So the executor's default logger wraps
``logging.getLogger("microscheduler")`` in structlog, deciding how when an executor starts
(its ``bind()``):

* if the application configured structlog, its processors and wrapper class apply, so an
  app using structlog (its stdlib integration included) gets the library's events
  formatted like its own;
* if not, each event becomes one plain message, ``event key=value ...`` (and the traceback,
  if any), leaving timestamps and levels to the ``logging`` handler's format;
* either way one rule decides, for every level: an event the stdlib logger
  ``microscheduler`` is not enabled for (its effective level) is dropped before any
  structlog processor sees it. With nothing configured that level is WARNING, and
  warnings and errors reach stderr (``logging.lastResort``); a level on ``microscheduler``
  (or the root logger) and a handler show more. An app that configures structlog only
  still needs that one stdlib line, e.g. ``logging.basicConfig(level=logging.INFO,
  format="%(message)s")``, since its events are rendered by structlog and then handed to
  ``logging``.

Every module of the package (the stores, the integrations, Ray, the timeline and the
OpenTelemetry consumer) logs through :data:`logger`; none makes a structlog logger of its
own, whose unconfigured default would print to stdout.

Per-task events are debug events; :func:`debug_enabled` lets the executor skip them
entirely (no event dict is built) when neither structlog nor ``logging`` would keep them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping, Sequence
from typing import Any

import structlog
from structlog.typing import Processor

__all__ = ("STDLIB_LOGGER", "debug_enabled", "log_task", "log_worker_ends", "logger")

#: The stdlib logger every event of the library's default logger goes to.
STDLIB_LOGGER = logging.getLogger("microscheduler")


def _render_plain(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    """``event key=value ...``, then the traceback ``format_exc_info`` left, if any."""
    event = event_dict.pop("event", "")
    exception = event_dict.pop("exception", None)
    text = " ".join([str(event), *(f"{key}={value}" for key, value in event_dict.items())])
    return text if exception is None else f"{text}\n{exception}"


_PLAIN_PROCESSORS: tuple[Processor, ...] = (structlog.processors.format_exc_info, _render_plain)


def _by_level(_logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> Any:
    """Drop an event the stdlib logger ``microscheduler`` would not emit, before any other
    processor sees it: one rule for every level (``filter_by_level`` on our logger, whatever
    logger the application's structlog configuration would pass)."""
    return structlog.stdlib.filter_by_level(STDLIB_LOGGER, method, event_dict)


class _LibraryLogger:
    """The library's default logger (see the module docstring); never configures structlog.

    The choice between the application's structlog configuration and the plain rendering
    is made at each ``bind()``, which the executor calls once when it starts.
    """

    __slots__ = ()

    def bind(self, **values: Any) -> Any:
        """A structlog bound logger writing to the stdlib logger ``microscheduler``."""
        if structlog.is_configured():
            processors = [_by_level, *structlog.get_config()["processors"]]
        else:
            processors = [_by_level, *_PLAIN_PROCESSORS]
        return structlog.wrap_logger(STDLIB_LOGGER, processors=processors).bind(**values)

    def __getattr__(self, name: str) -> Any:
        # ``logger.info(...)`` and friends on the unbound logger (rare: before start).
        return getattr(self.bind(), name)


#: The library's default structlog logger.
logger: Any = _LibraryLogger()


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


def log_worker_ends(log: Any, worker_ids: list[int], results: Sequence[object]) -> None:
    """Log how each worker task ended at shutdown, when not by returning.

    A worker task cancelled by someone else (the loop closing, a second Ctrl-C under
    uvicorn) is logged as what it is, ``worker_cancelled`` at INFO: nothing crashed.
    """
    for worker_id, result in zip(worker_ids, results, strict=True):
        if isinstance(result, asyncio.CancelledError):
            log.info("worker_cancelled", worker_id=worker_id)
        elif isinstance(result, BaseException):
            log.error("worker_crashed", worker_id=worker_id, exc_info=result)


def log_task(log: Any, event: str, subject: Any, **extra: Any) -> None:
    """A per-task debug event with the stable keys (task, priority, attempt)."""
    log.debug(
        event,
        task=subject.name,
        priority=str(subject.priority),
        attempt=subject.attempt,
        **extra,
    )
