"""OpenTelemetry spans for scheduled work (extra ``[otel]``: ``opentelemetry-api``).

:func:`tracing` returns an ``on_event`` callback that records one span,
``microscheduler.run``, per run of a task::

    from microscheduler.otel import tracing

    config = WorkerConfig(on_event=tracing())
    async with TaskExecutor.from_config(config) as executor:
        with tracer.start_as_current_span("request"):
            await executor.execute(task)  # its run is a child of "request"

Each span is a child of the span that was current when the task was submitted (the
``submitted`` event is delivered synchronously in the submitting coroutine, so its
context is the caller's), and starts and ends when the run did, not when the span object
was made. A task preempted and rerun shows one span per run; each rerun's span links to
the run before it. Attributes: ``microscheduler.task``, ``microscheduler.key`` (when the
task has one), ``microscheduler.priority``, ``microscheduler.attempt``,
``microscheduler.worker_id``, ``microscheduler.outcome`` (``completed``, ``failed``,
``cancelled``, ``timed_out`` or ``preempted``) and ``microscheduler.preempted``. Failed
and timed-out runs get an error status, the exception recorded as a span event
(``record_exception``) and the ``error.type`` attribute (the exception's class name), as
OpenTelemetry's semantic conventions ask.

The compute runs with its run's span current: a span it opens (``start_as_current_span``
inside the compute, or an instrumented HTTP or database call) is a child of
``microscheduler.run``. This uses the executor's run-context hook (``started`` and
``resumed`` events are delivered in the run's own context; see
:class:`~microscheduler.SchedulerEvent`), so the core never imports OpenTelemetry.

Only ``opentelemetry-api`` is used; spans go wherever the application's tracer provider
sends them (without one configured, nowhere, at almost no cost).
"""

from __future__ import annotations

import time

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "microscheduler.otel needs OpenTelemetry: pip install 'microscheduler[otel]'"
    ) from exc

from . import __version__
from ._events import EventCallback, SchedulerEvent

__all__ = ("SPAN_NAME", "tracing")

#: The name of every span :func:`tracing` records.
SPAN_NAME = "microscheduler.run"

_ENDINGS = frozenset({"completed", "failed", "cancelled", "timed_out"})
_ERRORS = {"failed": "the task failed", "timed_out": "the task timed out"}


def tracing(tracer_provider: trace.TracerProvider | None = None) -> EventCallback:
    """Return an ``on_event`` callback that records an OpenTelemetry span per run.

    Args:
        tracer_provider: Where the spans go; the global tracer provider by default.

    Returns:
        A callback for ``WorkerConfig(on_event=...)`` (alone or in a tuple). Give each
        executor its own.
    """
    tracer = trace.get_tracer("microscheduler", __version__, tracer_provider)
    return _Tracing(tracer)


class _Tracing:
    """Turns one executor's events into spans.

    Invariants: an execution's entries exist from its ``submitted`` event to its ending
    event only, so memory follows the live executions; at most one span per execution is
    open at a time, because an execution runs at most once at a time.
    """

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._parents: dict[int, otel_context.Context] = {}
        self._open: dict[int, trace.Span] = {}
        self._previous: dict[int, trace.SpanContext] = {}  # the last ended run's span
        self._offset: int | None = None  # epoch ns minus loop-clock ns

    def __call__(self, event: SchedulerEvent) -> None:
        execution, kind = event.execution, event.kind
        if kind == "submitted":
            self._parents[execution] = otel_context.get_current()
        elif kind in ("started", "resumed"):
            self._start(event)
        elif kind == "preempted":
            self._end(event, "preempted")
        elif kind in _ENDINGS:
            self._end(event, kind)
            self._parents.pop(execution, None)
            self._previous.pop(execution, None)
        elif kind == "promoted":
            span = self._open.get(execution)
            if span is not None:
                span.add_event(
                    "promoted",
                    {"microscheduler.priority": str(event.priority)},
                    timestamp=self._nanoseconds(event.time),
                )

    def _nanoseconds(self, loop_time: float) -> int:
        # Events carry loop.time(); spans want the epoch. One offset, taken at the first
        # event (delivered as it happens), keeps every span's times consistent.
        if self._offset is None:
            self._offset = time.time_ns() - round(loop_time * 1e9)
        return self._offset + round(loop_time * 1e9)

    def _start(self, event: SchedulerEvent) -> None:
        attributes: dict[str, str | int | bool] = {
            "microscheduler.task": event.task,
            "microscheduler.priority": str(event.priority),
            "microscheduler.attempt": event.attempt,
            "microscheduler.preempted": False,
        }
        if event.key is not None:
            attributes["microscheduler.key"] = event.key
        if event.worker_id is not None:
            attributes["microscheduler.worker_id"] = event.worker_id
        previous = self._previous.get(event.execution)
        links = (
            [trace.Link(previous, {"microscheduler.link": "previous run"})]
            if previous is not None
            else None
        )
        span = self._tracer.start_span(
            SPAN_NAME,
            context=self._parents.get(event.execution, otel_context.Context()),
            attributes=attributes,
            links=links,
            start_time=self._nanoseconds(event.time),
        )
        self._open[event.execution] = span
        # Delivered in the run's own context (the run-context hook): the span becomes the
        # compute's current span. Never detached: that context ends with the execution,
        # and the next run's event replaces it.
        otel_context.attach(trace.set_span_in_context(span))

    def _end(self, event: SchedulerEvent, outcome: str) -> None:
        span = self._open.pop(event.execution, None)
        if span is None:
            return  # it ended before it ever ran: no run, no span
        span.set_attribute("microscheduler.outcome", outcome)
        if outcome == "preempted":
            span.set_attribute("microscheduler.preempted", True)
            self._previous[event.execution] = span.get_span_context()
        elif outcome in _ERRORS:
            error = event.error
            if error is not None:
                span.record_exception(error, timestamp=self._nanoseconds(event.time))
                span.set_attribute("error.type", type(error).__qualname__)
            span.set_status(trace.Status(trace.StatusCode.ERROR, _ERRORS[outcome]))
        span.end(end_time=self._nanoseconds(event.time))
