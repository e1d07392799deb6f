"""Anthropic messages API: the adapter, and the reader for decorator mode.

Translates OpenAI-style messages and tools to the messages API (system prompt apart,
``max_tokens`` required: `DEFAULT_MAX_TOKENS` when not given), parses responses and the
SSE events (``message_start``, ``content_block_delta``, ``message_delta`` …), and reads
what the official ``anthropic`` SDK returned to a user's function. No I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.errors import RateLimitError, ResponseFormatError, ServerError
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

__all__ = ["ADAPTER", "DEFAULT_MAX_TOKENS", "READER", "AnthropicAdapter"]

PROVIDER = "anthropic"
DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
"""``max_tokens`` sent when the call gives none (the messages API requires one)."""

# The messages API's stop reasons, in the conventions' finish-reason vocabulary.
_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicAdapter(BaseAdapter):
    """The Anthropic messages API."""

    name = PROVIDER
    env_prefix = "ANTHROPIC"
    default_base_url = DEFAULT_BASE_URL
    takes_response_format = False  # structured output: the schema goes in the prompt

    def chat_request(self, target: Target, request: ChatRequest) -> httpx2.Request:
        """``POST {base_url}/v1/messages``."""
        import httpx2

        params = request.params
        if params.get("response_format") is not None:
            msg = (
                "the anthropic adapter has no response_format; describe the JSON in the "
                "prompt, or pass a tool whose input schema is the structure you want"
            )
            raise ValueError(msg)
        system, messages = _messages(request.messages)
        body: dict[str, Any] = {
            "model": target.model,
            "max_tokens": params.get("max_tokens") or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            body["system"] = system
        for key in ("temperature", "top_p", "top_k"):
            if params.get(key) is not None:
                body[key] = params[key]
        stop = params.get("stop")
        if stop:
            body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
        if params.get("tools"):
            body["tools"] = [_tool(tool) for tool in params["tools"]]
        if params.get("tool_choice") is not None:
            body["tool_choice"] = _tool_choice(params["tool_choice"])
        if request.stream:
            body["stream"] = True
        body.update(request.extra)
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "anthropic-version": API_VERSION,
        }
        if target.api_key:
            headers["x-api-key"] = target.api_key
        headers.update(target.headers)
        return httpx2.Request(
            "POST",
            endpoint(target.base_url, "/v1/messages"),
            headers=headers,
            content=json.dumps(body).encode(),
        )

    def parse_chat(self, target: Target, response: httpx2.Response) -> ChatResponse:
        """A ``message`` object as a `ChatResponse`."""
        body = json_body(self.name, response)
        content = field(body, "content")
        if not isinstance(content, list):
            raise ResponseFormatError(
                f"{self.name} sent JSON without a content list (type {field(body, 'type')!r})",
                provider=self.name,
                status_code=response.status_code,
            )
        parser = _AnthropicStream(self.name, target.model)
        parser.start(body)
        for index, block in enumerate(content):
            parser.block_start(index, block)
            if field(block, "type") == "text":
                parser.parts.append(_str(field(block, "text")) or "")
            elif field(block, "type") == "tool_use":
                parser.tools[index]["arguments"].append(
                    json.dumps(field(block, "input") or {})
                )
        parser.stop_reason = _str(field(body, "stop_reason"))
        parser.raw = body
        return parser.response()

    def stream_parser(self, target: Target) -> _AnthropicStream:
        """A parser for one streamed messages call."""
        return _AnthropicStream(self.name, target.model)

    def embed_request(
        self, target: Target, texts: Sequence[str], extra: Mapping[str, Any]
    ) -> httpx2.Request:
        """Anthropic has no embeddings endpoint."""
        msg = "anthropic has no embeddings API; use an 'openai:' (or compatible) model for embed()"
        raise ValueError(msg)

    def parse_embed(
        self, target: Target, response: httpx2.Response
    ) -> EmbeddingResponse:
        """Anthropic has no embeddings endpoint."""
        raise NotImplementedError


class _AnthropicStream:
    """Messages-API events → `ChatChunk`s; the whole stream → one `ChatResponse`."""

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.response_id: str | None = None
        self.parts: list[str] = []
        self.tools: dict[int, dict[str, Any]] = {}
        self.stop_reason: str | None = None
        self.usage: dict[str, int] = {}
        self.stopped = False
        self.raw: Any = None

    @property
    def complete(self) -> bool:
        """``message_stop`` arrived, or at least ``message_delta`` with a stop reason."""
        return self.stopped or self.stop_reason is not None

    def start(self, message: Any) -> None:
        self.response_id = _str(field(message, "id"))
        self.model = _str(field(message, "model")) or self.model
        self._usage(field(message, "usage"))

    def block_start(self, index: int, block: Any) -> None:
        if field(block, "type") == "tool_use":
            self.tools[index] = {
                "id": _str(field(block, "id")) or "",
                "name": _str(field(block, "name")) or "",
                "arguments": [],
            }

    def _usage(self, usage: Any) -> None:
        for key in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            value = _count(field(usage, key))
            if value is not None:
                self.usage[key] = value

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """One event's chunks (text deltas and the final stop reason)."""
        from aisys.types import ChatChunk

        payload = sse_data(data, self.provider)
        kind = field(payload, "type") or event
        if kind == "message_start":
            self.start(field(payload, "message"))
        elif kind == "content_block_start":
            self.block_start(
                _count(field(payload, "index")) or 0, field(payload, "content_block")
            )
        elif kind == "content_block_delta":
            delta = field(payload, "delta") or {}
            if field(delta, "type") == "text_delta":
                text = _str(field(delta, "text")) or ""
                self.parts.append(text)
                return [ChatChunk(text=text, raw=payload)] if text else []
            if field(delta, "type") == "input_json_delta":
                slot = self.tools.get(_count(field(payload, "index")) or 0)
                if slot is not None:
                    slot["arguments"].append(_str(field(delta, "partial_json")) or "")
        elif kind == "message_delta":
            self.stop_reason = (
                _str(field(field(payload, "delta"), "stop_reason")) or self.stop_reason
            )
            self._usage(field(payload, "usage"))
            return [ChatChunk(finish_reason=_finish(self.stop_reason), raw=payload)]
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = field(payload, "error") or {}
            message = f"{self.provider} reported an error mid-stream: {field(error, 'message')}"
            if field(error, "type") == "rate_limit_error":
                raise RateLimitError(message, provider=self.provider)
            raise ServerError(message, provider=self.provider)
        return []

    def response(self) -> ChatResponse:
        """The text, tool calls, finish reason and usage received."""
        from aisys.types import ChatResponse, Usage

        usage = self.usage
        if "input_tokens" in usage and "output_tokens" in usage:
            cache_read = usage.get("cache_read_input_tokens", 0)
            cache_write = usage.get("cache_creation_input_tokens", 0)
            counted = Usage(
                # Anthropic's input_tokens excludes cached tokens; the conventions include them.
                input_tokens=usage["input_tokens"] + cache_read + cache_write,
                output_tokens=usage["output_tokens"],
                cache_read_input_tokens=cache_read,
                cache_write_input_tokens=cache_write,
            )
        else:
            counted = Usage(estimated=True)
        return ChatResponse(
            text="".join(self.parts),
            tool_calls=joined_tool_calls(self.tools),
            finish_reason=_finish(self.stop_reason),
            model=self.model,
            provider=self.provider,
            id=self.response_id,
            usage=counted,
            raw=self.raw,
        )


