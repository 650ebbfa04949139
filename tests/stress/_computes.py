"""The computes the executor state machine submits, one per call, built from its Spec.

Every compute steps its call's :class:`~benchmarks._outcomes.Counter` up to ``spec.steps``
and reports each run's start, end and snapshots to the :class:`~_ledger.Ledger`. Async
computes take one loop iteration per step (so preemptions, timeouts and cancels land
between steps); a "stubborn" one catches a ``CancelledError`` once; a sync compute runs in
a worker thread and polls ``is_interrupted()``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from _calls import STOPPED, Call
from _ledger import Ledger

from benchmarks._outcomes import Boom
from microscheduler import InterruptContext, Task


def make_compute(call: Call, ledger: Ledger) -> Any:
    spec = call.spec
    state = call.state

    def sync_compute(resource: object, _state: Any, ctx: InterruptContext) -> Any:
        if spec.no_reschedule:
            ctx.no_reschedule()
        ledger.enter(call, resource, ctx, in_thread=True)
        try:
            while state.value < spec.steps:
                if ctx.is_interrupted():
                    return STOPPED
                state.value += 1
                if spec.checkpoint:
                    ctx.save_state_nowait(state)
                    ledger.saved(call)
            return state.value
        finally:
            ledger.leave(call, resource)

    async def async_compute(resource: object, _state: Any, ctx: InterruptContext) -> Any:
        if spec.no_reschedule:
            ctx.no_reschedule()
        ledger.enter(call, resource, ctx, in_thread=False)
        caught = False
        try:
            while state.value < spec.steps:
                if spec.polite and ctx.is_interrupted():
                    return STOPPED
                if spec.kind == "stubborn":
                    try:
                        await asyncio.sleep(0)
                    except asyncio.CancelledError:
                        if caught or spec.stubborn == "reraise":
                            raise
                        caught = True
                        if spec.stubborn == "return":
                            return STOPPED
                        continue  # ignore this one and keep stepping
                else:
                    await asyncio.sleep(0)
                state.value += 1
                if spec.checkpoint:
                    await ctx.save_state(state)
                    ledger.saved(call)
            if spec.kind == "raises":
                raise Boom(call.index)
            return state.value
        finally:
            ledger.leave(call, resource)

    return sync_compute if spec.kind == "sync" else async_compute


def make_task(call: Call, ledger: Ledger) -> Task[Any]:
    spec = call.spec
    snapshot = None if spec.snapshot is None else str(spec.snapshot).encode()
    return Task(
        name=f"call{call.index}",
        compute=make_compute(call, ledger),
        priority=spec.priority,
        initial_state=call.state,
        saved_state=snapshot,
        timeout=spec.task_timeout,
    )
