"""Which tokenizer counts a model's tokens, loaded only from what is on disk, and the estimate when none is.

OpenAI's models use tiktoken encodings (`o200k_base` for the GPT-4o and GPT-4.1
families, `cl100k_base` for GPT-4 and GPT-3.5). tiktoken downloads an encoding's
file once and caches it (in `$TIKTOKEN_CACHE_DIR`, else a `data-gym-cache` folder
in the temp dir); this module reads that cache and never goes to the network, so
a count is never slow and never hangs offline. Without an encoding (another
vendor's model, or no cached copy) a count is an estimate, ~4 characters a
token, and says so: a fine-tuning bill built on it is marked as estimated.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from assay.model import estimate_tokens

__all__ = ["Tokenizer", "encoding_for_model", "tiktoken_cache_dir", "tokenizer_for"]

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# Families tiktoken itself does not map (fine-tuned names, dated snapshots it has not heard of).
_PREFIXES = (
    ("ft:", None),  # ft:BASE:org:suffix:id -> the base's encoding
    ("gpt-4o", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
)
DEFAULT_OPENAI = "o200k_base"  # the encoding of OpenAI's current fine-tunable models


@dataclass(frozen=True)
class Tokenizer:
    """Counts tokens of text; `exact` when it is the model's own encoding, else an estimate."""

    name: str  # the encoding's name, or "estimate"
    exact: bool
    note: str  # one line for the user: what counted, and what to do for an exact count
    _encode_batch: Callable[[Sequence[str]], list[int]] | None = None

    def count(self, text: str) -> int:
        return self.count_batch([text])[0]

    def count_batch(self, texts: Sequence[str]) -> list[int]:
        """Token counts of many texts."""
        if self._encode_batch is None:
            return [estimate_tokens(t) for t in texts]
        return self._encode_batch(texts)


def encoding_for_model(model: str | None) -> str | None:
    """The tiktoken encoding an OpenAI model uses, or None for a model that is not OpenAI's."""
    if not model:
        return None
    name = model.split("/", 1)[1] if model.startswith("openai/") else model
    if name.startswith("ft:"):
        parts = name.split(":")
        name = parts[1] if len(parts) > 1 else ""
    for prefix, encoding in _PREFIXES:
        if encoding is not None and name.startswith(prefix):
            return encoding
    return None


def tiktoken_cache_dir() -> Path:
    """Where tiktoken keeps downloaded encodings (the same rule tiktoken applies)."""
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if os.environ.get(var):
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _cached(encoding: str) -> bool:
    key = hashlib.sha1(_BLOB.format(encoding).encode()).hexdigest()
    return (tiktoken_cache_dir() / key).is_file()


def tokenizer_for(model: str | None, default_encoding: str | None = None) -> Tokenizer:
    """The model's own encoding when tiktoken and a cached copy are here, else the estimate (saying why)."""
    encoding = encoding_for_model(model) or default_encoding
    if encoding is None:
        who = f"model {model!r}" if model else "this format"
        return Tokenizer("estimate", False, f"estimate (~4 characters a token): no offline tokenizer for {who}")
    try:
        import tiktoken
    except ImportError:
        return Tokenizer("estimate", False, f"estimate (~4 characters a token): tiktoken is not installed ({encoding})")
    if not _cached(encoding):
        return Tokenizer(
            "estimate",
            False,
            f"estimate (~4 characters a token): no cached copy of {encoding} in {tiktoken_cache_dir()} "
            f"(online, `python -c \"import tiktoken; tiktoken.get_encoding('{encoding}')\"` caches it)",
        )
    loaded: list[Callable[[str], list[int]]] = []  # loaded on first use: a process that only merges never pays

    def batch(texts: Sequence[str]) -> list[int]:
        if not loaded:  # text containing "<|endoftext|>" is counted as text, as the API bills it
            loaded.append(tiktoken.get_encoding(encoding).encode_ordinary)
        encode = loaded[0]
        # A plain loop: tiktoken's batch call hands each text to a thread pool, which costs more than it saves
        # on short texts (measured: 2x slower on 97k chat messages).
        return [len(encode(t)) for t in texts]

    whose = f", the encoding of {model}" if model and encoding_for_model(model) else ""
    return Tokenizer(encoding, True, f"{encoding} (tiktoken){whose}", batch)
