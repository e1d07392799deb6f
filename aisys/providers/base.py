"""What a provider adapter offers, the registry that finds one, and shared translation.

An adapter translates: aisys request → ``httpx2.Request``, ``httpx2.Response`` →
`ChatResponse`, server-sent event → `ChatChunk`. It never sends, retries, caches or
logs. Third-party adapters register under the entry-point group ``aisys.providers``
and are found by the ``provider:`` prefix of a model string.

Decorator mode uses the same modules the other way round: `read_result` asks each
provider whether it recognises what a user's function returned.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aisys.call import Call
from aisys.errors import (
    AisysError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ContextLengthError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
)

if TYPE_CHECKING:
    import httpx2

    from aisys.types import (
        ChatChunk,
        ChatRequest,
        ChatResponse,
        EmbeddingResponse,
    )

__all__ = [
    "ENTRY_POINT_GROUP",
    "BaseAdapter",
    "Provider",
    "Failure",
    "ResultReader",
    "StreamParser",
    "StreamState",
    "Target",
    "as_count",
    "as_str",
    "classify",
    "endpoint",
    "error_from_response",
    "field",
    "joined_tool_calls",
    "json_body",
    "normalise_messages",
    "retry_after_s",
    "transport_error",
    "transport_errors",
]

ENTRY_POINT_GROUP = "aisys.providers"
StreamKind = Literal["sync", "async"]


def field(obj: Any, name: str) -> Any:
    """``obj[name]`` for mappings, ``obj.name`` otherwise; ``None`` when absent."""
    if type(obj) is dict:
        return obj.get(name)
    if obj is None:  # absent nested fields are common: skip the ABC check
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


# -- making calls -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """Where one model lives: provider, model, endpoint and credentials.

    The API key is kept out of ``repr`` so it cannot leak into logs or errors.
    """

    provider: str
    model: str
    base_url: str
    api_key: str | None = dataclass_field(default=None, repr=False)
    timeout: float = 60.0
    headers: Mapping[str, str] = dataclass_field(default_factory=dict, repr=False)

    @property
    def spec(self) -> str:
        """``provider:model``, as users write it."""
        return f"{self.provider}:{self.model}"


class StreamParser(Protocol):
    """Turns one provider's server-sent events into chunks, and the stream into a response."""

    @property
    def complete(self) -> bool:
        """Whether the provider signalled the end of the stream."""

    def feed(self, event: str, data: str) -> list[ChatChunk]:
        """Chunks carried by one event (often one, sometimes none)."""

    def response(self) -> ChatResponse:
        """Everything received so far, as one response (usage included if sent)."""


class Provider(Protocol):
    """A provider adapter: translation between aisys types and one wire format."""

    name: str
    """The ``provider:`` prefix, also ``gen_ai.provider.name``."""

    def target(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        headers: Mapping[str, str],
    ) -> Target:
        """Resolve endpoint and credentials (arguments first, then the environment)."""

    def chat_request(self, target: Target, request: ChatRequest) -> httpx2.Request:
        """The HTTP request for a chat call."""

    def parse_chat(self, target: Target, response: httpx2.Response) -> ChatResponse:
        """A successful (2xx) chat response, normalised."""

    def stream_parser(self, target: Target) -> StreamParser:
        """A fresh parser for one streamed chat call."""

    def embed_request(
        self, target: Target, texts: Sequence[str], extra: Mapping[str, Any]
    ) -> httpx2.Request:
        """The HTTP request for an embeddings call."""

    def parse_embed(
        self, target: Target, response: httpx2.Response
    ) -> EmbeddingResponse:
        """A successful (2xx) embeddings response."""

    def transport(self) -> httpx2.BaseTransport | None:
        """A transport to use instead of the network (the scripted provider), or None."""

    def async_transport(self) -> httpx2.AsyncBaseTransport | None:
        """The async twin of `transport`."""


class BaseAdapter:
    """What most adapters share: endpoint and key, and the network as transport.

    Endpoint and key come from the arguments, else the environment. Subclasses set ``name``, ``env_prefix`` (``OPENAI`` reads ``OPENAI_BASE_URL`` and
    ``OPENAI_API_KEY``) and ``default_base_url``.
    """

    name: str
    env_prefix: str
    default_base_url: str
    takes_response_format = True
    """Whether ``response_format`` (JSON schema) is sent to the provider as is."""

    def target(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout: float,
        headers: Mapping[str, str],
    ) -> Target:
        """Endpoint and key from the arguments, else ``{env_prefix}_BASE_URL`` / ``_API_KEY``."""
        return Target(
            provider=self.name,
            model=model,
            base_url=(
                base_url
                or os.environ.get(f"{self.env_prefix}_BASE_URL")
                or self.default_base_url
            ).rstrip("/"),
            api_key=api_key or os.environ.get(f"{self.env_prefix}_API_KEY"),
            timeout=timeout,
            headers=dict(headers),
        )

    def transport(self) -> httpx2.BaseTransport | None:
        """No transport of its own: the LLM's client uses the network."""
        return None

    def async_transport(self) -> httpx2.AsyncBaseTransport | None:
        """No transport of its own: the LLM's client uses the network."""
        return None


