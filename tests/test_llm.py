"""microscheduler.llm on a real llama.cpp model: a tiny random-weight GGUF written here.

Preemptions are ordered by gates on the generation's own progress (a Completion that sets
an event when it reaches a token count), never by timers.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _llm import open_llama, require_llm_extra

require_llm_extra()

from microscheduler import InterruptContext, Priority, Task, TaskExecutor, WorkerConfig  # noqa: E402
from microscheduler.llm import Completion, chat_prompt, complete, write_tiny_model  # noqa: E402

pytestmark = pytest.mark.llm

CRASH_CHILD = Path(__file__).resolve().parent / "_llm_crash_child.py"
PROMPT = "Summarise the meeting notes:"
TOKENS = 160


class GatedCompletion(Completion):
    """A Completion that sets ``reached[n]`` when its n-th token is appended."""

    def __init__(self, prompt: str, *at: int) -> None:
        super().__init__(prompt)
        self.reached = {n: asyncio.Event() for n in at}

    def append(self, piece: str | bytes, token_id: int | None = None) -> None:
        super().append(piece, token_id)
        if self.tokens in self.reached:
            self.reached[self.tokens].set()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("model") / "tiny.gguf")


@pytest.fixture(scope="module")
def llama(model_path: Path) -> Iterator[Any]:
    model = open_llama(model_path)
    yield model
    model.close()


def generation(llama: Any, max_tokens: int, **options: Any) -> Any:
    """A compute generating greedily from the model into the task's Completion."""

    async def compute(_resource: object, state: Completion, interrupt: InterruptContext) -> str:
        return await complete(
            interrupt, llama, state, max_tokens=max_tokens, temperature=0, **options
        )

    return compute


async def uninterrupted(llama: Any, prompt: str, max_tokens: int) -> str:
    async with TaskExecutor(1) as executor:
        return await executor.execute(
            Task(
                name="ref",
                compute=generation(llama, max_tokens),
                initial_state=lambda: Completion(prompt),
            )
        )


async def test_greedy_generation_preempted_twice_resumes_to_the_uninterrupted_text(
    llama: Any,
) -> None:
    """A greedy generation preempted twice by chat turns on the same model returns exactly
    the text it returns uninterrupted, and generates no token twice."""
    expected = await uninterrupted(llama, PROMPT, TOKENS)
    state = GatedCompletion(PROMPT, 30, 90)
    appended: list[int] = []
    original_append = state.append

    def counting_append(piece: str | bytes, token_id: int | None = None) -> None:
        appended.append(state.tokens)
        original_append(piece, token_id)

    state.append = counting_append  # type: ignore[method-assign]
    async with TaskExecutor(1) as executor:
        background = await executor.submit(
            Task(name="summary", compute=generation(llama, TOKENS), initial_state=state)
        )
        chats = []
        for gate in (30, 90):
            await state.reached[gate].wait()
            chat = Task(
                name="chat",
                compute=generation(llama, 12),
                priority=Priority.UI,
                initial_state=lambda: Completion(chat_prompt(llama, "hello")),
            )
            chats.append(await executor.execute(chat))
        assert await background == expected
        stats = executor.statistics()
    assert stats.preempted == 2
    assert [len(chat) for chat in chats] == [12, 12]
    assert sorted(appended) == list(range(TOKENS)), "a token was generated twice or skipped"
    assert len(expected) == TOKENS


async def test_a_preemption_lands_before_the_generation_produces_another_token(llama: Any) -> None:
    """Urgent work submitted between two tokens starts before the background generation
    has appended more than the one token already under way, even with a long grace
    (the generation stops by itself, not by being cancelled)."""
    state = GatedCompletion(PROMPT, 20)
    seen: list[int] = []

    async def urgent(_resource: object, _state: object, _interrupt: InterruptContext) -> None:
        seen.append(state.tokens)

    config = WorkerConfig(interrupt_grace=60.0)
    async with TaskExecutor.from_config(config) as executor:
        background = await executor.submit(
            Task(
                name="summary",
                compute=generation(llama, 1000, checkpoint_every=10_000),
                initial_state=state,
            )
        )
        await state.reached[20].wait()
        at_submit = state.tokens
        await executor.execute(Task(name="ui", compute=urgent, priority=Priority.UI))
        background.cancel()
        with pytest.raises(asyncio.CancelledError):
            await background
    assert at_submit <= seen[0] <= at_submit + 1


