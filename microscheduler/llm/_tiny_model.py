"""A tiny random-weight llama model, written as a GGUF file: no download, real llama.cpp.

The text it writes is gibberish, but everything the scheduler cares about is real: the
tokens come one at a time from llama.cpp, each takes real compute, the prefix cache and
greedy determinism behave as they do for a downloaded model. Tests, the demo and the
benchmarks use it; ``write_tiny_model(path)`` takes well under a second.

The vocabulary is byte level (GPT-2 style: each of the 256 bytes is one token, no merges),
so any text tokenizes and detokenizes exactly, one token per byte. The output rows of the
non-printable bytes and of the end-of-text token are zero, so greedy decoding writes
printable ASCII and never stops before ``max_tokens``: generations have the length a test
or a benchmark asks for.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ("CHAT_TEMPLATE", "write_tiny_model")

#: The chat template stored in the model (Jinja, as in Hugging Face tokenizer configs).
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
_PRINTABLE = range(0x20, 0x7F)


def _byte_pieces() -> list[str]:
    """GPT-2's reversible byte-to-character map: the text of each byte's token."""
    visible = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    chars = list(visible)
    extra = 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            chars.append(256 + extra)
            extra += 1
    table = dict(zip(visible, chars, strict=True))
    return [chr(table[byte]) for byte in range(256)]


def write_tiny_model(
    path: str | Path,
    *,
    embedding_length: int = 64,
    block_count: int = 2,
    context_length: int = 4096,
    seed: int = 0,
    half_precision: bool = False,
) -> Path:
    """Write a random-weight llama-architecture model to ``path`` (GGUF, float32).

    The defaults give a file of about 0.5 MB that llama.cpp runs at thousands of tokens a
    second; a larger ``embedding_length`` and ``block_count`` make each token slower, as a
    benchmark that wants model-like timing needs (512 and 4 give about 40 MB).

    Args:
        path: Where to write the file (its folder must exist).
        embedding_length: The model's width; a multiple of 16 (the heads are 16 wide).
        block_count: The number of transformer blocks.
        context_length: The longest context the model accepts, in tokens.
        seed: The weights' random seed: the same seed writes the same model.
        half_precision: Store the weight matrices as float16, as most downloaded models
            store theirs (or coarser): llama.cpp then multiplies a batch of tokens with
            other kernels than a single token (see the docs on greedy exactness).

    Returns:
        ``path``, as a :class:`~pathlib.Path`.

    Raises:
        ImportError: The ``gguf`` package (the ``llm`` extra) is not installed.
        ValueError: A size is out of range.
    """
    try:
        import gguf
        import numpy as np
    except ImportError as exc:  # pragma: no cover - the llm tests run with the extra
        raise ImportError(
            "write_tiny_model() needs the gguf package: pip install 'microscheduler[llm]'"
        ) from exc
    if embedding_length < 16 or embedding_length % 16:
        raise ValueError(
            f"embedding_length must be a positive multiple of 16, got {embedding_length}"
        )
    if block_count < 1:
        raise ValueError(f"block_count must be at least 1, got {block_count}")
    if context_length < 16:
        raise ValueError(f"context_length must be at least 16, got {context_length}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    width, hidden, heads = embedding_length, 2 * embedding_length, embedding_length // 16
    pieces = [*_byte_pieces(), "<|endoftext|>"]
    eos = len(pieces) - 1

    dtype = np.float16 if half_precision else np.float32

    def matrix(rows: int, cols: int) -> np.ndarray:
        return rng.normal(0.0, cols**-0.5, size=(rows, cols)).astype(dtype)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("microscheduler tiny random model")
    writer.add_context_length(context_length)
    writer.add_embedding_length(width)
    writer.add_block_count(block_count)
    writer.add_feed_forward_length(hidden)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads)
    writer.add_rope_dimension_count(16)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(
        gguf.LlamaFileType.MOSTLY_F16 if half_precision else gguf.LlamaFileType.ALL_F32
    )
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(pieces)
    writer.add_token_types([gguf.TokenType.NORMAL] * 256 + [gguf.TokenType.CONTROL])
    # llama.cpp insists on a merges list; this one merge joins two bytes that greedy decoding
    # never writes (see the output rows below), so generated text re-tokenizes as it came.
    writer.add_token_merges([f"{pieces[1]} {pieces[2]}"])
    writer.add_bos_token_id(eos)
    writer.add_eos_token_id(eos)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    vocab = len(pieces)
    output = rng.normal(0.0, 1.0, size=(vocab, width)).astype(dtype)
    output[[b for b in range(256) if b not in _PRINTABLE]] = 0.0
    output[eos] = 0.0
    writer.add_tensor("token_embd.weight", rng.normal(0.0, 1.0, (vocab, width)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(width, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for block in range(block_count):
        prefix = f"blk.{block}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(width, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(prefix + name + ".weight", matrix(width, width))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(width, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", matrix(hidden, width))
        writer.add_tensor(prefix + "ffn_up.weight", matrix(hidden, width))
        writer.add_tensor(prefix + "ffn_down.weight", matrix(width, hidden))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