def _finish(stop_reason: str | None) -> str | None:
    if stop_reason is None:
        return None
    return _FINISH_REASONS.get(stop_reason, stop_reason)


def _messages(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[str, list[dict[str, Any]]]:
    """OpenAI-style messages → (system prompt, messages-API messages)."""
    system: list[str] = []
    converted: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(content if isinstance(content, str) else _text_of(content))
        elif role == "tool":
            converted.append(
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": message.get("tool_call_id", ""),
                            "content": content
                            if isinstance(content, str)
                            else _text_of(content),
                        }
                    ],
                }
            )
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if content:
                blocks.append(
                    {
                        "type": "text",
                        "text": content
                        if isinstance(content, str)
                        else _text_of(content),
                    }
                )
            for call in message["tool_calls"]:
                function = call.get("function", {})
                arguments = function.get("arguments") or "{}"
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": json.loads(arguments)
                        if isinstance(arguments, str)
                        else arguments,
                    }
                )
            converted.append({"role": "assistant", "content": blocks})
        else:
            converted.append({"role": role, "content": _content(content)})
    return "\n\n".join(system), converted


def _content(content: Any) -> Any:
    """Text as is; OpenAI content parts (text, image_url) as messages-API blocks."""
    if content is None or isinstance(content, str):
        return content or ""
    blocks = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            url = (
                part["image_url"]["url"]
                if isinstance(part.get("image_url"), Mapping)
                else part.get("image_url")
            )
            blocks.append({"type": "image", "source": _image_source(str(url))})
        else:
            blocks.append(dict(part))
    return blocks


