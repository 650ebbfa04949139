"""Scheduler events (``WorkerConfig.on_event``) and per-lane queue-wait statistics."""

from __future__ import annotations

import asyncio
import contextvars
import time
from typing import Any

import pytest
from _helpers import Gate, const, task
from structlog.testing import capture_logs

import microscheduler._events
from microscheduler import (
    ExecutorShutdownError,
    InterruptContext,
    Priority,
    QueueWait,
    SchedulerEvent,
    TaskExecutor,
    WorkerConfig,
)

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


def steps(events: list[SchedulerEvent], name: str) -> list[tuple[Any, ...]]:
    """The (kind, attempt, worker_id, reason) of each event of the task called ``name``."""
    return [(e.kind, e.attempt, e.worker_id, e.reason) for e in events if e.task == name]


def executor_with(*callbacks: Any, workers: int = 1) -> TaskExecutor:
    on_event = callbacks[0] if len(callbacks) == 1 else callbacks
    return TaskExecutor.from_config(
        WorkerConfig(ui_workers=1, background_workers=workers - 1, on_event=on_event)
    )


class TestConfig:
    @pytest.mark.parametrize("value", ["print", 3, (print, "x")])
    def test_non_callable_on_event_is_refused(self, value: Any) -> None:
        """on_event that is not a callable, a tuple of callables or None is a TypeError."""
        with pytest.raises(TypeError, match="on_event must be a callable"):
            WorkerConfig(on_event=value)

    def test_callable_and_tuple_are_accepted(self) -> None:
        """A callable, a tuple of callables and None are valid on_event values."""
        assert WorkerConfig(on_event=print).on_event is print
        assert WorkerConfig(on_event=(print, repr)).on_event == (print, repr)
        assert WorkerConfig().on_event is None


