"""Token-streaming computes on a real language model (install the ``llm`` extra).

A background generation that urgent work preempts between two tokens, and that later
continues from the tokens it already had instead of starting over::

    llama = Llama(model_path="model.gguf", n_batch=1)  # llama-cpp-python

    async def summarise(_resource, state, interrupt):
        return await complete(interrupt, llama, state, max_tokens=400, temperature=0)

    Task(name="summary", compute=summarise, initial_state=lambda: Completion(prompt))

* :class:`Completion` — the task state: prompt, text so far, tokens (``save``/``restore``).
* :func:`complete` — streams tokens into it, checkpoints every ``checkpoint_every`` tokens,
  stops at the next token when interrupted, and continues on a rerun.
* Backends: an in-process ``llama_cpp.Llama`` (llama-cpp-python; each token computed in
  a worker thread) or an :class:`OpenAIModel` — the ``openai`` package's ``AsyncOpenAI``
  pointed at an OpenAI-compatible server (llama.cpp's ``llama-server``, vLLM, Ollama,
  LM Studio).
* :func:`chat_prompt` — a chat turn rendered with the model's own chat template.
* :func:`write_tiny_model` — a tiny random-weight model file for tests and demos.

Neither backend's package is imported until it is used, and the core package never
imports this module.
"""

from __future__ import annotations

from ._completion import Completion as Completion
from ._generate import complete as complete
from ._llama import chat_prompt as chat_prompt
from ._server import OpenAIModel as OpenAIModel
from ._tiny_model import write_tiny_model as write_tiny_model

__all__ = ("Completion", "OpenAIModel", "chat_prompt", "complete", "write_tiny_model")