def _image_source(url: str) -> dict[str, str]:
    if url.startswith("data:") and ";base64," in url:
        header, data = url.split(",", 1)
        return {"type": "base64", "media_type": header[5:].split(";")[0], "data": data}
    return {"type": "url", "url": url}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "") for part in content or () if isinstance(part, Mapping)
    )


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI ``{"type": "function", "function": {...}}`` tool as an Anthropic tool."""
    function = tool.get("function")
    if not isinstance(function, Mapping):
        return dict(tool)  # already in the messages-API shape
    converted = {
        "name": function["name"],
        "input_schema": function.get("parameters")
        or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _tool_choice(choice: Any) -> Any:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        return {"type": "tool", "name": choice["function"]["name"]}
    return choice


# -- decorator mode: what the official anthropic SDK returned ----------------------------


def _is_anthropic(obj: Any) -> bool:
    if type(obj) is dict or isinstance(obj, Mapping):
        return True
    return type(obj).__module__.startswith("anthropic.")


class _AnthropicReader:
    def read(self, call: Call, result: Any) -> bool:
        if not _is_anthropic(result) or field(result, "type") != "message":
            return False
        if not isinstance(field(result, "content"), list):
            return False
        call.provider = call.provider or PROVIDER
        call.response_id = _str(field(result, "id"))
        call.response_model = _str(field(result, "model"))
        reason = _finish(_str(field(result, "stop_reason")))
        call.finish_reasons = (reason,) if reason else ()
        texts = [
            _str(field(block, "text")) or ""
            for block in field(result, "content")
            if field(block, "type") == "text"
        ]
        call.output_text = "".join(texts)
        _read_usage(call, field(result, "usage"))
        return True

    def read_chunk(self, call: Call, chunk: Any, state: StreamState) -> bool:
        if not _is_anthropic(chunk):
            return False
        kind = field(chunk, "type")
        if kind == "message_start":
            message = field(chunk, "message")
            call.provider = call.provider or PROVIDER
            call.response_id = _str(field(message, "id"))
            call.response_model = _str(field(message, "model"))
            _read_usage(call, field(message, "usage"))
        elif kind == "content_block_delta":
            delta = field(chunk, "delta")
            if field(delta, "type") == "text_delta":
                state.parts.append(_str(field(delta, "text")) or "")
        elif kind == "message_delta":
            reason = _finish(_str(field(field(chunk, "delta"), "stop_reason")))
            if reason:
                call.finish_reasons = (reason,)
            output = _count(field(field(chunk, "usage"), "output_tokens"))
            call.set_usage(output_tokens=output)
        elif kind not in (
            "content_block_start",
            "content_block_stop",
            "message_stop",
            "ping",
        ):
            return False
        return True

    def stream_kind(self, result: Any) -> StreamKind | None:
        cls = type(result)
        if not cls.__module__.startswith("anthropic"):
            return None
        names = {base.__name__ for base in cls.__mro__}
        if "AsyncStream" in names:
            return "async"
        if "Stream" in names:
            return "sync"
        return None


def _read_usage(call: Call, usage: Any) -> None:
    if usage is None:
        return
    read = _count(field(usage, "cache_read_input_tokens")) or 0
    write = _count(field(usage, "cache_creation_input_tokens")) or 0
    fresh = _count(field(usage, "input_tokens"))
    call.set_usage(
        input_tokens=fresh + read + write if fresh is not None else None,
        output_tokens=_count(field(usage, "output_tokens")),
        cache_read_input_tokens=read or None,
        cache_write_input_tokens=write or None,
    )


ADAPTER = AnthropicAdapter()
READER = _AnthropicReader()
