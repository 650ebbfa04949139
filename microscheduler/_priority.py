"""Priority lanes and worker kinds."""

from __future__ import annotations

import dataclasses
import enum

__all__ = ("Priority", "WorkerInfo", "WorkerType")


class Priority(enum.IntEnum):
    """The lane a task is queued in; a smaller value is more urgent.

    A free worker always takes UI work before LastEffort work before Background work.
    """

    __module__ = "microscheduler"

    UI = 0
    LAST_EFFORT = 1
    BACKGROUND = 2

    def __str__(self) -> str:
        return _PRIORITY_NAMES[self]


_PRIORITY_NAMES = {
    Priority.UI: "UI",
    Priority.LAST_EFFORT: "LastEffort",
    Priority.BACKGROUND: "Background",
}


class WorkerType(enum.Enum):
    """The kind of a worker: UI workers serve the UI and LastEffort lanes, background
    workers the Background lane. In single-processor mode the one worker is a UI worker
    that serves all three lanes."""

    __module__ = "microscheduler"

    UI = "UIWorker"
    BACKGROUND = "BackgroundWorker"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker hands its tasks as ``resource`` when no resource factory is set.

    Attributes:
        worker_id: UI workers are ``0..ui_workers-1``; background workers follow.
        worker_type: The kind of the worker.
    """

    __module__ = "microscheduler"

    worker_id: int
    worker_type: WorkerType
