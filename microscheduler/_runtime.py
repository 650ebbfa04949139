"""Runtime: what an executor binds to when it starts — its loop, logger and event emitter."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from ._events import EventEmitter

__all__ = ("Runtime",)


@dataclasses.dataclass(frozen=True, slots=True)
class Runtime:
    """Built once by ``TaskExecutor.start()`` and handed to each part that needs it.

    Attributes:
        loop: The event loop the executor runs on.
        log: The bound structlog logger.
        debug: Whether per-task debug events can be emitted at all (read at start).
        events: The ``on_event`` emitter, or None when no callback is configured.
    """

    loop: asyncio.AbstractEventLoop
    log: Any
    debug: bool
    events: EventEmitter | None