async def test_interrupted_run_checkpoints_the_tokens_since_the_last_checkpoint(llama: Any) -> None:
    """A preempted run saves its text so far although no checkpoint was due (the last was
    at token 4), so the rerun starts exactly where the preemption stopped it."""
    state = GatedCompletion(PROMPT, 6)
    resumed_at: list[int] = []

    async def compute(_resource: object, st: Completion, interrupt: InterruptContext) -> str:
        if interrupt.attempt > 1:
            resumed_at.append(st.tokens)
        return await complete(
            interrupt, llama, st, max_tokens=40, temperature=0, checkpoint_every=4
        )

    async def urgent(_resource: object, _state: object, _interrupt: InterruptContext) -> int:
        return state.tokens

    async with TaskExecutor(1) as executor:
        background = await executor.submit(
            Task(name="summary", compute=compute, initial_state=state)
        )
        await state.reached[6].wait()
        stopped_at = await executor.execute(Task(name="ui", compute=urgent, priority=Priority.UI))
        text = await background
    assert resumed_at == [stopped_at]
    assert len(text) == 40


async def test_complete_refuses_bad_arguments_with_messages_naming_them(llama: Any) -> None:
    """Wrong state, model, budget or sampling option raise at the call that made them."""

    async def run(**kwargs: Any) -> Any:
        async def compute(_r: object, state: Any, interrupt: InterruptContext) -> Any:
            return await complete(
                interrupt, kwargs.pop("model", llama), kwargs.pop("state", state), **kwargs
            )

        async with TaskExecutor(1) as executor:
            return await executor.execute(
                Task(name="t", compute=compute, initial_state=lambda: Completion("x"))
            )

    with pytest.raises(TypeError, match="needs the task's Completion"):
        await run(state=object(), max_tokens=4)
    with pytest.raises(TypeError, match="needs a llama_cpp.Llama or an OpenAIModel"):
        await run(model="gpt", max_tokens=4)
    with pytest.raises(ValueError, match="max_tokens must be a positive int, got 0"):
        await run(max_tokens=0)
    with pytest.raises(TypeError, match="sampling options llama.cpp does not take: stop_words"):
        await run(max_tokens=4, stop_words=["x"])
    with pytest.raises(ValueError, match="n_ctx=2048"):
        await run(max_tokens=5000)
    with pytest.raises(TypeError, match=r"Completion\(prompt=...\) needs a str, got int"):
        Completion(3)  # type: ignore[arg-type]


async def test_one_model_refuses_a_second_concurrent_generation(llama: Any) -> None:
    """Two computes generating on one Llama at once: the second is refused, clearly, and
    the first completes untouched."""
    first = GatedCompletion(PROMPT, 3)
    async with TaskExecutor.from_config(
        WorkerConfig(ui_workers=1, background_workers=1)
    ) as executor:
        background = await executor.submit(
            Task(name="summary", compute=generation(llama, 200), initial_state=first)
        )
        await first.reached[3].wait()
        chat = Task(
            name="chat",
            compute=generation(llama, 4),
            priority=Priority.UI,
            initial_state=lambda: Completion("hi"),
        )
        with pytest.raises(RuntimeError, match="already generating for another compute"):
            await executor.execute(chat)
        assert len(await background) == 200


def test_completion_snapshot_round_trips_a_character_split_between_tokens() -> None:
    """A snapshot taken between the two bytes of one character restores the half and
    completes the character from the next token's byte."""
    state = Completion("p")
    state.append("é".encode()[:1], 200)
    copy = Completion("other")
    copy.restore(state.save())
    copy.append("é".encode()[1:], 201)
    assert (copy.prompt, copy.text, copy.tokens, copy.token_ids) == ("p", "é", 2, [200, 201])


