"""complete(): stream a generation into a Completion, checkpointing, stopping when told."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from microscheduler import InterruptContext

from ._completion import Completion
from ._llama import LlamaStream, is_llama
from ._server import ServerStream, as_server_model

__all__ = ("complete",)


class _TokenStream(Protocol):
    finished: bool

    async def prepare(self, interrupted: Callable[[], bool]) -> bool: ...

    async def next(self) -> tuple[str | bytes, int | None] | None: ...

    async def aclose(self) -> None: ...


def _open(model: object, state: Completion, budget: int, sampling: dict[str, Any]) -> _TokenStream:
    if is_llama(model):
        return LlamaStream(model, state, budget, sampling)
    server = as_server_model(model)
    if server is not None:
        return ServerStream(server, state, budget, sampling)
    raise TypeError(
        f"complete() needs a llama_cpp.Llama or an OpenAIModel(client=AsyncOpenAI(...), "
        f"model=NAME) (or a (client, NAME) pair), got {type(model).__name__}"
    )


def _check(state: object, max_tokens: object, checkpoint_every: object) -> None:
    if not isinstance(state, Completion):
        raise TypeError(
            f"complete() needs the task's Completion as its state, got {type(state).__name__}; "
            f"pass Task(initial_state=lambda: Completion(prompt))"
        )
    for name, value in (("max_tokens", max_tokens), ("checkpoint_every", checkpoint_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"complete(): {name} must be a positive int, got {value!r}")


async def complete(
    interrupt: InterruptContext,
    model: object,
    state: Completion,
    *,
    max_tokens: int,
    checkpoint_every: int = 16,
    **sampling: Any,
) -> str:
    """Generate up to ``max_tokens`` tokens after ``state.prompt``; return the whole text.

    Call it from a compute whose task has a :class:`Completion` as its state. Every token
    is appended to ``state``; every ``checkpoint_every`` tokens the state is saved with
    ``await interrupt.save_state(state)`` (for a keyed task, durably), and it is saved once
    more when the run is interrupted, so a rerun regenerates nothing. A rerun (after a
    preemption, or a restart restoring a keyed task's snapshot) continues from prompt +
    text so far with the tokens left of ``max_tokens``.

    When the run is interrupted, the generation stops before its next token: with an
    in-process model the token under way is finished and kept (the model is never used
    by two computes at once), with a server the stream is closed at once, which makes the
    server stop generating. It then returns the text so far (a preempted run is rerun
    anyway; a run with ``interrupt.no_reschedule()`` gives its caller this partial text).

    Greedy sampling (``temperature=0``) is deterministic: with a ``llama_cpp.Llama``
    opened with ``n_batch=1``, a preempted and resumed generation returns exactly the text
    of an uninterrupted one (see the docs for larger batches).

    Args:
        interrupt: The compute's InterruptContext.
        model: A ``llama_cpp.Llama``, or an :class:`OpenAIModel` for an OpenAI-compatible
            server (a ``(client, model_name)`` pair is taken too).
        state: The task's Completion (restored on a rerun).
        max_tokens: The most tokens the whole generation may have, over all runs.
        checkpoint_every: Tokens between two checkpoints.
        **sampling: Sampling options: ``temperature``, ``top_p``, ``top_k``, ``min_p``,
            ``repeat_penalty``, ``seed``, ... (for a server, any keyword its
            ``completions.create`` takes, e.g. ``extra_body``).

    Returns:
        The generated text (without the prompt), all runs' tokens together.

    Raises:
        TypeError: ``model`` or ``state`` is not one of the kinds above, or a sampling
            option is unknown to llama.cpp.
        ValueError: ``max_tokens`` or ``checkpoint_every`` is not a positive int, or the
            generation would not fit the model's context.
        RuntimeError: The ``llama_cpp.Llama`` is already generating for another compute.
    """
    _check(state, max_tokens, checkpoint_every)
    budget = max_tokens - state.tokens
    if state.finished or budget <= 0:
        return state.text
    stream = _open(model, state, budget, sampling)
    unsaved = 0
    try:
        if not await stream.prepare(interrupt.is_interrupted):
            return state.text
        while state.tokens < max_tokens:
            if interrupt.is_interrupted():
                if unsaved:
                    await interrupt.save_state(state)
                return state.text
            step = await stream.next()
            if step is None:
                state.finished = stream.finished
                break
            state.append(*step)
            unsaved += 1
            if unsaved == checkpoint_every:
                unsaved = 0
                await interrupt.save_state(state)
    except asyncio.CancelledError:
        # Cancelled between two tokens (a server's stream, or a checkpoint's await): keep
        # what has come; the save is shielded, so it completes while the run unwinds.
        if unsaved:
            await interrupt.save_state(state)
        raise
    finally:
        await stream.aclose()
    return state.text
