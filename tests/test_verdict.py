"""The outcome rule, as a table: from how a run ended to what its callers get."""

from __future__ import annotations

from typing import Any

import pytest

from microscheduler._verdict import Verdict, completes, decide

# ok, failed, self_cancelled, reason, no_reschedule, abandoned, cut_off -> verdict
TABLE: list[tuple[bool, bool, bool, Any, bool, bool, bool, Verdict]] = [
    # Runs nobody interrupted.
    (True, False, False, None, False, False, False, "completed"),
    (True, False, False, None, True, False, False, "completed"),
    (False, True, False, None, False, False, False, "failed"),
    (False, False, True, None, False, False, False, "self_cancelled"),
    (False, False, False, None, False, False, False, "interrupted"),
    (True, False, False, None, False, False, True, "completed"),  # shutdown cut off later
    # Preempted runs.
    (True, False, False, "preempted", False, False, False, "rerun"),  # the result is discarded
    (False, False, False, "preempted", False, False, False, "rerun"),
    (False, True, False, "preempted", False, False, False, "rerun"),
    (False, False, False, "preempted", False, False, True, "shutdown"),  # no rerun after cut-off
    (True, False, False, "preempted", True, False, False, "completed"),  # no_reschedule keeps it
    (False, True, False, "preempted", True, False, False, "failed"),
    (False, False, False, "preempted", True, False, False, "interrupted"),
    (False, False, True, "preempted", True, False, False, "self_cancelled"),
    # The other interrupts decide whatever the run did.
    (True, False, False, "timeout", False, False, False, "timed_out"),
    (False, True, False, "timeout", True, False, False, "timed_out"),
    (True, False, False, "shutdown", False, False, False, "shutdown"),
    (False, False, False, "shutdown", True, False, False, "shutdown"),
    (True, False, False, "cancelled", False, False, False, "cancelled"),
    (False, True, False, "cancelled", False, False, False, "cancelled"),
    # Callers who all gave up come first: they already have their outcome.
    (True, False, False, None, False, True, False, "gave_up"),
    (False, True, False, "preempted", False, True, False, "gave_up"),
    (False, False, False, "timeout", False, True, True, "gave_up"),
]


@pytest.mark.parametrize(
    ("ok", "failed", "self_cancelled", "reason", "no_reschedule", "abandoned", "cut_off", "want"),
    TABLE,
)
def test_the_outcome_rule_table(
    ok: bool,
    failed: bool,
    self_cancelled: bool,
    reason: Any,
    no_reschedule: bool,
    abandoned: bool,
    cut_off: bool,
    want: Verdict,
) -> None:
    """Each way a run can end maps to exactly the verdict the scheduling rules give."""
    got = decide(
        ok=ok,
        failed=failed,
        self_cancelled=self_cancelled,
        reason=reason,
        no_reschedule=no_reschedule,
        abandoned=abandoned,
        cut_off=cut_off,
    )
    assert got == want


@pytest.mark.parametrize(
    ("ok", "reason", "no_reschedule", "want"),
    [
        (True, None, False, True),
        (True, "preempted", True, True),
        (True, "preempted", False, False),
        (True, "timeout", True, False),
        (False, None, False, False),
    ],
)
def test_a_run_completes_only_when_it_returned_and_was_not_stopped(
    ok: bool, reason: Any, no_reschedule: bool, want: bool
) -> None:
    """completes() (used before a keyed run's snapshot is deleted) agrees with decide()."""
    assert completes(ok, reason, no_reschedule) is want
    verdict = decide(
        ok=ok,
        failed=not ok,
        self_cancelled=False,
        reason=reason,
        no_reschedule=no_reschedule,
        abandoned=False,
        cut_off=False,
    )
    assert (verdict == "completed") is want
