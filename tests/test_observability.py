"""Logging events and statistics (docs/design.md: logging)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

import pytest
import structlog
from _helpers import Gate, const, task, wait_until
from structlog.testing import capture_logs

from microscheduler import (
    ExecutorStatistics,
    InterruptContext,
    Priority,
    TaskExecutor,
)

UI, LE, BG = Priority.UI, Priority.LAST_EFFORT, Priority.BACKGROUND


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


class TestLogging:
    async def test_lifecycle_and_task_events_with_stable_keys(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A preempted task logs task_started/preempted/rescheduled/completed with the keys
        docs/design.md lists; the executor logs executor_started and executor_stopped."""
        caplog.set_level(logging.DEBUG, logger="microscheduler")
        with capture_logs() as logs:
            async with TaskExecutor(1) as executor:
                gate = Gate()
                handle = executor.submit_nowait(task(gate, BG, name="index"))
                await gate.started.wait()
                gate.started.clear()
                await executor.execute(task(const("hi"), UI, name="chat"))
                await gate.started.wait()
                gate.release.set()
                await handle

                async def broken(r: object, s: object, c: InterruptContext) -> None:
                    raise ValueError("x")

                with pytest.raises(ValueError):
                    await executor.execute(task(broken, name="broken"))
                dropped = Gate()
                cancelled = executor.submit_nowait(task(dropped, name="dropped"))
                await dropped.started.wait()
                cancelled.cancel()
        names = [entry["event"] for entry in logs]
        assert names[0] == "executor_started" and names[-1] == "executor_stopped"
        started = events(logs, "task_started")
        assert {"task", "priority", "worker_id", "worker_type", "attempt", "wait_ms"} <= set(
            started[0]
        )
        assert started[0]["task"] == "index" and started[0]["priority"] == "Background"
        assert started[0]["worker_type"] == "UIWorker" and started[0]["log_level"] == "debug"
        completed = events(logs, "task_completed")
        assert {
            "task",
            "priority",
            "worker_id",
            "worker_type",
            "attempt",
            "wait_ms",
            "run_ms",
        } <= set(completed[0])
        (preempted,) = events(logs, "task_preempted")
        (rescheduled,) = events(logs, "task_rescheduled")
        for entry in (preempted, rescheduled):
            assert (entry["task"], entry["priority"], entry["attempt"]) == (
                "index",
                "Background",
                1,
            )
        assert [e["task"] for e in events(logs, "task_failed")] == ["broken"]
        assert [e["task"] for e in events(logs, "task_cancelled")] == ["dropped"]
        assert [e["attempt"] for e in started if e["task"] == "index"] == [1, 2]

    async def test_uses_the_given_logger(self) -> None:
        """An executor built with logger= logs through it."""
        seen: list[str] = []

        def keep(logger: Any, method: str, event_dict: dict[str, Any]) -> str:
            seen.append(event_dict["event"])
            raise structlog.DropEvent

        log = structlog.wrap_logger(structlog.PrintLogger(), processors=[keep])
        async with TaskExecutor(1, logger=log) as executor:
            await executor.execute(task(const(1)))
        assert seen == ["executor_started", "task_started", "task_completed", "executor_stopped"]

    async def test_debug_events_skipped_when_filtered(self) -> None:
        """With a logger filtering at INFO, no per-task event is emitted."""
        seen: list[str] = []

        def keep(logger: Any, method: str, event_dict: dict[str, Any]) -> str:
            seen.append(event_dict["event"])
            raise structlog.DropEvent

        log = structlog.wrap_logger(
            structlog.PrintLogger(),
            processors=[keep],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        )
        async with TaskExecutor(1, logger=log) as executor:
            await executor.execute(task(const(1)))
        assert seen == ["executor_started", "executor_stopped"]

    def test_library_never_configures_structlog(self) -> None:
        """Importing and using the library leaves structlog's configuration alone."""
        before = structlog.get_config()

        async def use() -> None:
            async with TaskExecutor(1) as executor:
                await executor.execute(task(const(1)))

        asyncio.run(use())
        assert structlog.get_config() == before


