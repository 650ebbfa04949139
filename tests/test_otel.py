"""OpenTelemetry spans per run (``microscheduler.otel``), checked with the SDK's
in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _helpers import Gate, const, task
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from microscheduler import InterruptContext, Priority, TaskExecutor, WorkerConfig
from microscheduler.otel import SPAN_NAME, tracing

UI, BG = Priority.UI, Priority.BACKGROUND


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


def runs(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == SPAN_NAME]


def attrs(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


async def test_run_span_is_a_child_of_the_span_current_at_submit(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A run's span has the submitting code's span as parent, the run's own times
    inside the parent's, and the task's attributes."""
    tracer = provider.get_tracer("test")
    config = WorkerConfig(on_event=tracing(provider))
    async with TaskExecutor.from_config(config) as executor:
        with tracer.start_as_current_span("request") as request:
            assert await executor.execute(task(const(1), UI, name="answer")) == 1
    (span,) = runs(exporter)
    (parent,) = [s for s in exporter.get_finished_spans() if s.name == "request"]
    assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == parent.context.trace_id
    assert parent.start_time is not None and parent.end_time is not None
    assert span.start_time is not None and span.end_time is not None
    assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time
    assert attrs(span) == {
        "microscheduler.task": "answer",
        "microscheduler.priority": "UI",
        "microscheduler.attempt": 1,
        "microscheduler.worker_id": 0,
        "microscheduler.preempted": False,
        "microscheduler.outcome": "completed",
    }
    assert span.status.status_code is StatusCode.UNSET


async def test_preempted_task_has_one_span_per_run_linked(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A preempted and rerun task shows two spans under the same parent: the first
    ends "preempted", the rerun (attempt 2) links to it and completes."""
    tracer = provider.get_tracer("test")
    config = WorkerConfig(on_event=tracing(provider))
    async with TaskExecutor.from_config(config) as executor:
        gate = Gate()
        with tracer.start_as_current_span("indexing") as indexing:
            handle = executor.submit_nowait(task(gate, BG, name="index"))
        await gate.started.wait()
        gate.started.clear()
        await executor.execute(task(const("hi"), UI, name="chat"))
        await gate.started.wait()
        gate.release.set()
        await handle
    spans = {
        (attrs(s)["microscheduler.task"], attrs(s)["microscheduler.attempt"]): s
        for s in runs(exporter)
    }
    assert set(spans) == {("index", 1), ("index", 2), ("chat", 1)}
    first, rerun = spans["index", 1], spans["index", 2]
    assert attrs(first)["microscheduler.outcome"] == "preempted"
    assert attrs(first)["microscheduler.preempted"] is True
    assert attrs(rerun)["microscheduler.outcome"] == "completed"
    parent_id = indexing.get_span_context().span_id
    assert first.parent is not None and first.parent.span_id == parent_id
    assert rerun.parent is not None and rerun.parent.span_id == parent_id
    assert first.context is not None
    assert [link.context.span_id for link in rerun.links] == [first.context.span_id]
    assert first.end_time is not None and rerun.start_time is not None
    assert first.end_time <= rerun.start_time
    assert spans["chat", 1].parent is None  # nothing was current when it was submitted


async def test_failed_and_timed_out_runs_have_error_status(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A failed or timed-out run's span has an error status; a task cancelled before
    it ran has no span (it had no run)."""

    async def broken(r: object, s: object, c: InterruptContext) -> None:
        raise ValueError("boom")

    config = WorkerConfig(on_event=tracing(provider))
    async with TaskExecutor.from_config(config) as executor:
        with pytest.raises(ValueError, match="boom"):
            await executor.execute(task(broken, name="broken"))
        with pytest.raises(TimeoutError):
            await executor.execute(task(Gate(), name="slow", timeout=0.01))
        gate = Gate()
        holder = executor.submit_nowait(task(gate, name="holder"))
        await gate.started.wait()
        executor.submit_nowait(task(const(1), name="dropped")).cancel()
        gate.release.set()
        await holder
    by_task = {attrs(s)["microscheduler.task"]: s for s in runs(exporter)}
    assert set(by_task) == {"broken", "slow", "holder"}
    assert by_task["broken"].status.status_code is StatusCode.ERROR
    assert attrs(by_task["broken"])["microscheduler.outcome"] == "failed"
    assert by_task["slow"].status.status_code is StatusCode.ERROR
    assert attrs(by_task["slow"])["microscheduler.outcome"] == "timed_out"


async def test_a_span_opened_inside_a_compute_is_a_child_of_its_run(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A span a compute opens, async on the loop or sync in a thread, first run and rerun
    alike, is a child of that run's microscheduler.run span; the caller's context is left
    as it was."""
    tracer = provider.get_tracer("test")
    gate = Gate()

    async def inner_async(r: object, s: object, c: InterruptContext) -> str:
        with tracer.start_as_current_span("inner-async"):
            return str(await gate(r, s, c))

    def inner_sync(r: object, s: object, c: InterruptContext) -> str:
        with tracer.start_as_current_span("inner-sync"):
            return "sync"

    config = WorkerConfig(on_event=tracing(provider))
    async with TaskExecutor.from_config(config) as executor:
        with tracer.start_as_current_span("request") as request:
            handle = executor.submit_nowait(task(inner_async, BG, name="index"))
            await gate.started.wait()
            gate.started.clear()
            assert await executor.execute(task(inner_sync, UI, name="chat")) == "sync"
            await gate.started.wait()
            gate.release.set()
            assert await handle == "done"
            assert trace.get_current_span() is request
    finished = exporter.get_finished_spans()
    run_ids = {
        (attrs(s)["microscheduler.task"], attrs(s)["microscheduler.attempt"]): s.context.span_id
        for s in runs(exporter)
        if s.context is not None
    }
    inners = [s for s in finished if s.name.startswith("inner")]
    parents = sorted((s.name, s.parent.span_id if s.parent else None) for s in inners)
    assert parents == sorted(
        [
            ("inner-async", run_ids["index", 1]),
            ("inner-async", run_ids["index", 2]),
            ("inner-sync", run_ids["chat", 1]),
        ]
    )


async def test_a_failed_run_records_its_exception(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """A failed run's span records the exception as an 'exception' event and carries
    error.type, as OpenTelemetry's semantic conventions ask; a timed-out one likewise."""

    async def broken(r: object, s: object, c: InterruptContext) -> None:
        raise ValueError("boom")

    config = WorkerConfig(on_event=tracing(provider))
    async with TaskExecutor.from_config(config) as executor:
        with pytest.raises(ValueError, match="boom"):
            await executor.execute(task(broken, name="broken"))
        with pytest.raises(TimeoutError):
            await executor.execute(task(Gate(), name="slow", timeout=0.01))
    by_task = {attrs(s)["microscheduler.task"]: s for s in runs(exporter)}
    failed = by_task["broken"]
    assert attrs(failed)["error.type"] == "ValueError"
    (exception,) = [e for e in failed.events if e.name == "exception"]
    assert exception.attributes is not None
    assert exception.attributes["exception.type"] == "ValueError"
    assert exception.attributes["exception.message"] == "boom"
    assert attrs(by_task["slow"])["error.type"] == "TimeoutError"
