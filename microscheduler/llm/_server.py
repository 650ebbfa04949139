"""The server backend: an OpenAI-compatible server's streaming completions endpoint."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from ._completion import Completion

__all__ = ("OpenAIModel", "ServerStream", "as_server_model")


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIModel:
    """A model behind an OpenAI-compatible server, for :func:`complete`.

    Attributes:
        client: An ``openai.AsyncOpenAI`` (its ``base_url`` pointing at the server).
        model: The model name the server knows it by.
    """

    __module__ = "microscheduler.llm"

    client: Any
    model: str

    def __post_init__(self) -> None:
        completions = getattr(self.client, "completions", None)
        if completions is None or not callable(getattr(completions, "create", None)):
            raise TypeError(
                f"OpenAIModel(client=...) needs an openai.AsyncOpenAI (or a client with "
                f"completions.create), got {type(self.client).__name__}"
            )
        if not isinstance(self.model, str) or not self.model:
            raise TypeError(f"OpenAIModel(model=...) needs the model's name, got {self.model!r}")


def as_server_model(model: object) -> OpenAIModel | None:
    """``model`` as an :class:`OpenAIModel` (also from a ``(client, name)`` pair), or None."""
    if isinstance(model, OpenAIModel):
        return model
    if isinstance(model, tuple) and len(model) == 2 and isinstance(model[1], str):
        return OpenAIModel(client=model[0], model=model[1])
    return None


class ServerStream:
    """One run of a generation as one streaming request to the server.

    The request carries prompt + text so far and the remaining token budget. Closing the
    stream closes the HTTP response, which is how a client tells a server to stop:
    llama.cpp's ``llama-server`` then ends the generation and frees its slot.
    """

    __slots__ = ("_chunks", "_client", "_request", "_stream", "finished")

    def __init__(
        self, model: OpenAIModel, state: Completion, budget: int, sampling: Mapping[str, Any]
    ) -> None:
        self._request = {
            **sampling,
            "model": model.model,
            "prompt": state.prompt + state.text,
            "max_tokens": budget,
            "stream": True,
        }
        self._stream: Any = None
        self._chunks: Any = None
        self._client = model.client
        #: True once the server said the model ended the text (not the token budget).
        self.finished = False

    async def prepare(self, interrupted: Callable[[], bool]) -> bool:
        """Nothing to prepare: the server evaluates the prompt as part of the request."""
        return True

    async def next(self) -> tuple[str, None] | None:
        """The next streamed piece of text (one token), or None once the stream has ended."""
        if self._stream is None:
            self._stream = await self._client.completions.create(**self._request)
            self._chunks = self._stream.__aiter__()
        while True:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                return None
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.finish_reason == "stop":
                self.finished = True
            if choice.text:
                return choice.text, None

    async def aclose(self) -> None:
        """Close the response (shielded: a cancelled run still hangs up on the server)."""
        if self._stream is not None:
            with anyio.CancelScope(shield=True):
                await self._stream.close()
