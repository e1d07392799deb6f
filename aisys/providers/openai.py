"""OpenAI chat-completions and embeddings shapes, as SDK objects or plain dicts.

Decorator mode: reads what a user's function got back from the ``openai`` SDK (or
any OpenAI-compatible endpoint). Knows nothing of spans or retries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aisys.call import Call
from aisys.providers.base import StreamKind, StreamState, field

__all__ = ["READER"]

PROVIDER = "openai"
_RESPONSE_OBJECTS = frozenset({"chat.completion", "text_completion"})


def _is_openai_object(obj: Any) -> bool:
    return type(obj).__module__.startswith("openai.")


def _read_usage(call: Call, usage: Any) -> None:
    if usage is None:
        return
    prompt = field(usage, "prompt_tokens")
    completion = field(usage, "completion_tokens")
    prompt_details = field(usage, "prompt_tokens_details")
    completion_details = field(usage, "completion_tokens_details")
    call.set_usage(
        input_tokens=prompt if isinstance(prompt, int) else None,
        output_tokens=completion if isinstance(completion, int) else None,
        cache_read_input_tokens=_int(field(prompt_details, "cached_tokens")),
        reasoning_output_tokens=_int(field(completion_details, "reasoning_tokens")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _OpenAIReader:
    def read(self, call: Call, result: Any) -> bool:
        kind = _object_kind(result)
        if kind is None:
            return False
        call.provider = call.provider or PROVIDER
        call.response_model = _str(field(result, "model"))
        if kind == "embeddings":
            if call.operation == "chat":
                call.operation = "embeddings"
            _read_usage(call, field(result, "usage"))
            return True
        call.response_id = _str(field(result, "id"))
        choices = field(result, "choices") or ()
        call.finish_reasons = tuple(
            reason
            for choice in choices
            if (reason := _str(field(choice, "finish_reason")))
        )
        if choices:
            first = choices[0]
            message = field(first, "message")
            text = (
                field(message, "content")
                if message is not None
                else field(first, "text")
            )
            call.output_text = text if isinstance(text, str) else None
        _read_usage(call, field(result, "usage"))
        return True

    def read_chunk(self, call: Call, chunk: Any, state: StreamState) -> bool:
        if _object_kind(chunk) != "chunk":
            return False
        call.provider = call.provider or PROVIDER
        call.response_id = call.response_id or _str(field(chunk, "id"))
        call.response_model = call.response_model or _str(field(chunk, "model"))
        for choice in field(chunk, "choices") or ():
            delta = field(choice, "delta")
            text = field(delta, "content") if delta is not None else None
            if isinstance(text, str):
                state.parts.append(text)
            reason = _str(field(choice, "finish_reason"))
            if reason:
                call.finish_reasons = (*call.finish_reasons, reason)
        _read_usage(call, field(chunk, "usage"))
        return True

    def stream_kind(self, result: Any) -> StreamKind | None:
        cls = type(result)
        if not cls.__module__.startswith("openai"):
            return None
        names = {base.__name__ for base in cls.__mro__}
        if "AsyncStream" in names:
            return "async"
        if "Stream" in names:
            return "sync"
        return None


def _object_kind(obj: Any) -> str | None:
    """``response``, ``chunk``, ``embeddings`` or None for a non-OpenAI object."""
    if type(obj) is dict or isinstance(obj, Mapping):
        tag = obj.get("object")
    elif _is_openai_object(obj):
        tag = getattr(obj, "object", None)
    else:
        return None
    if tag in _RESPONSE_OBJECTS:
        return "response"
    if tag == "chat.completion.chunk":
        return "chunk"
    if tag == "list" and isinstance(field(obj, "data"), list):
        return "embeddings"
    if tag is None and isinstance(obj, Mapping) and "choices" in obj:
        return "response"
    return None


READER = _OpenAIReader()
