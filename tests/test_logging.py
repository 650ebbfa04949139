"""The library's logger: silent by default, shown through stdlib ``logging``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _helpers import const, task
from structlog.testing import capture_logs

from microscheduler import ExecutorShutdownError, InterruptContext, TaskExecutor

SCRIPT = textwrap.dedent(
    """
    import asyncio
    import logging
    import sys

    from microscheduler import Task, TaskExecutor

    async def work(resource, state, interrupt):
        return 1

    async def main():
        async with TaskExecutor(1) as executor:
            await executor.execute(Task(name="quiet", compute=work))

    if sys.argv[1] == "configured":
        logging.basicConfig(level=logging.DEBUG, format="%(name)s %(levelname)s %(message)s")
    asyncio.run(main())
    """
)


async def broken(resource: object, state: object, interrupt: InterruptContext) -> None:
    raise ValueError("boom")


def run_script(mode: str) -> subprocess.CompletedProcess[str]:
    # asyncio's debug mode (CI's second pass) logs slow callbacks on its own logger: not ours.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, env=env
    )


def test_silent_by_default() -> None:
    """With neither structlog nor logging configured, running tasks prints nothing at all."""
    done = run_script("unconfigured")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_stdlib_configuration_shows_the_events() -> None:
    """logging.basicConfig(level=DEBUG) shows every event on the stdlib logger
    'microscheduler', at its own level, and nothing goes to stdout."""
    done = run_script("configured")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    for event, level in [
        ("executor_started", "INFO"),
        ("task_started", "DEBUG"),
        ("task_completed", "DEBUG"),
        ("executor_stopped", "INFO"),
    ]:
        assert any(
            line.startswith(f"microscheduler {level} ") and event in line for line in lines
        ), (event, lines)


def test_plain_messages_when_structlog_is_not_configured() -> None:
    """With structlog unconfigured, each event is one plain 'event key=value' message, the
    timestamp and level left to the logging format."""
    lines = run_script("configured").stderr.splitlines()
    assert (
        "microscheduler INFO executor_started ui_workers=1 background_workers=0 "
        "single_processor=True"
    ) in lines
    (completed,) = [line for line in lines if " task_completed " in line]
    assert completed.startswith(
        "microscheduler DEBUG task_completed task=quiet priority=Background "
    )


async def test_caplog_sees_the_records(caplog: pytest.LogCaptureFixture) -> None:
    """Events are stdlib records of the logger 'microscheduler', so caplog captures them."""
    caplog.set_level(logging.DEBUG, logger="microscheduler")
    async with TaskExecutor(1) as executor:
        await executor.execute(task(const(1), name="seen"))
    records = [r for r in caplog.records if r.name == "microscheduler"]
    messages = " ".join(r.getMessage() for r in records)
    assert "task_started" in messages and "task_completed" in messages
    assert {r.levelno for r in records} == {logging.DEBUG, logging.INFO}


@pytest.mark.parametrize(("level", "per_task"), [(logging.INFO, False), (logging.DEBUG, True)])
async def test_per_task_events_skipped_when_logging_filters_them(
    caplog: pytest.LogCaptureFixture, level: int, per_task: bool
) -> None:
    """When the stdlib logger filters debug out, no per-task event even reaches structlog's
    processors; at DEBUG they do."""
    caplog.set_level(level, logger="microscheduler")
    with capture_logs() as logs:
        async with TaskExecutor(1) as executor:
            await executor.execute(task(const(1)))
    names = [entry["event"] for entry in logs]
    assert ("task_started" in names) is per_task
    assert names[0] == "executor_started" and names[-1] == "executor_stopped"


class TestUnobservedFailure:
    async def test_logged_once_at_warning_with_traceback(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed handle nobody awaited logs task_failed_unobserved at WARNING with the
        traceback when collected, once, and asyncio's own "never retrieved" stays silent."""
        loop = asyncio.get_running_loop()
        asyncio_reports: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: asyncio_reports.append(context))
        try:
            async with TaskExecutor(1) as executor:
                handle = executor.submit_nowait(task(broken, name="lost"))
            assert handle.done()
            del handle
            gc.collect()
        finally:
            loop.set_exception_handler(None)
        warnings = [r for r in caplog.records if r.name == "microscheduler"]
        assert [r.levelno for r in warnings] == [logging.WARNING]
        message = warnings[0].getMessage()
        assert "task_failed_unobserved" in message and "lost" in message
        assert "Traceback" in message and "ValueError: boom" in message
        assert asyncio_reports == []

    async def test_awaited_failure_is_not_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        """A failure its caller awaited is the caller's news: nothing is logged at WARNING."""
        async with TaskExecutor(1) as executor:
            handle = executor.submit_nowait(task(broken))
            with pytest.raises(ValueError, match="boom"):
                await handle
            with pytest.raises(ValueError, match="boom"):
                await executor.execute(task(broken))
        del handle
        gc.collect()
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_cancelled_worker_is_logged_as_cancelled(caplog: pytest.LogCaptureFixture) -> None:
    """A worker task cancelled from outside (as at loop teardown) is logged at INFO as
    worker_cancelled, never as an error."""
    caplog.set_level(logging.INFO, logger="microscheduler")
    executor = TaskExecutor(2)
    await executor.start()
    (worker,) = [t for t in asyncio.all_tasks() if t.get_name() == "microscheduler-worker-1"]
    worker.cancel()
    await executor.shutdown()
    records = [r for r in caplog.records if r.name == "microscheduler"]
    assert [r for r in records if r.levelno >= logging.ERROR] == []
    (cancelled,) = [r for r in records if "worker_cancelled" in r.getMessage()]
    assert cancelled.levelno == logging.INFO and "worker_id=1" in cancelled.getMessage()


