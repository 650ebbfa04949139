"""What the executor state machine submits, and what it remembers about each call.

A :class:`Spec` is drawn by hypothesis for every submit; a :class:`Call` is that submit and
everything that happened to it; an :class:`Era` is one executor (the machine replaces an
executor after a shutdown).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from hypothesis import strategies as st

from benchmarks._outcomes import Counter
from microscheduler import Priority, TaskExecutor, TaskHandle

HANG_GUARD = 20.0  # seconds; only a bug (a call or shutdown that never ends) reaches it
NEVER = 3600.0  # a timeout or grace too long to expire during an example
STOPPED = "stopped"  # what a polite or stubborn compute returns when it gives in


@dataclasses.dataclass(frozen=True)
class Spec:
    """What one call submits and how."""

    priority: Priority
    kind: str  # "steps" | "raises" | "stubborn" | "sync" | "unrestorable"
    steps: int
    checkpoint: bool
    polite: bool  # an async compute that returns "stopped" once interrupted
    stubborn: str  # after catching one CancelledError: "reraise" | "return" | "continue"
    no_reschedule: bool
    snapshot: int | None  # Task.saved_state
    task_timeout: float | None
    call_timeout: float | None
    via: str  # "execute" | "submit" | "submit_nowait"


specs = st.builds(
    Spec,
    priority=st.sampled_from(
        [Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND] * 2 + [Priority.BACKGROUND]
    ),
    kind=st.sampled_from(
        ["steps", "steps", "raises", "stubborn", "stubborn", "sync", "unrestorable"]
    ),
    steps=st.integers(0, 10),
    checkpoint=st.booleans(),
    polite=st.booleans(),
    stubborn=st.sampled_from(["reraise", "return", "continue"]),
    no_reschedule=st.sampled_from([False, False, True]),
    snapshot=st.none() | st.integers(0, 3),
    task_timeout=st.sampled_from([None] * 5 + [0.0, NEVER]),
    call_timeout=st.sampled_from([None] * 5 + [0.0, NEVER]),
    via=st.sampled_from(["execute", "submit", "submit_nowait"]),
)


@dataclasses.dataclass(eq=False)
class Call:
    """One call and everything the machine did to it."""

    index: int
    spec: Spec
    era: int  # which executor (they are replaced after a shutdown)
    state: Counter
    handle: TaskHandle[Any] | None = None
    caller: asyncio.Task[None] | None = None
    caller_cancelled: bool = False
    handle_cancelled: bool = False
    outcome: str | None = None
    outcomes: int = 0
    value: Any = None
    saved: int | None = None  # the last snapshot taken (or given as Task.saved_state)
    active: int = 0  # runs of its compute in progress

    def given_up(self) -> bool:
        return self.outcome is not None or self.handle_cancelled

    def expected_value(self) -> int:
        return max(self.spec.steps, self.spec.snapshot or 0)


@dataclasses.dataclass(eq=False)
class Era:
    """One executor and what happened to it."""

    executor: TaskExecutor
    shutdown_started: bool = False
    refused: int = 0  # calls made after its shutdown began
    shutdown_task: asyncio.Task[None] | None = None