@functools.lru_cache(maxsize=256)
def endpoint(base_url: str, path: str) -> httpx2.URL:
    """``base_url`` + ``path`` as a parsed URL, parsed once per endpoint (URLs are immutable)."""
    import httpx2

    return httpx2.URL(base_url + path)


def joined_tool_calls(slots: Mapping[int, Mapping[str, Any]]) -> tuple[Any, ...]:
    """Streamed tool calls, by index, with their argument fragments joined."""
    from aisys.types import ToolCall

    return tuple(
        ToolCall(
            id=slot["id"],
            name=slot["name"],
            arguments="".join(slot["arguments"]) or "{}",
        )
        for _, slot in sorted(slots.items())
    )


def as_count(value: Any) -> int | None:
    """``value`` if it is a whole number >= 0 (not a bool), else None.

    Token counts and indexes come from JSON, which may hold anything: a negative or
    non-integer count is treated as not sent, never passed on to fail validation.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def as_str(value: Any) -> str | None:
    """``value`` if it is a string, else None."""
    return value if isinstance(value, str) else None


_ROLES = ("system", "developer", "user", "assistant", "tool")


def normalise_messages(messages: Any) -> list[dict[str, Any]]:
    """Messages as OpenAI-style dicts, from a string, dicts, or `aisys.Message` objects."""
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    if isinstance(messages, Mapping) or not isinstance(messages, Sequence):
        msg = (
            "messages must be a string or a list of messages "
            f"({{'role': ..., 'content': ...}} dicts or aisys.Message), got "
            f"{type(messages).__name__}"
        )
        raise TypeError(msg)
    result = []
    for index, message in enumerate(messages):
        if isinstance(message, Mapping):
            item = dict(message)
        elif hasattr(message, "model_dump"):
            item = message.model_dump(exclude_none=True, exclude_defaults=True)
            item["role"] = message.role
            if message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call in message.tool_calls
                ]
        else:
            msg = (
                f"messages[{index}] must be a dict or aisys.Message, "
                f"got {type(message).__name__}"
            )
            raise TypeError(msg)
        role = item.get("role")
        if role not in _ROLES:
            msg = (
                f"messages[{index}]['role'] must be one of {', '.join(_ROLES)}, got "
                f"{role!r}"
            )
            raise ValueError(msg)
        content = item.get("content")
        if content is not None and not isinstance(content, str | list):
            msg = (
                f"messages[{index}]['content'] must be text or a list of content parts, "
                f"got {type(content).__name__}"
            )
            raise ValueError(msg)
        result.append(item)
    if not result:
        msg = "messages is empty: give at least one message"
        raise ValueError(msg)
    return result


def json_body(provider: str, response: httpx2.Response) -> Any:
    """The response's JSON, or a ResponseFormatError saying what came instead."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseFormatError(
            f"{provider} sent a response that is not JSON: {_describe_body(response)}",
            provider=provider,
            status_code=response.status_code,
        ) from exc


def _describe_body(response: httpx2.Response) -> str:
    content_type = response.headers.get("content-type", "no content-type")
    body = response.content[:120]
    return f"HTTP {response.status_code}, {content_type}, {len(response.content)} bytes starting {body!r}"


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP-date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    import email.utils  # only when a server sends an HTTP-date

    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass(frozen=True, slots=True)
class Failure:
    """What an exception means for retrying: whether to try again, and when."""

    retryable: bool
    status_code: int | None = None
    retry_after_s: float | None = None


_RETRYABLE_STATUSES = frozenset({408, 409, 429})


