"""The outcomes of calls in a mixed workload, shared by the soak run and the stress tests.

``benchmarks/soak.py`` and the test suite's property and state-machine tests all drive
executors with a mix of computes (stepping, checkpointing, failing, unrestorable) and check
that every call ends with exactly one outcome its kind allows, and that ``statistics()``
counts each execution where that outcome says. This module holds what they must agree on:
the failure a failing compute raises, the resumable states the computes step, the name of
each outcome and the statistics field that counts it.

It lives in ``benchmarks`` rather than in the tests so that ``python -m benchmarks`` and
the soak run never depend on the test suite; the tests already import ``benchmarks``.
"""

from __future__ import annotations

import asyncio

from microscheduler import (
    ExecutorShutdownError,
    QueueFullError,
    StateRestoreError,
    TaskInterruptedError,
)

__all__ = ("BUCKET", "Boom", "Counter", "Unrestorable", "classify")


class Boom(Exception):
    """The failure a failing compute raises."""


class Counter:
    """A resumable state: a step counter whose snapshot is its value in decimal digits."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def save(self) -> bytes:
        """Encode the count."""
        return str(self.value).encode()

    def restore(self, data: bytes) -> None:
        """Decode a count encoded by :meth:`save`."""
        self.value = int(data)


class Unrestorable(Counter):
    """A state whose snapshots cannot be restored: every run after one fails to start."""

    __slots__ = ()

    def restore(self, data: bytes) -> None:
        """Refuse the snapshot, as a state from an incompatible version would."""
        raise ValueError(f"cannot restore {data!r}")


def classify(exc: BaseException) -> str:
    """Name the outcome of a call that ended with ``exc``.

    An exception no mixed workload should see is named ``"unexpected ..."``, which no
    kind of call allows, so the check that follows reports it.
    """
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, Boom):
        return "failed"
    if isinstance(exc, ExecutorShutdownError):
        return "shutdown"
    if isinstance(exc, StateRestoreError):
        return "restore"
    if isinstance(exc, TaskInterruptedError):
        return "interrupted"
    if isinstance(exc, QueueFullError):
        return "full"
    return f"unexpected {exc!r}"


#: The ``ExecutorStatistics`` field that counts an execution ending with each outcome
#: (``"full"`` is absent: a call refused at admission is never counted).
BUCKET = {
    "result": "completed",
    "failed": "failed",
    "restore": "failed",
    "interrupted": "failed",
    "timeout": "timed_out",
    "cancelled": "cancelled",
    "shutdown": "cancelled",
}