class TestStatistics:
    async def test_counters_add_up(self, single: TaskExecutor) -> None:
        """statistics() counts each outcome once; queued has all three lanes."""
        assert single.statistics().queued == {UI: 0, LE: 0, BG: 0}
        gate = Gate()
        held = single.submit_nowait(task(gate, UI))
        await gate.started.wait()
        queued = [single.submit_nowait(task(const(i), p)) for i, p in enumerate((UI, LE, BG, BG))]
        stats = single.statistics()
        assert stats.queued == {UI: 1, LE: 1, BG: 2}
        assert (stats.running, stats.submitted, stats.workers) == (1, 5, 1)
        queued[-1].cancel()
        gate.release.set()
        await asyncio.gather(held, *queued[:-1])

        async def broken(r: object, s: object, c: InterruptContext) -> None:
            raise ValueError

        with pytest.raises(ValueError):
            await single.execute(task(broken))
        stats = single.statistics()
        assert (stats.completed, stats.failed, stats.cancelled) == (4, 1, 1)
        assert stats.submitted == (
            stats.completed
            + stats.failed
            + stats.cancelled
            + stats.timed_out
            + stats.running
            + sum(stats.queued.values())
        )

    async def test_statistics_is_a_frozen_snapshot(self, single: TaskExecutor) -> None:
        """statistics() returns a frozen value that does not change afterwards."""
        snapshot = single.statistics()
        await single.execute(task(const(1)))
        assert snapshot.completed == 0
        with pytest.raises(AttributeError):
            snapshot.completed = 3  # type: ignore[misc]


class TestWaiterCounts:
    async def test_waiting_submitters_counts_callers_waiting_for_room(
        self, small_background_lane: TaskExecutor
    ) -> None:
        """waiting_submitters counts the submit() callers waiting for room in a full lane
        and drops as each one gives up or is admitted."""
        executor = small_background_lane
        gate = Gate()
        held = executor.submit_nowait(task(gate, UI))
        await gate.started.wait()
        queued = executor.submit_nowait(task(const(0)))
        assert executor.statistics().waiting_submitters == 0
        waiting = [asyncio.create_task(executor.submit(task(const(i)))) for i in (1, 2)]
        await wait_until(
            lambda: executor.statistics().waiting_submitters == 2, what="two submitters"
        )
        waiting[0].cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting[0]
        assert executor.statistics().waiting_submitters == 1
        gate.release.set()
        admitted = await waiting[1]
        assert executor.statistics().waiting_submitters == 0
        assert await asyncio.gather(held, queued, admitted) == ["done", 0, 2]

    async def test_idle_workers_counts_workers_waiting_for_work(self, multi: TaskExecutor) -> None:
        """idle_workers counts the workers waiting for work: all of them at rest, one fewer
        while one runs a task."""
        await wait_until(lambda: multi.statistics().idle_workers == 3, what="3 idle workers")
        gate = Gate()
        handle = multi.submit_nowait(task(gate, BG))
        await gate.started.wait()
        assert multi.statistics().idle_workers == 2
        gate.release.set()
        assert await handle == "done"
        await wait_until(lambda: multi.statistics().idle_workers == 3, what="3 idle workers")

    async def test_idle_workers_counts_the_single_worker_once(self, single: TaskExecutor) -> None:
        """In single-processor mode the one worker serves three lanes and counts once."""
        await wait_until(lambda: single.statistics().idle_workers > 0, what="an idle worker")
        assert single.statistics().idle_workers == 1
        gate = Gate()
        handle = single.submit_nowait(task(gate, BG))
        await gate.started.wait()
        assert single.statistics().idle_workers == 0
        gate.release.set()
        await handle


class TestInterruptWait:
    async def test_wait_returns_on_interrupt(self, grace: TaskExecutor) -> None:
        """InterruptContext.wait() returns once the run is interrupted, with the reason set."""
        outcome: list[str] = []
        started = asyncio.Event()

        async def background(resource: object, state: object, ctx: InterruptContext) -> str:
            if ctx.attempt > 1:
                return "second"
            assert ctx.reason is None and not ctx.is_interrupted()
            started.set()
            await ctx.wait()
            outcome.append(f"woke: {ctx.reason}")
            await ctx.wait()  # returns at once once interrupted
            return "first"

        # With a grace that never expires, wait() is not raced by a cancel.
        handle = grace.submit_nowait(task(background))
        await started.wait()
        await grace.execute(task(const(None), UI))
        assert await handle == "second"
        assert outcome == ["woke: preempted"]


class TestStatisticsAsDict:
    async def test_json_ready_with_lane_names(self, single: TaskExecutor) -> None:
        """as_dict() has every field by name, lanes keyed by their names, and survives a
        JSON round trip unchanged."""
        gate = Gate()
        running = single.submit_nowait(task(gate))
        await gate.started.wait()
        queued = single.submit_nowait(task(const(1), LE))
        data = single.statistics().as_dict()
        assert data["queued"] == {"UI": 0, "LastEffort": 1, "Background": 0}
        assert (data["running"], data["submitted"], data["workers"]) == (1, 2, 1)
        assert set(data) == {f.name for f in dataclasses.fields(ExecutorStatistics)}
        assert json.loads(json.dumps(data)) == data
        gate.release.set()
        await asyncio.gather(running, queued)
