"""Run: a worker's record of the run it is doing, for the outcome rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._interrupt import InterruptContext

__all__ = ("Run",)


class Run:
    """The record of a run: how it went, for the verdict.

    Each worker keeps one and the execution it runs fills it in at :meth:`begin_run`
    (a record per run would be an allocation, and garbage, per job: benchmark rows bulk
    and overhead); the worker clears what refers to the execution (``ctx``, ``result``,
    ``error``) once the run's outcome is applied. It is never shown to the compute: the
    run's public half is its :class:`InterruptContext`.

    Attributes:
        ctx: The run's interrupt context.
        scope: The anyio cancel scope the run happens in, until it ends.
        host: The asyncio task of the worker that keeps this record.
        started: ``loop.time()`` when it began (``Task.timeout``, ``min_background_slice``),
            or 0.0 when neither needs it.
        t0: ``time.perf_counter()`` when it began (queue-wait and run-time figures).
        ok: The compute returned; ``result`` is what it returned.
        error: The exception it raised (or a restore failure before it ran).
        self_cancelled: It raised ``CancelledError`` of its own accord.
        checkpoints: Snapshots saved during the run.
        keyed: The execution's snapshots go through the snapshot store.
        prepares_state: A snapshot is to be loaded or restored before the compute.
    """

    __slots__ = (
        "checkpoints",
        "ctx",
        "error",
        "host",
        "keyed",
        "ok",
        "prepares_state",
        "result",
        "scope",
        "self_cancelled",
        "started",
        "t0",
    )

    def __init__(self, host: object = None) -> None:
        self.host = host
        self.ctx: InterruptContext | None = None
        self.scope: Any = None
        self.started = 0.0
        self.t0 = 0.0
        self.ok = False
        self.result: Any = None
        self.error: BaseException | None = None
        self.self_cancelled = False
        self.checkpoints = 0
        self.keyed = False
        self.prepares_state = False
