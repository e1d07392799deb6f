"""OpenAI chat completions and embeddings: the adapter, and the reader for decorator mode.

Speaks to any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama, LiteLLM
proxy). Translation only: builds requests, parses responses and stream events, and
reads what the official ``openai`` SDK returned to a user's function. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.errors import ResponseFormatError, ServerError
from aisys.providers.base import (
    BaseAdapter,
    StreamKind,
    StreamState,
    Target,
    endpoint,
    field,
    joined_tool_calls,
    json_body,
    sse_data,
)
from aisys.providers.base import as_count as _count
from aisys.providers.base import as_str as _str

if TYPE_CHECKING:
    import httpx2

    from aisys.types import ChatChunk, ChatRequest, ChatResponse, EmbeddingResponse

__all__ = ["ADAPTER", "READER", "OpenAIAdapter"]

PROVIDER = "openai"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
_RESPONSE_OBJECTS = frozenset({"chat.completion", "text_completion"})
# Request parameters sent as they are; anything else goes through ``extra``.
_PARAMS = (
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "frequency_penalty",
    "presence_penalty",
    "n",
    "user",
)


class OpenAIAdapter(BaseAdapter):
    """Chat completions and embeddings in the OpenAI wire format."""

    name = PROVIDER
    env_prefix = "OPENAI"
    default_base_url = DEFAULT_BASE_URL

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        headers.update(target.headers)
        return headers

    def chat_request(self, target: Target, request: ChatRequest) -> httpx2.Request:
        """``POST {base_url}/chat/completions``; streams ask for usage in the last chunk."""
        import httpx2

        body: dict[str, Any] = {"model": target.model, "messages": request.messages}
        for key in _PARAMS:
            value = request.params.get(key)
            if value is not None:
                body[key] = value
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        body.update(request.extra)
        return httpx2.Request(
            "POST",
            endpoint(target.base_url, "/chat/completions"),
            headers=self._headers(target),
            content=json.dumps(body).encode(),
        )

    def parse_chat(self, target: Target, response: httpx2.Response) -> ChatResponse:
        """A chat completion as a `ChatResponse`."""
        body = json_body(self.name, response)
        choices = body.get("choices") if type(body) is dict else None
        if not isinstance(choices, list) or not choices:
            raise ResponseFormatError(
                f"{self.name} sent JSON without choices (keys: {sorted(body) if isinstance(body, dict) else type(body).__name__})",
                provider=self.name,
                status_code=response.status_code,
            )
        # Parsed JSON holds only dicts, lists and scalars: plain `get`s, no `field`.
        choice = choices[0] if type(choices[0]) is dict else {}
        message = choice.get("message")
        if type(message) is not dict:
            message = {}
        return _response(
            provider=self.name,
            text=_str(message.get("content")) or "",
            tool_calls=_tool_calls(message.get("tool_calls")),
            finish_reason=_str(choice.get("finish_reason")),
            model=_str(body.get("model")) or target.model,
            response_id=_str(body.get("id")),
            usage=body.get("usage"),
            raw=body,
        )

    def stream_parser(self, target: Target) -> _OpenAIStream:
        """A parser for one ``stream=true`` chat call."""
        return _OpenAIStream(self.name, target.model)

    def embed_request(
        self, target: Target, texts: Sequence[str], extra: Mapping[str, Any]
    ) -> httpx2.Request:
        """``POST {base_url}/embeddings``."""
        import httpx2

        body = {"model": target.model, "input": list(texts), **extra}
        return httpx2.Request(
            "POST",
            endpoint(target.base_url, "/embeddings"),
            headers=self._headers(target),
            content=json.dumps(body).encode(),
        )

    def parse_embed(
        self, target: Target, response: httpx2.Response
    ) -> EmbeddingResponse:
        """Vectors in input order, with the tokens the provider counted."""
        from aisys.types import EmbeddingResponse, Usage

        body = json_body(self.name, response)
        data = field(body, "data")
        if not isinstance(data, list):
            raise ResponseFormatError(
                f"{self.name} sent an embeddings answer without data",
                provider=self.name,
                status_code=response.status_code,
            )
        ordered = sorted(data, key=lambda item: field(item, "index") or 0)
        usage = field(body, "usage")
        prompt = _count(field(usage, "prompt_tokens"))
        return EmbeddingResponse(
            vectors=[list(field(item, "embedding") or ()) for item in ordered],
            model=_str(field(body, "model")) or target.model,
            provider=self.name,
            usage=Usage(input_tokens=prompt or 0, estimated=prompt is None),
            raw=body,
        )


class _OpenAIStream:
    """Chat-completion chunks → `ChatChunk`s; the whole stream → one `ChatResponse`."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.response_id: str | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.done = False

    @property
    def complete(self) -> bool:
        """``[DONE]`` arrived, or at least the finish reason did."""
        return self.done or self.finish_reason is not None

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """One ``data:`` line's chunk."""
        from aisys.types import ChatChunk

        if data.strip() == "[DONE]":
            self.done = True
            return []
        payload = sse_data(data, self.provider)
        if isinstance(payload, dict) and payload.get("error"):
            error = payload["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ServerError(
                f"{self.provider} reported an error mid-stream: {message}",
                provider=self.provider,
            )
        self.response_id = self.response_id or _str(field(payload, "id"))
        self.model = _str(field(payload, "model")) or self.model
        if field(payload, "usage"):
            self.usage = field(payload, "usage")
        chunks = []
        for choice in field(payload, "choices") or ():
            delta = field(choice, "delta") or {}
            text = _str(field(delta, "content")) or ""
            for call in field(delta, "tool_calls") or ():
                slot = self.tools.setdefault(
                    _count(field(call, "index")) or 0,
                    {"id": "", "name": "", "arguments": []},
                )
                function = field(call, "function") or {}
                slot["id"] = _str(field(call, "id")) or slot["id"]
                slot["name"] = _str(field(function, "name")) or slot["name"]
                slot["arguments"].append(_str(field(function, "arguments")) or "")
            reason = _str(field(choice, "finish_reason"))
            if reason:
                self.finish_reason = reason
            if text or reason:
                self.parts.append(text)
                chunks.append(ChatChunk(text=text, finish_reason=reason, raw=payload))
        return chunks

    def response(self) -> ChatResponse:
        """The text, tool calls, finish reason and usage received."""
        return _response(
            provider=self.provider,
            text="".join(self.parts),
            tool_calls=joined_tool_calls(self.tools),
            finish_reason=self.finish_reason,
            model=self.model,
            response_id=self.response_id,
            usage=self.usage,
            raw=None,
        )


