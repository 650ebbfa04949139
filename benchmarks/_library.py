"""The library side of every benchmark, in one place.

The suite is written against the library's public names only. ``microscheduler`` is imported
lazily, so the harness and its baselines keep working (the library columns read ``n/a``)
in a tree where the core is missing or broken.

Workers: "K workers" means K workers *serving the lane the jobs are queued in*, the same
number the baselines get. ``K == 1`` is single-processor mode (one worker serving every
lane). For ``K > 1`` the jobs go to the Background lane of
``WorkerConfig(ui_workers=1, background_workers=K)``: K background workers serve them and
the one UI worker, which multi-worker mode always has, sits idle.
"""

from __future__ import annotations

import functools
from typing import Any


class LibraryUnavailableError(RuntimeError):
    """Raised when ``microscheduler`` does not import or lacks the public API."""


@functools.cache
def _module() -> Any:
    try:
        import microscheduler
    except Exception as exc:  # any failure means "no library figures", not a crash
        raise LibraryUnavailableError(f"microscheduler does not import: {exc!r}") from exc
    missing = [
        name
        for name in ("TaskExecutor", "WorkerConfig", "Task", "Priority")
        if not hasattr(microscheduler, name)
    ]
    if missing:
        raise LibraryUnavailableError(f"microscheduler lacks {', '.join(missing)}")
    return microscheduler


def unavailable_reason() -> str | None:
    """None if the library can be benchmarked, else why not."""
    try:
        _module()
    except LibraryUnavailableError as exc:
        return str(exc)
    return None


def ms() -> Any:
    """The ``microscheduler`` module (raises :class:`LibraryUnavailableError`)."""
    return _module()


def executor(workers: int) -> Any:
    """An unstarted executor with ``workers`` workers serving the Background lane.

    Every lane is unbounded (buffer size 0), so a benchmark can queue 100,000 tasks.
    """
    m = _module()
    if workers == 1:
        config = m.WorkerConfig(
            ui_workers=1,
            background_workers=0,
            ui_queue_buffer_size=0,
            last_effort_buffer_size=0,
            background_buffer_size=0,
        )
    else:
        config = m.WorkerConfig(
            ui_workers=1,
            background_workers=workers,
            ui_queue_buffer_size=0,
            last_effort_buffer_size=0,
            background_buffer_size=0,
        )
    return m.TaskExecutor.from_config(config)


async def noop(resource: object, state: object, interrupt: object) -> None:
    """The library's no-op compute."""
    return


def noop_task() -> Any:
    """A fresh Background task running :func:`noop` (built per job, as a user would)."""
    m = _module()
    return m.Task(name="noop", compute=noop, priority=m.Priority.BACKGROUND)