class TestEvents:
    async def test_completed_execution_steps_in_order(self) -> None:
        """A task that completes yields submitted, started, completed with loop times."""
        seen: list[SchedulerEvent] = []
        async with executor_with(seen.append) as executor:
            before = asyncio.get_running_loop().time()
            assert await executor.execute(task(const(1), UI, name="a")) == 1
            after = asyncio.get_running_loop().time()
        assert steps(seen, "a") == [
            ("submitted", 0, None, None),
            ("started", 1, 0, None),
            ("completed", 1, 0, None),
        ]
        times = [e.time for e in seen]
        assert times == sorted(times) and before <= times[0] and times[-1] <= after
        assert {e.execution for e in seen} == {1} and {e.priority for e in seen} == {UI}

    async def test_preempted_run_is_resumed_in_order(self) -> None:
        """A preempted Background task yields preempted then resumed (attempt 2), and the
        UI task that preempted it starts only after the preempted run ended."""
        seen: list[SchedulerEvent] = []
        async with executor_with(seen.append) as executor:
            gate = Gate()
            indexing = executor.submit_nowait(task(gate, BG, name="index"))
            await gate.started.wait()
            assert await executor.execute(task(const("hi"), UI, name="chat")) == "hi"
            gate.release.set()
            assert await indexing == "done"
        assert steps(seen, "index") == [
            ("submitted", 0, None, None),
            ("started", 1, 0, None),
            ("preempted", 1, 0, "preempted"),
            ("resumed", 2, 0, None),
            ("completed", 2, 0, None),
        ]
        kinds = [(e.task, e.kind) for e in seen]
        assert kinds.index(("index", "preempted")) < kinds.index(("chat", "started"))
        assert len({e.execution for e in seen}) == 2

    async def test_failed_timed_out_and_cancelled_endings(self) -> None:
        """Each ending is reported once: failed, timed_out, cancelled by the caller while
        queued (no worker), and cancelled by a shutdown (reason "shutdown")."""
        seen: list[SchedulerEvent] = []

        async def broken(r: object, s: object, c: InterruptContext) -> None:
            raise ValueError("boom")

        executor = executor_with(seen.append)
        await executor.start()
        try:
            with pytest.raises(ValueError, match="boom"):
                await executor.execute(task(broken, name="broken"))
            with pytest.raises(TimeoutError):
                await executor.execute(task(Gate(), name="slow", timeout=0.01))
            gate = Gate()
            running = executor.submit_nowait(task(gate, name="running"))
            await gate.started.wait()
            queued = executor.submit_nowait(task(const(1), name="dropped"))
            queued.cancel()
        finally:
            await executor.shutdown()
        with pytest.raises(ExecutorShutdownError):
            await running
        assert steps(seen, "broken")[-1] == ("failed", 1, 0, None)
        assert steps(seen, "slow")[-1] == ("timed_out", 1, 0, None)
        assert steps(seen, "dropped") == [
            ("submitted", 0, None, None),
            ("cancelled", 0, None, "cancelled"),
        ]
        assert steps(seen, "running")[-1] == ("cancelled", 1, 0, "shutdown")

    async def test_joined_and_promoted_steps_for_keyed_work(self) -> None:
        """A submit of a live key is a joined step of the same execution, and promoting it
        a promoted step with its reason, both carrying the worker that runs it."""
        seen: list[SchedulerEvent] = []
        async with executor_with(seen.append, workers=2) as executor:
            gate = Gate()
            running = executor.submit_nowait(task(gate, BG, name="running", key="k"))
            await gate.started.wait()
            joiner = executor.submit_nowait(task(gate, BG, name="running", key="k"))
            assert joiner.promote(Priority.LAST_EFFORT) is True
            gate.release.set()
            assert await running == await joiner
        assert [(e.kind, e.task, e.key, e.worker_id, e.reason) for e in seen] == [
            ("submitted", "running", "k", None, None),
            ("started", "running", "k", 1, None),
            ("joined", "running", "k", 1, None),
            ("promoted", "running", "k", 1, "promote"),
            ("completed", "running", "k", 1, None),
        ]
        assert {e.execution for e in seen} == {1}
        assert seen[-1].priority is Priority.LAST_EFFORT

    async def test_every_callback_of_a_tuple_gets_every_event(self) -> None:
        """With a tuple, each callback receives the same events in the same order."""
        first: list[SchedulerEvent] = []
        second: list[SchedulerEvent] = []
        async with executor_with(first.append, second.append, workers=2) as executor:
            await executor.execute(task(const(1), BG, name="b"))
        assert first == second and [e.kind for e in first] == [
            "submitted",
            "started",
            "completed",
        ]
        assert first[1].worker_id == 1  # the background worker

    async def test_raising_callback_is_logged_and_scheduling_goes_on(self) -> None:
        """A callback that raises is logged as event_callback_failed with the exception;
        the task still completes and the other callbacks still see every event."""
        seen: list[SchedulerEvent] = []

        def broken(event: SchedulerEvent) -> None:
            raise RuntimeError(f"observer broke on {event.kind}")

        with capture_logs() as logs:
            async with executor_with(broken, seen.append) as executor:
                assert await executor.execute(task(const(7), name="x")) == 7
        failures = [entry for entry in logs if entry["event"] == "event_callback_failed"]
        assert [entry["kind"] for entry in failures] == ["submitted", "started", "completed"]
        assert isinstance(failures[0]["exc_info"], RuntimeError)
        assert failures[0]["task"] == "x" and failures[0]["log_level"] == "error"
        assert [e.kind for e in seen] == ["submitted", "started", "completed"]
        assert executor.statistics().completed == 1

    async def test_no_callback_builds_no_event(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without on_event the executor never constructs a SchedulerEvent."""
        built: list[object] = []

        def counting(**fields: Any) -> SchedulerEvent:
            built.append(fields)
            return SchedulerEvent(**fields)

        monkeypatch.setattr(microscheduler._events, "SchedulerEvent", counting)
        async with TaskExecutor(1) as executor:
            gate = Gate()
            handle = executor.submit_nowait(task(gate, name="bg"))
            await gate.started.wait()
            await executor.execute(task(const(1), UI))
            gate.release.set()
            await handle
        assert built == []
        seen: list[SchedulerEvent] = []
        async with executor_with(seen.append) as executor:
            await executor.execute(task(const(1), UI))
        assert len(built) == len(seen) == 3  # the patch is live: it does count


class TestQueueWait:
    async def test_lanes_report_none_before_any_run(self, single: TaskExecutor) -> None:
        """Every lane has an entry; a lane nothing ran from has no percentiles."""
        waits = single.statistics().queue_wait
        assert set(waits) == {UI, LE, BG}
        assert all(w == QueueWait(p50=None, p99=None, samples=0) for w in waits.values())

    async def test_waits_are_measured_per_lane(self, single: TaskExecutor) -> None:
        """A task queued behind a held worker records a wait at least as long as the
        time it was held, in its own lane only."""
        gate = Gate()
        holder = single.submit_nowait(task(gate, UI, name="holder"))
        await gate.started.wait()
        waiter = single.submit_nowait(task(const(1), LE, name="waiter"))
        # The executor times waits with time.perf_counter(); so does this test: under
        # uvloop loop.time() moves in whole milliseconds and could overstate held_for.
        queued_at = time.perf_counter()  # after the submit: the measured wait covers it
        await asyncio.sleep(0.02)  # the wait to measure: its length decides no ordering
        held_for = time.perf_counter() - queued_at
        gate.release.set()
        await holder
        await waiter
        waits = single.statistics().queue_wait
        assert waits[LE].samples == 1 and waits[BG].samples == 0
        assert waits[LE].p50 == waits[LE].p99
        assert waits[LE].p50 is not None and waits[LE].p50 >= held_for
        assert waits[UI].samples == 1 and waits[UI].p50 is not None

    async def test_window_is_bounded(self) -> None:
        """The percentiles come from the latest 1,024 runs of a lane, never more."""
        async with TaskExecutor.from_config(WorkerConfig(ui_queue_buffer_size=0)) as executor:
            handles = [executor.submit_nowait(task(const(i), UI)) for i in range(1100)]
            for handle in handles:
                await handle
            wait = executor.statistics().queue_wait[UI]
        assert wait.samples == 1024
        assert wait.p50 is not None and wait.p99 is not None and 0 <= wait.p50 <= wait.p99


RUN_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("RUN_LABEL", default="none")


async def test_started_and_resumed_are_delivered_in_the_runs_own_context() -> None:
    """The run-context hook: a context variable a callback sets on started/resumed is
    seen by that run's compute only, never by the submitter or another task."""

    def label(event: SchedulerEvent) -> None:
        if event.kind in ("started", "resumed"):
            RUN_LABEL.set(f"{event.task}#{event.attempt}")

    seen: list[str] = []
    gate = Gate()

    async def report(r: object, s: object, c: InterruptContext) -> str:
        seen.append(RUN_LABEL.get())
        return str(await gate(r, s, c))

    async def other(r: object, s: object, c: InterruptContext) -> str:
        return RUN_LABEL.get()

    async with executor_with(label) as executor:
        handle = executor.submit_nowait(task(report, Priority.BACKGROUND, name="index"))
        await gate.started.wait()
        gate.started.clear()
        assert await executor.execute(task(other, Priority.UI, name="chat")) == "chat#1"
        await gate.started.wait()
        gate.release.set()
        await handle
    assert seen == ["index#1", "index#2"]
    assert RUN_LABEL.get() == "none"


async def test_a_failed_event_carries_the_callers_exception() -> None:
    """The failed event's error is the very exception the caller gets; other events
    carry none."""
    seen: list[SchedulerEvent] = []

    async def broken(r: object, s: object, c: InterruptContext) -> None:
        raise ValueError("boom")

    async with executor_with(seen.append) as executor:
        with pytest.raises(ValueError, match="boom") as caught:
            await executor.execute(task(broken, name="x"))
    assert [(e.kind, e.error) for e in seen] == [
        ("submitted", None),
        ("started", None),
        ("failed", caught.value),
    ]


async def test_an_end_event_carries_the_worker_of_the_last_run() -> None:
    """An execution preempted and then cancelled while waiting for its rerun ends with a
    cancelled event naming the worker of its last run; one that never ran names none."""
    events: list[SchedulerEvent] = []
    async with TaskExecutor(WorkerConfig(on_event=events.append)) as executor:
        gate, urgent_gate = Gate(), Gate()
        background = executor.submit_nowait(task(gate, Priority.BACKGROUND, name="bg"))
        await gate.started.wait()
        urgent = executor.submit_nowait(task(urgent_gate, Priority.UI, name="ui"))
        await urgent_gate.started.wait()  # bg was preempted and waits for its rerun
        never = executor.submit_nowait(task(gate, Priority.BACKGROUND, name="never"))
        background.cancel()
        never.cancel()
        urgent_gate.release.set()
        await urgent
    ends = {e.task: e for e in events if e.kind == "cancelled"}
    preempted = [e for e in events if e.kind == "preempted"]
    assert [e.task for e in preempted] == ["bg"]
    assert ends["bg"].worker_id == preempted[0].worker_id == 0
    assert ends["never"].worker_id is None