def _tool_calls(raw: Any) -> tuple[Any, ...]:
    if not raw:
        return ()
    from aisys.types import ToolCall

    calls = []
    for item in raw or ():
        function = field(item, "function") or {}
        calls.append(
            ToolCall(
                id=_str(field(item, "id")) or "",
                name=_str(field(function, "name")) or "",
                arguments=_str(field(function, "arguments")) or "{}",
            )
        )
    return tuple(calls)


def _response(
    *,
    provider: str,
    text: str,
    tool_calls: tuple[Any, ...],
    finish_reason: str | None,
    model: str | None,
    response_id: str | None,
    usage: Any,
    raw: Any,
) -> ChatResponse:
    """A `ChatResponse`; usage the provider did not send is marked estimated (aisys counts it)."""
    import aisys.types as types  # a plain import: `from` costs 0.5 µs a call here

    if type(usage) is not dict:  # JSON: anything but an object carries no counts
        usage = None
    prompt = _count(usage.get("prompt_tokens")) if usage else None
    completion = _count(usage.get("completion_tokens")) if usage else None
    counted: dict[str, Any]
    if prompt is None or completion is None:
        counted = {"estimated": True}
    else:
        counted = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "cache_read_input_tokens": _count(
                field(usage.get("prompt_tokens_details"), "cached_tokens")
            )
            or 0,
            "reasoning_output_tokens": _count(
                field(usage.get("completion_tokens_details"), "reasoning_tokens")
            )
            or 0,
        }
    # One validation of plain data (usage nested): cheaper than building each model.
    return types.ChatResponse.model_validate(
        {
            "text": text,
            "tool_calls": tool_calls,
            "finish_reason": finish_reason,
            "model": model,
            "provider": provider,
            "id": response_id,
            "usage": counted,
            "raw": raw,
        }
    )


def _read_completion_dict(call: Call, body: dict[str, Any]) -> bool:
    """A chat completion returned as a plain dict, the common case, read with `get`s.

    False (nothing read) when the dict is not a completion or nests anything but
    dicts and lists; the generic reader takes those.
    """
    tag = body.get("object")
    if tag is None:
        if "choices" not in body:
            return False
    elif type(tag) is not str or tag not in _RESPONSE_OBJECTS:
        return False
    choices = body.get("choices") or ()
    usage = body.get("usage")
    if type(choices) is not list or (usage is not None and type(usage) is not dict):
        return False
    message = None
    reasons = []
    for choice in choices:
        if type(choice) is not dict:
            return False
        if message is None:
            message = choice.get("message")
            if message is None:
                message = {"content": choice.get("text")}
            elif type(message) is not dict:
                return False
        reason = choice.get("finish_reason")
        if reason and type(reason) is str:
            reasons.append(reason)
    call.provider = call.provider or PROVIDER
    call.response_model = _str(body.get("model"))
    call.response_id = _str(body.get("id"))
    call.finish_reasons = tuple(reasons)
    if message is not None:
        text = message.get("content")
        call.output_text = text if type(text) is str else None
    if usage is not None:
        _read_usage(call, usage)
    return True


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
        input_tokens=_count(prompt),
        output_tokens=_count(completion),
        cache_read_input_tokens=_count(field(prompt_details, "cached_tokens")),
        reasoning_output_tokens=_count(field(completion_details, "reasoning_tokens")),
    )


class _OpenAIReader:
    def read(self, call: Call, result: Any) -> bool:
        if type(result) is dict and _read_completion_dict(call, result):
            return True
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
    if tag is not None and not isinstance(tag, str):  # JSON may hold anything here
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


ADAPTER = OpenAIAdapter()
READER = _OpenAIReader()
