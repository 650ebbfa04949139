"""microscheduler.llm against a real OpenAI-compatible server: llama.cpp's llama-server.

The server runs the tiny random-weight model written here, with one slot: a generation it
did not stop when its client hung up would hold that slot and generate on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from _llm import LlamaServer, find_llama_server, require_llm_extra, unavailable

require_llm_extra()

from test_llm import PROMPT, GatedCompletion  # noqa: E402

from microscheduler import InterruptContext, Priority, Task, TaskExecutor  # noqa: E402
from microscheduler.llm import Completion, OpenAIModel, complete, write_tiny_model  # noqa: E402

pytestmark = pytest.mark.llm
BUDGET = 1000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    binary = find_llama_server()
    if binary is None:
        unavailable(
            "no llama-server binary: build it with .ci/build-llama-server VERSION "
            "(.ci/run does), or set LLAMA_SERVER to its path"
        )
    assert binary is not None
    # Wider and deeper than the default (about a millisecond a token here), so that the few
    # tokens a server makes before it notices a closed connection stay few.
    folder = tmp_path_factory.mktemp("model")
    model = write_tiny_model(folder / "small.gguf", embedding_length=256, block_count=4)
    running = LlamaServer(binary, model, _free_port())
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def server_model(server: LlamaServer) -> OpenAIModel:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    return OpenAIModel(client=client, model="tiny")


def generation(model: OpenAIModel, max_tokens: int) -> Any:
    async def compute(_resource: object, state: Completion, interrupt: InterruptContext) -> str:
        return await complete(interrupt, model, state, max_tokens=max_tokens, temperature=0)

    return compute


async def test_an_interrupted_stream_is_closed_and_the_server_is_free_for_the_chat(
    server: LlamaServer,
) -> None:
    """A chat turn preempts a streaming background generation: its stream is closed, the
    server stops generating for it within a few tokens (its one slot answers the chat),
    and the rerun continues with only the tokens left of the budget."""
    model = server_model(server)
    before = server.metric("tokens_predicted_total")
    state = GatedCompletion(PROMPT, 20)
    async with TaskExecutor(1) as executor:
        background = await executor.submit(
            Task(name="summary", compute=generation(model, BUDGET), initial_state=state)
        )
        await state.reached[20].wait()
        chat = await executor.execute(
            Task(
                name="chat",
                compute=generation(model, 8),
                priority=Priority.UI,
                initial_state=lambda: Completion("<|user|>\nhello\n<|assistant|>\n"),
            )
        )
        text = await background
        assert executor.statistics().preempted == 1
    await model.client.close()
    predicted = server.metric("tokens_predicted_total") - before
    assert len(chat) == 8
    assert len(text) == BUDGET
    print(f"llama-server generated {predicted - BUDGET - 8:.0f} tokens after the disconnect")
    # A server that kept generating after the disconnect would have made the first
    # request's whole budget on top (about 1,000 more tokens); llama-server notices the
    # closed connection when it next writes to it, a few tokens later (up to 25 seen here).
    assert predicted - BUDGET - 8 < 300, f"the server generated {predicted} tokens"


async def test_a_server_generation_checkpoints_and_resumes_from_prompt_and_text(
    server: LlamaServer,
) -> None:
    """A preempted server generation's rerun sends prompt + text so far and the
    remaining budget: the whole text has exactly max_tokens tokens and begins with what
    the first run streamed."""
    model = server_model(server)
    state = GatedCompletion(PROMPT, 10)
    first_run: list[str] = []

    async def urgent(_resource: object, _state: object, _interrupt: InterruptContext) -> None:
        first_run.append(state.text)

    async with TaskExecutor(1) as executor:
        background = await executor.submit(
            Task(name="summary", compute=generation(model, 60), initial_state=state)
        )
        await state.reached[10].wait()
        await executor.execute(Task(name="ui", compute=urgent, priority=Priority.UI))
        text = await background
    await model.client.close()
    assert len(text) == 60
    assert text.startswith(first_run[0])
    assert len(first_run[0]) >= 10


def test_openai_model_refuses_a_client_without_completions() -> None:
    """OpenAIModel names what it needs when given something that is not a client."""
    with pytest.raises(TypeError, match=r"needs an openai.AsyncOpenAI"):
        OpenAIModel(client=object(), model="tiny")
    from openai import AsyncOpenAI

    with pytest.raises(TypeError, match="needs the model's name"):
        OpenAIModel(client=AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="x"), model="")
