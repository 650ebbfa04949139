"""Completion: the resumable state of one text generation."""

from __future__ import annotations

import base64
import codecs
import json

__all__ = ("Completion",)


class Completion:
    """A task state for a text generation: the prompt, the text so far and its tokens.

    Pass one as a task's ``initial_state`` (or a factory making one) and hand it to
    :func:`complete`, which appends every generated token and checkpoints it. A rerun
    after a preemption, or a new process restoring a keyed task's snapshot, continues
    from prompt + text instead of starting over.

    Attributes:
        prompt: The text the generation continues.
        text: The text generated so far (without the prompt).
        tokens: How many tokens have been generated so far.
        token_ids: The generated token ids, when the model reports them (llama.cpp in
            process does; a server streams text only). A rerun re-feeds these exact
            tokens, so the model sees the sequence it generated, not a re-tokenization.
        finished: True once the model ended the text itself (an end-of-text token or a
            stop sequence), rather than running out of ``max_tokens``.
    """

    __module__ = "microscheduler.llm"
    __slots__ = ("_decoder", "finished", "prompt", "text", "token_ids", "tokens")

    def __init__(self, prompt: str) -> None:
        if not isinstance(prompt, str):
            raise TypeError(f"Completion(prompt=...) needs a str, got {type(prompt).__name__}")
        self.prompt = prompt
        self.text = ""
        self.tokens = 0
        self.token_ids: list[int] = []
        self.finished = False
        # A token may end inside a multi-byte character; its bytes wait here for the rest.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def append(self, piece: str | bytes, token_id: int | None = None) -> None:
        """Add one generated token: its text (or its bytes) and, if known, its id."""
        if isinstance(piece, bytes):
            piece = self._decoder.decode(piece)
        self.text += piece
        self.tokens += 1
        if token_id is not None:
            self.token_ids.append(token_id)

    def save(self) -> bytes:
        """Snapshot the generation as JSON bytes."""
        pending, _ = self._decoder.getstate()
        return json.dumps(
            {
                "prompt": self.prompt,
                "text": self.text,
                "tokens": self.tokens,
                "token_ids": self.token_ids,
                "pending": base64.b64encode(pending).decode("ascii"),
                "finished": self.finished,
            }
        ).encode()

    def restore(self, data: bytes) -> None:
        """Continue from a snapshot made by :meth:`save`."""
        saved = json.loads(data)
        self.prompt = saved["prompt"]
        self.text = saved["text"]
        self.tokens = saved["tokens"]
        self.token_ids = list(saved["token_ids"])
        self.finished = saved["finished"]
        self._decoder.reset()
        self._decoder.setstate((base64.b64decode(saved["pending"]), 0))

    def __repr__(self) -> str:
        ended = " finished" if self.finished else ""
        return f"<Completion tokens={self.tokens}{ended} text={self.text[-24:]!r}>"
