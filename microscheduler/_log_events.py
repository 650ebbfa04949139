"""The names of everything the library logs or emits: one registry, checked in both ways.

Log events go through the library's one logger (:mod:`microscheduler._logging`) at the level
given here; scheduler events (``SchedulerEvent.kind``, given to ``WorkerConfig.on_event``)
are the :data:`~microscheduler._events.EventKind` literal. ``tests/test_docs_drift.py``
finds every logging call and every emit in the package's source and fails on a name that is
not registered here (or is logged at another level), and checks the table in
docs/design.md ("Logging") and the kinds in docs/observability.md against this module, so
an event cannot be added, renamed or dropped without the docs following.
"""

from __future__ import annotations

import typing
from typing import Final, Literal

from ._events import EventKind

__all__ = ("LOG_EVENTS", "SCHEDULER_EVENT_KINDS", "LogLevel")

LogLevel = Literal["debug", "info", "warning", "error"]

#: Every log event of the library, by name, with the level it is logged at.
LOG_EVENTS: Final[dict[str, LogLevel]] = {
    # The executor's lifecycle.
    "executor_started": "info",
    "executor_stopped": "info",
    # Per task: built only when the logger keeps debug events.
    "task_started": "debug",
    "task_completed": "debug",
    "task_failed": "debug",
    "task_preempted": "debug",
    "task_rescheduled": "debug",
    "task_cancelled": "debug",
    "task_promoted": "debug",
    # What an app should hear about without asking.
    "task_failed_unobserved": "warning",
    "task_interrupt_ignored": "warning",
    "save_state_not_awaited": "warning",
    "background_thrashing": "warning",
    "drain_cut_off": "warning",
    # Workers and their resources.
    "worker_cancelled": "info",
    "worker_crashed": "error",
    "worker_stray_cancellation": "error",
    "resource_close_failed": "error",
    # Observers and timed policies that raised: scheduling goes on.
    "event_callback_failed": "error",
    "supervisor_action_failed": "error",
    # Snapshot stores.
    "snapshot_store_opened": "debug",
    "snapshot_store_closed": "debug",
    "snapshot_delete_failed": "error",
    "snapshot_save_failed": "error",
    # Ray (microscheduler.ray).
    "client_gone_calls_cancelled": "info",
    "remote_cancel_failed": "warning",
    "remote_call_not_stopped": "warning",
    "actor_not_dead_after_kill": "warning",
}

#: Every kind of :class:`SchedulerEvent`, in the order an execution can meet them.
SCHEDULER_EVENT_KINDS: Final[tuple[str, ...]] = typing.get_args(EventKind)