def test_chat_prompt_renders_the_models_template(llama: Any) -> None:
    """chat_prompt() renders the GGUF's chat template, ending where the answer begins."""
    assert chat_prompt(llama, "hi") == "<|user|>\nhi\n<|assistant|>\n"


def test_a_keyed_generation_killed_with_sigkill_continues_from_its_last_checkpoint(
    model_path: Path, tmp_path: Path, llama: Any
) -> None:
    """A process generating a keyed completion is killed with SIGKILL; a new process
    resumes from its last durable checkpoint (every 16 tokens), generates only the
    rest, and returns exactly the uninterrupted text."""
    from test_crash_resume import numbers, run_until

    expected = asyncio.run(uninterrupted(llama, PROMPT, 120))
    command = [sys.executable, str(CRASH_CHILD), str(model_path), str(tmp_path / "s.db"), "120"]
    lines = run_until(command, lambda line: line == "token 40")
    last = max(numbers(lines, "token"))
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    out = second.stdout.splitlines()
    resumed = int(out[0].split()[1])
    # Each checkpoint is durable before the next token is asked for.
    assert resumed % 16 == 0
    assert 16 * ((last - 1) // 16) <= resumed <= last
    assert out[0] == f"resumed {resumed} attempt 1"
    assert numbers(out, "token") == list(range(resumed + 1, 121))
    assert out[-1] == f"result {expected}"


async def test_the_fastapi_example_serves_chat_and_summaries_from_one_real_model(
    llama: Any,
) -> None:
    """With a llama.cpp model the FastAPI example answers chat turns and writes summaries
    with it; a summary returns the text of an uninterrupted greedy generation, whether or
    not a chat turn preempted it."""
    import httpx
    from _integration import load_example
    from asgi_lifespan import LifespanManager

    example = load_example("fastapi_app")
    expected = await uninterrupted(llama, "Summarise the notes:\n", 400)
    app = example.create_app(llm=llama)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test"
        ) as client,
    ):
        accepted = await client.post(
            "/summarise", json={"document": "the notes", "max_tokens": 400}
        )
        job = accepted.json()["job"]
        chat = await client.post("/chat", json={"message": "hello"})
        assert chat.status_code == 200
        assert len(chat.json()["reply"]) == example.CHAT_TOKENS
        # The handle itself, as the example's status endpoint reads it.
        summary = await app.state.jobs.handles[job]
    assert summary["summary"] == expected
    assert summary["tokens"] == 400


async def test_the_docs_llm_snippet_preempts_a_summary_with_a_chat_turn(llama: Any) -> None:
    """The llm snippet of docs/integrations.md (and the README) runs on a real model: the
    chat turn and the summary both have their 200 tokens, and the summary is the
    uninterrupted text."""
    from _integration import doc_snippet

    namespace: dict[str, Any] = {}
    exec(compile(doc_snippet("llm"), "docs/integrations.md:llm", "exec"), namespace)
    chat, summary = await namespace["serve"](llama)
    assert len(chat) == 200
    assert summary == await uninterrupted(llama, "Summarise the notes:\n", 200)


def test_the_demo_runs_on_a_real_model_and_regenerates_no_token(model_path: Path) -> None:
    """``demo --model`` generates summaries and chat turns with the model; every preempted
    summary resumes at the token it was preempted after, and no token is generated twice."""
    import io
    import re

    from microscheduler._demo import main

    out = io.StringIO()
    assert main(["demo", "--model", str(model_path), "--duration", "1.5"], out=out) == 0
    text = out.getvalue()
    assert "chat turn #1 answered" in text
    assert "generated twice    0 tokens" in text
    stopped = re.findall(r"summary (\d+) preempted after (\d+) tokens", text)
    resumed = re.findall(r"summary (\d+) resumes at token (\d+)", text)
    assert resumed == stopped[: len(resumed)]


def test_the_demo_refuses_a_model_path_that_is_not_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``demo --model`` with a missing file exits with a usage error naming the path."""
    from microscheduler._demo import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--model", str(tmp_path / "missing.gguf")])
    assert exit_info.value.code == 2
    assert "--model: no such file" in capsys.readouterr().err