def test_wait_and_run_times_have_sub_millisecond_resolution() -> None:
    """On uvloop (whose loop.time() moves in whole milliseconds) wait_ms and run_ms of
    quick tasks still carry sub-millisecond values."""
    import uvloop  # in the dev extra wherever uvloop exists (not on Windows)

    async def main() -> None:
        async with TaskExecutor(1) as executor:
            for _ in range(20):
                await executor.execute(task(const(1)))

    logging.getLogger("microscheduler").setLevel(logging.DEBUG)
    try:
        with capture_logs() as logs, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    finally:
        logging.getLogger("microscheduler").setLevel(logging.NOTSET)
    times = [
        e[key] for e in logs if e["event"] == "task_completed" for key in ("wait_ms", "run_ms")
    ]
    assert len(times) == 40
    assert any(value != int(value) for value in times), times


STDLIB_INTEGRATION = textwrap.dedent(
    """
    import asyncio
    import logging
    import sys

    import structlog

    from microscheduler import Task, TaskExecutor

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(processor=structlog.processors.JSONRenderer())
    )
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)

    async def main():
        async with TaskExecutor(1) as executor:
            await executor.execute(Task(name="quiet", compute=lambda *_: 1))

    asyncio.run(main())
    """
)


def test_structlog_stdlib_integration_formats_the_events() -> None:
    """An app using structlog's stdlib integration (LoggerFactory, stdlib BoundLogger,
    ProcessorFormatter) gets the library's events through its own pipeline: JSON records of
    the logger 'microscheduler', filtered by the stdlib level (INFO: no per-task events)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", STDLIB_INTEGRATION],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["event"], r["logger"], r["level"]) for r in records] == [
        ("executor_started", "microscheduler", "info"),
        ("executor_stopped", "microscheduler", "info"),
    ]
    assert records[0]["single_processor"] is True


EVERY_FEATURE = textwrap.dedent(
    """
    import asyncio
    import sys
    import tempfile
    from pathlib import Path

    from microscheduler import (
        MemorySnapshotStore, NoOpTaskState, Priority, SQLiteSnapshotStore, Task, TaskExecutor,
        WorkerConfig,
    )
    from microscheduler.otel import tracing
    from microscheduler.timeline import Timeline

    class Count:
        def __init__(self):
            self.value = 0
        def save(self):
            return str(self.value).encode()
        def restore(self, data):
            self.value = int(data)

    async def work(resource, state, interrupt):
        state.value += 1
        await interrupt.save_state(state)
        return state.value

    async def main(folder):
        timeline = Timeline()
        for store in (SQLiteSnapshotStore(str(Path(folder) / "s.db")), MemorySnapshotStore()):
            config = WorkerConfig(snapshot_store=store, on_event=(timeline, tracing()))
            async with TaskExecutor.from_config(config) as executor:
                task = Task(name="keyed", compute=work, initial_state=Count, key="k")
                assert await executor.execute(task, Priority.UI) == 1
        async with SQLiteSnapshotStore(str(Path(folder) / "t.db")) as store:
            await store.save("x", b"1")
            assert await store.load("x") == b"1"
        timeline.write(str(Path(folder) / "t.html"))

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(folder))
    """
)


def test_no_feature_prints_anything_with_logging_unconfigured() -> None:
    """With nothing configured, the snapshot stores, the timeline and the OpenTelemetry
    consumer print nothing to stdout or stderr (every module logs through the one library
    logger, silent below WARNING)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", EVERY_FEATURE], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")


