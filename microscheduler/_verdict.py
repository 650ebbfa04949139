"""The outcome rule: from how a run ended to what its callers get, in one pure function.

:func:`decide` reads a run's record (did the compute return, raise, or cancel itself),
why the run was interrupted if it was, whether the compute asked ``no_reschedule()``,
whether every caller already gave up, and whether shutdown has cut work off; it returns a
:data:`Verdict`, which the executor's outcomes apply. ``tests/test_verdict.py`` holds the
whole table.
"""

from __future__ import annotations

from typing import Literal

from ._interrupt import InterruptReason

__all__ = ("Verdict", "completes", "decide")

Verdict = Literal[
    "completed",  # callers get the run's result
    "failed",  # callers get the run's exception
    "interrupted",  # a no_reschedule run cancelled before it returned: TaskInterruptedError
    "self_cancelled",  # the compute raised CancelledError itself: callers see a cancellation
    "rerun",  # preempted: back to its lane, to be rerun from its snapshot
    "timed_out",  # its Task.timeout expired: TimeoutError
    "shutdown",  # cut off by shutdown: ExecutorShutdownError
    "cancelled",  # its last caller cancelled it: they already have their outcome
    "gave_up",  # every caller already has its outcome (gave up, or execute(timeout=) expired)
]


def completes(ok: bool, reason: InterruptReason | None, no_reschedule: bool) -> bool:
    """True if a run that ended this way gives its callers its return value: it returned,
    and it was not interrupted, or was preempted after asking ``no_reschedule()``."""
    return ok and (reason is None or (reason == "preempted" and no_reschedule))


def decide(
    ok: bool,
    failed: bool,
    self_cancelled: bool,
    reason: InterruptReason | None,
    no_reschedule: bool,
    abandoned: bool,
    cut_off: bool,
) -> Verdict:
    """What the callers of a run that has fully ended get.

    Args:
        ok: The compute returned a value.
        failed: The compute raised an exception (or its state could not be restored).
        self_cancelled: The compute raised ``CancelledError`` of its own accord.
        reason: Why the run was interrupted, or None.
        no_reschedule: The compute called ``interrupt.no_reschedule()``.
        abandoned: Every caller already has its outcome.
        cut_off: Shutdown has cut off all work (nothing is rerun any more).
    """
    if abandoned:
        return "gave_up"
    stands = reason is None or (reason == "preempted" and no_reschedule)  # (completes(), inline)
    if stands and ok:
        return "completed"
    if stands:
        if self_cancelled:
            return "self_cancelled"
        return "failed" if failed else "interrupted"
    if reason == "preempted":
        return "shutdown" if cut_off else "rerun"
    if reason == "timeout":
        return "timed_out"
    if reason == "shutdown":
        return "shutdown"
    return "cancelled"
