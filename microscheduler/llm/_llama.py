"""The in-process backend: a ``llama_cpp.Llama``, one token per worker-thread step."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import anyio
import anyio.to_thread

from ._completion import Completion

__all__ = ("PREFILL_CHUNK", "LlamaStream", "chat_prompt", "is_llama")

#: Tokens of a rerun's context evaluated per step: how long urgent work may wait for one.
PREFILL_CHUNK = 32

# complete()'s sampling keywords and the names llama-cpp-python's generate() gives them.
_SAMPLING = {
    "temperature": "temp",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
}

# A Llama holds one KV cache and one sampler: two generations stepping it in turns would
# corrupt each other. Guarded by a lock because models may be shared by several loops.
_busy: weakref.WeakSet[Any] = weakref.WeakSet()
_busy_lock = threading.Lock()


def is_llama(model: object) -> bool:
    """True if ``model`` is a ``llama_cpp.Llama`` (without importing llama_cpp)."""
    return any(
        cls.__name__ == "Llama" and cls.__module__.startswith("llama_cpp")
        for cls in type(model).__mro__
    )


def chat_prompt(model: Any, messages: str | Sequence[Mapping[str, str]]) -> str:
    """Render chat ``messages`` with the model's own chat template, ready to complete.

    Args:
        model: A ``llama_cpp.Llama`` whose GGUF file carries ``tokenizer.chat_template``.
        messages: ``[{"role": "user", "content": "..."}, ...]``, or one user message as a
            string. The rendered prompt ends where the assistant's answer begins.

    Returns:
        The prompt text for :class:`Completion`.

    Raises:
        TypeError: ``model`` is not a ``llama_cpp.Llama``.
        ValueError: The model's file has no chat template.
    """
    if not is_llama(model):
        raise TypeError(f"chat_prompt() needs a llama_cpp.Llama, got {type(model).__name__}")
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = model.metadata.get("tokenizer.chat_template")
    if not template:
        raise ValueError(
            "chat_prompt(): the model's GGUF file has no tokenizer.chat_template; "
            "build the prompt string yourself"
        )
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    vocab_piece = model.detokenize
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=vocab_piece([model.token_eos()]).decode("utf-8", "replace"),
        bos_token=vocab_piece([model.token_bos()]).decode("utf-8", "replace"),
    )
    prompt: str = formatter(messages=list(messages)).prompt
    return prompt


def sampling_for_llama(sampling: Mapping[str, Any]) -> tuple[dict[str, Any], int | None]:
    """generate()'s keywords for ``sampling`` and the seed; a clear error for others."""
    unknown = sorted(set(sampling) - set(_SAMPLING) - {"seed"})
    if unknown:
        raise TypeError(
            f"complete() got sampling options llama.cpp does not take: {', '.join(unknown)}; "
            f"it takes {', '.join(sorted([*_SAMPLING, 'seed']))}"
        )
    options = {_SAMPLING[k]: v for k, v in sampling.items() if k != "seed"}
    return options, sampling.get("seed")


class LlamaStream:
    """One run of a generation on a ``llama_cpp.Llama``, stepped a token at a time.

    Every token is computed by :meth:`next` in a worker thread, so the event loop never
    waits for the model. The step is shielded: once a token is under way it finishes and
    is kept even if the run is cancelled, so a preemption lands within one token and the
    model is never used by two threads at once.
    """

    __slots__ = ("_generator", "_is_end", "_model", "_tokens", "finished")

    def __init__(self, model: Any, state: Completion, budget: int, sampling: Mapping[str, Any]):
        options, seed = sampling_for_llama(sampling)
        prompt = model.tokenize(state.prompt.encode("utf-8"), add_bos=True, special=True)
        tokens = [*prompt, *state.token_ids]
        if len(tokens) + budget > model.n_ctx():
            raise ValueError(
                f"complete(): the prompt ({len(prompt)} tokens), the text so far "
                f"({len(state.token_ids)}) and the remaining max_tokens ({budget}) need "
                f"{len(tokens) + budget} tokens of context, but the model was opened with "
                f"n_ctx={model.n_ctx()}; open it with a larger n_ctx or ask for fewer tokens"
            )
        import llama_cpp

        vocab = model._model.vocab  # what llama-cpp-python's own create_completion() asks
        self._is_end: Callable[[int], bool] = lambda token: bool(
            llama_cpp.llama_vocab_is_eog(vocab, token)
        )
        self._model = model
        self._tokens = tokens
        # Taken last: from here on only aclose() lets go of the model.
        with _busy_lock:
            if model in _busy:
                raise RuntimeError(
                    "complete(): this llama_cpp.Llama is already generating for another "
                    "compute; one model serves one generation at a time (run its computes on "
                    "a single-processor executor, or give each worker its own model)"
                )
            _busy.add(model)
        try:
            if seed is not None:
                model.set_seed(seed)
            self._generator: Generator[int, Any, None] = model.generate(tokens, **options)
        except BaseException:
            self._release()
            raise
        #: True once the model wrote an end-of-text token.
        self.finished = False

    async def prepare(self, interrupted: Callable[[], bool]) -> bool:
        """Evaluate what the model's cache lacks of prompt + text so far, a chunk of
        ``PREFILL_CHUNK`` tokens a step, stopping early (False) once ``interrupted()``.

        A rerun's context is long (its prompt and every token it had) and the urgent work
        that preempted it has usually replaced the cache: evaluated in one piece, it would
        hold the model, and the next urgent request, for as long as that takes.
        """
        tokens, model = self._tokens, self._model
        cached = 0
        for have, want in zip(model.input_ids[: model.n_tokens], tokens, strict=False):
            if have != want:
                break
            cached += 1
        while cached < len(tokens) - 1:
            if interrupted():
                return False
            upto = min(len(tokens) - 1, cached + PREFILL_CHUNK)
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._evaluate, cached, tokens[cached:upto])
            cached = upto
        return True

    def _evaluate(self, at: int, chunk: list[int]) -> None:
        # What generate() does with the part of a prompt its cache lacks: drop the cache
        # from ``at`` on (eval() does, from n_tokens) and evaluate ``chunk`` there.
        self._model.n_tokens = at
        self._model.eval(chunk)

    def _step(self) -> tuple[int, bytes] | None:
        token = next(self._generator, None)
        if token is None or self._is_end(token):
            return None
        return token, self._model.detokenize([token])

    async def next(self) -> tuple[bytes, int] | None:
        """The next token's bytes and id, or None once the model ends the text."""
        with anyio.CancelScope(shield=True):
            step = await anyio.to_thread.run_sync(self._step)
        if step is None:
            self.finished = True
            return None
        return step[1], step[0]

    async def aclose(self) -> None:
        """Let go of the model (another generation may use it from now on)."""
        self._generator.close()
        self._release()

    def _release(self) -> None:
        with _busy_lock:
            _busy.discard(self._model)