def test_every_module_logs_through_the_library_logger() -> None:
    """No module of the package makes a structlog or stdlib logger of its own."""
    root = Path(__file__).parent.parent / "microscheduler"
    own = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name not in ("_logging.py", "_demo.py")
        and ("structlog.get_logger" in path.read_text() or "getLogger(" in path.read_text())
    ]
    assert own == []


async def test_the_stdlib_level_gates_every_level_before_structlog() -> None:
    """With the stdlib logger at its default (WARNING), not even INFO events reach
    structlog's processors (capture_logs sees none); at INFO they do."""
    library = logging.getLogger("microscheduler")
    with capture_logs() as logs:
        async with TaskExecutor(1) as executor:
            await executor.execute(task(const(1)))
    assert logs == []
    library.setLevel(logging.INFO)
    try:
        with capture_logs() as logs:
            async with TaskExecutor(1) as executor:
                await executor.execute(task(const(1)))
    finally:
        library.setLevel(logging.NOTSET)
    assert [entry["event"] for entry in logs] == ["executor_started", "executor_stopped"]


STRUCTLOG_ONLY = textwrap.dedent(
    """
    import asyncio
    import logging
    import structlog

    from microscheduler import Task, TaskExecutor

    async def main():
        async with TaskExecutor(1) as executor:
            await executor.execute(Task(name="quiet", compute=lambda *_: 1))

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()]
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the one line
    asyncio.run(main())
    """
)


def test_a_structlog_only_app_needs_one_stdlib_line() -> None:
    """An app that configured structlog only, plus the documented one-line stdlib setup,
    gets the library's INFO events rendered by its own structlog processors."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONASYNCIODEBUG"}
    done = subprocess.run(
        [sys.executable, "-c", STRUCTLOG_ONLY], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(r["event"], r["level"]) for r in records] == [
        ("executor_started", "info"),
        ("executor_stopped", "info"),
    ]


async def test_work_cut_off_by_the_drain_timeout_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A drain that times out logs drain_cut_off at WARNING, naming how many executions
    it cut off (one running, one queued)."""
    caplog.set_level(logging.WARNING, logger="microscheduler")
    never = asyncio.Event()
    started = asyncio.Event()

    async def stuck(resource: object, state: object, ctx: InterruptContext) -> None:
        started.set()
        await never.wait()

    executor = TaskExecutor(1)
    await executor.start()
    running = executor.submit_nowait(task(stuck, name="running"))
    queued = executor.submit_nowait(task(stuck, name="queued"))
    await started.wait()
    await executor.shutdown(drain=True, timeout=0.01)
    for handle in (running, queued):
        with pytest.raises(ExecutorShutdownError):
            await handle
    (record,) = [r for r in caplog.records if "drain_cut_off" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "cut_off=2" in record.getMessage()