def classify(exc: BaseException | None) -> Failure:
    """Read an aisys error, or an official SDK's (openai, anthropic), for retrying.

    SDK errors are read by shape: ``status_code`` and ``response.headers`` on status
    errors, and connection / timeout classes by name.
    """
    if exc is None:
        return Failure(retryable=False)
    if isinstance(exc, ProviderError):
        return Failure(
            exc.retryable, exc.status_code, getattr(exc, "retry_after_s", None)
        )
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and not isinstance(status, bool):
        headers = getattr(getattr(exc, "response", None), "headers", None)
        # An SDK error with a 2xx status (openai's APIResponseValidationError) is an
        # answer that could not be read: a provider fault, like a 5xx.
        return Failure(
            status in _RETRYABLE_STATUSES or status >= 500 or 200 <= status < 300,
            status,
            retry_after_s(headers) if isinstance(headers, Mapping) else None,
        )
    name = type(exc).__name__
    transient = isinstance(exc, ConnectionError | TimeoutError) or any(
        word in name for word in ("Timeout", "Connection")
    )
    return Failure(retryable=transient)


def _provider_message(body: Any) -> str | None:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return None


def error_from_response(provider: str, response: httpx2.Response) -> ProviderError:
    """The aisys error for a non-2xx response, with the provider's own message."""
    status = response.status_code
    try:
        detail = _provider_message(response.json())
    except (ValueError, UnicodeDecodeError):
        detail = None
    message = f"{provider} answered HTTP {status}: {detail or _describe_body(response)}"
    wait = retry_after_s(response.headers)
    cls: type[ProviderError]
    if status == 429:
        cls = RateLimitError
    elif status in (401, 403):
        cls = AuthenticationError
    elif status == 408:
        cls = ProviderTimeoutError
    elif status == 409 or status >= 500:
        cls = ServerError
    elif status == 400 and any(
        hint in (detail or "").lower() for hint in _CONTEXT_HINTS
    ):
        cls = ContextLengthError
    else:
        cls = BadRequestError
    return cls(message, provider=provider, status_code=status, retry_after_s=wait)


# How providers word "the prompt is too long for this model".
_CONTEXT_HINTS = (
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
)


@contextmanager
def transport_errors(provider: str, doing: str = "calling") -> Iterator[None]:
    """Translate httpx2's exceptions into aisys's (see `transport_error`)."""
    try:
        yield
    except Exception as exc:
        error = transport_error(exc, provider, doing)
        if error is None:
            raise
        raise error from exc


def transport_error(exc: Exception, provider: str, doing: str) -> AisysError | None:
    """The aisys error for one of httpx2's exceptions, most specific first; else ``None``.

    A function rather than only a context manager, so the hot send path can use a
    plain ``try`` (no generator frame per request).
    """
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return ProviderTimeoutError(
            f"{provider} timed out while {doing} ({type(exc).__name__})",
            provider=provider,
        )
    if isinstance(exc, httpx2.SSEError):
        return ResponseFormatError(
            f"{provider} sent a broken event stream while {doing}: {exc}",
            provider=provider,
        )
    if isinstance(exc, (httpx2.UnsupportedProtocol, httpx2.InvalidURL)):
        return ConfigError(
            f"base_url for {provider} is not a usable http(s) URL: {exc}",
            field="base_url",
        )
    if isinstance(exc, httpx2.DecodingError):
        return ResponseFormatError(
            f"{provider} sent a body that could not be decoded while {doing}: {exc}",
            provider=provider,
        )
    if isinstance(exc, (httpx2.RequestError, httpx2.TooManyRedirects)):
        return ProviderConnectionError(
            f"connection to {provider} failed while {doing} ({type(exc).__name__}: {exc})",
            provider=provider,
        )
    if isinstance(exc, httpx2.StreamError):
        return ProviderConnectionError(
            f"the {provider} stream was no longer readable while {doing} ({type(exc).__name__})",
            provider=provider,
        )
    return None


def sse_data(data: str, provider: str) -> Any:
    """Decode one event's JSON data, or say which event was not JSON."""
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ResponseFormatError(
            f"{provider} sent an event whose data is not JSON: {data[:120]!r}",
            provider=provider,
        ) from exc


# -- reading results in decorator mode ------------------------------------------------


class StreamState:
    """What a stream has delivered so far: its text and how many chunks."""

    __slots__ = ("chunks", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.chunks = 0

    @property
    def text(self) -> str:
        """The text received so far."""
        return "".join(self.parts)


class ResultReader(Protocol):
    """Reads one provider's responses, chunks and streams into a `Call`."""

    def read(self, call: Call, result: Any) -> bool:
        """Fill ``call`` from a full response; False if it is not this provider's."""

    def read_chunk(self, call: Call, chunk: Any, state: StreamState) -> bool:
        """Fill ``call`` from one stream chunk; False if it is not this provider's."""

    def stream_kind(self, result: Any) -> StreamKind | None:
        """``"sync"``/``"async"`` when ``result`` is this provider's stream object."""
