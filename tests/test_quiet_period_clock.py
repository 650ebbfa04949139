"""The quiet period's gate agrees with the deadline that ends it, on any clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from microscheduler import WorkerConfig
from microscheduler._lanes import Lanes
from microscheduler._preemption import Preemption
from microscheduler._stats import Counters


class _Clock:
    """The supervisor's timers as preemption sees them: a clock the test sets, and the
    deadlines it was asked for."""

    def __init__(self, now: float) -> None:
        self.time = now
        self.deadlines: list[tuple[float, Callable[..., None]]] = []

    def now(self) -> float:
        return self.time

    def schedule(self, delay: float, action: Callable[..., None], *args: Any) -> None:
        self.deadlines.append((self.time + delay, action))


def test_background_may_start_when_the_quiet_period_deadline_fires() -> None:
    """At the very time the quiet period's deadline is due, Background work may start,
    although (1000.0 + 0.01) - 1000.0 is a hair under 0.01 in floats."""
    config = WorkerConfig(background_quiet_period=0.01)
    clock = _Clock(1000.0)
    preemption = Preemption(
        config=config,
        lanes=Lanes(config),
        timers=clock,  # type: ignore[arg-type]
        counters=Counters(),
    )
    preemption.urgent_admitted()
    preemption.urgent_retired()
    assert not preemption.may_start_background()
    [(due, _wake)] = clock.deadlines
    clock.time = due
    assert preemption.may_start_background()
