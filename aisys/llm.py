"""LLM: aisys makes the call itself, through a provider adapter, with full telemetry.

```python
llm = aisys.LLM("openai:gpt-4o-mini")
llm.chat("hi").text
for chunk in llm.stream("tell me a story"):
    print(chunk.text, end="")
```

The decisions (build the request, check the status, parse) are flows shared by the
sync and async methods; only the `Send` effect touches the network, through one
``httpx2`` connection pool per LLM.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx2

from aisys.call import Call
from aisys.context import _SCOPE
from aisys.errors import ProviderConnectionError, ProviderError
from aisys.pipeline._flow import Flow, adrive, drive
from aisys.providers.base import (
    Provider,
    StreamParser,
    Target,
    error_from_response,
    get_provider,
    normalise_messages,
    parse_model,
    read_result,
    transport_errors,
)
from aisys.types import ChatChunk, ChatRequest, ChatResponse, EmbeddingResponse, Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from aisys._runtime import Runtime
    from aisys.telemetry.runtime import Telemetry

__all__ = ["LLM", "AsyncChatStream", "ChatStream"]

_OPEN_LLMS: weakref.WeakSet[LLM] = weakref.WeakSet()


class Send:
    """The one network effect: send a request on the LLM's pool, reading error bodies."""

    __slots__ = ("llm", "request", "stream")

    def __init__(self, llm: LLM, request: httpx2.Request, *, stream: bool) -> None:
        self.llm = llm
        self.request = request
        self.stream = stream

    def run(self) -> httpx2.Response:
        """Send with the sync client."""
        with transport_errors(self.llm.provider.name, "sending the request"):
            response = self.llm.client.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                response.read()
                response.close()
        return response

    async def arun(self) -> httpx2.Response:
        """Send with the async client."""
        with transport_errors(self.llm.provider.name, "sending the request"):
            response = await self.llm.aclient.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                await response.aread()
                await response.aclose()
        return response


class LLM:
    """A model behind a provider adapter: ``LLM("provider:model")``.

    Args:
        model: ``"openai:gpt-4o-mini"``, ``"anthropic:claude-3-5-haiku-latest"``,
            ``"scripted:any-name"``, or a plug-in's ``"name:model"``.
        base_url: The endpoint; defaults to ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``
            or the provider's public API.
        api_key: Defaults to ``OPENAI_API_KEY`` / ``ANTHROPIC_API_KEY``. Never logged.
        timeout: Seconds for each HTTP request.
        headers: Extra HTTP headers on every request.
        transport: An ``httpx2`` transport to use instead of the network (for tests,
            e.g. `aisys.testing.ScriptedTransport`).
        runtime: The aisys runtime whose telemetry records the calls.

    Added in 0.1.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx2.BaseTransport | httpx2.AsyncBaseTransport | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        provider_name, model_name = parse_model(model)
        self.provider: Provider = get_provider(provider_name)
        self.target: Target = self.provider.target(
            model_name,
            base_url=base_url,
            api_key=api_key,
            timeout=timeout,
            headers=headers or {},
        )
        self._transport = transport
        self._runtime = runtime
        self._client: httpx2.Client | None = None
        self._aclient: httpx2.AsyncClient | None = None
        url = httpx2.URL(self.target.base_url)
        self._server = (
            url.host or None,
            url.port or (443 if url.scheme == "https" else 80),
        )

    def __repr__(self) -> str:
        return f"LLM({self.target.spec!r}, base_url={self.target.base_url!r})"

    @property
    def model(self) -> str:
        """``provider:model``."""
        return self.target.spec

    # -- connection pools -----------------------------------------------------------

    @property
    def client(self) -> httpx2.Client:
        """The sync connection pool, created on first use."""
        if self._client is None:
            transport = self._transport or self.provider.transport()
            self._client = httpx2.Client(
                transport=transport,  # type: ignore[arg-type]
                timeout=httpx2.Timeout(self.target.timeout),
            )
            _OPEN_LLMS.add(self)
        return self._client

    @property
    def aclient(self) -> httpx2.AsyncClient:
        """The async connection pool, created on first use."""
        if self._aclient is None:
            transport = self._transport or self.provider.async_transport()
            self._aclient = httpx2.AsyncClient(
                transport=transport,  # type: ignore[arg-type]
                timeout=httpx2.Timeout(self.target.timeout),
            )
        return self._aclient

    def close(self) -> None:
        """Close the sync connection pool (the async one needs `aclose`)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        _OPEN_LLMS.discard(self)

    async def aclose(self) -> None:
        """Close both connection pools."""
        self.close()
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None

    def __enter__(self) -> LLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- chat ---------------------------------------------------------------------

    def chat(self, messages: Any, **params: Any) -> ChatResponse:
        """Ask the model; returns the whole answer.

        ``messages`` is a string, OpenAI-style dicts, or `aisys.Message` objects.
        ``params``: ``temperature``, ``max_tokens``, ``top_p``, ``stop``, ``seed``,
        ``tools``, ``tool_choice``, ``response_format``, and ``extra={…}`` sent as is.
        """
        request = self._request(messages, params, stream=False)
        tel, call, span, started = self._begin("chat", request)
        token = tel.activate(span)
        try:
            response = drive(self._chat_flow(request))
            return self._settle(call, request, response)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            tel.deactivate(token)
            tel.end(call, span, started)

    async def achat(self, messages: Any, **params: Any) -> ChatResponse:
        """The async twin of `chat`."""
        request = self._request(messages, params, stream=False)
        tel, call, span, started = self._begin("chat", request)
        token = tel.activate(span)
        try:
            response = await adrive(self._chat_flow(request))
            return self._settle(call, request, response)
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            tel.deactivate(token)
            tel.end(call, span, started)

    def stream(self, messages: Any, **params: Any) -> ChatStream:
        """Stream the answer: iterate the returned `ChatStream` for `ChatChunk`s.

        Nothing is sent until iteration (or ``with``) starts. Once exhausted,
        ``stream.response`` holds the whole `ChatResponse` with usage.
        """
        return ChatStream(self, self._request(messages, params, stream=True))

    def astream(self, messages: Any, **params: Any) -> AsyncChatStream:
        """The async twin of `stream`: use with ``async for`` / ``async with``, not await."""
        return AsyncChatStream(self, self._request(messages, params, stream=True))

    # -- embeddings ---------------------------------------------------------------

    def embed(
        self, texts: Sequence[str], *, extra: Mapping[str, Any] | None = None
    ) -> EmbeddingResponse:
        """Vectors for ``texts``, in order."""
        texts = _texts(texts)
        tel, call, span, started = self._begin("embeddings", None)
        token = tel.activate(span)
        try:
            response = drive(self._embed_flow(texts, extra or {}))
            self._settle_embed(call, response)
            return response
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            tel.deactivate(token)
            tel.end(call, span, started)

    async def aembed(
        self, texts: Sequence[str], *, extra: Mapping[str, Any] | None = None
    ) -> EmbeddingResponse:
        """The async twin of `embed`."""
        texts = _texts(texts)
        tel, call, span, started = self._begin("embeddings", None)
        token = tel.activate(span)
        try:
            response = await adrive(self._embed_flow(texts, extra or {}))
            self._settle_embed(call, response)
            return response
        except BaseException as exc:
            call.error = exc
            raise
        finally:
            tel.deactivate(token)
            tel.end(call, span, started)

    # -- flows: the decisions, shared by sync and async -------------------------------

    def _chat_flow(self, request: ChatRequest) -> Flow[ChatResponse]:
        http_request = self.provider.chat_request(self.target, request)
        response = yield Send(self, http_request, stream=False)
        if response.status_code >= 400:
            raise error_from_response(self.provider.name, response)
        return self.provider.parse_chat(self.target, response)

    def _open_flow(self, request: ChatRequest) -> Flow[httpx2.Response]:
        http_request = self.provider.chat_request(self.target, request)
        response: httpx2.Response = yield Send(self, http_request, stream=True)
        if response.status_code >= 400:
            raise error_from_response(self.provider.name, response)
        return response

    def _embed_flow(
        self, texts: list[str], extra: Mapping[str, Any]
    ) -> Flow[EmbeddingResponse]:
        http_request = self.provider.embed_request(self.target, texts, extra)
        response = yield Send(self, http_request, stream=False)
        if response.status_code >= 400:
            raise error_from_response(self.provider.name, response)
        return self.provider.parse_embed(self.target, response)

    # -- telemetry ----------------------------------------------------------------

    def _request(
        self, messages: Any, params: dict[str, Any], *, stream: bool
    ) -> ChatRequest:
        extra = params.pop("extra", None) or {}
        return ChatRequest(
            model=self.target.model,
            messages=normalise_messages(messages),
            params={k: v for k, v in params.items() if v is not None},
            extra=dict(extra),
            stream=stream,
        )

    def _begin(
        self, operation: str, request: ChatRequest | None
    ) -> tuple[Telemetry, Call, Span, float]:
        runtime = self._runtime
        if runtime is None:
            import aisys

            runtime = aisys._DEFAULT
        tel = runtime.telemetry
        call = Call(
            "llm",
            operation,
            provider=self.provider.name,
            request_model=self.target.model,
            scope=_SCOPE.get(),
        )
        call.server_address, call.server_port = self._server
        if request is not None:
            call.request_params = (
                {**request.params, "stream": request.stream}
                if request.stream
                else dict(request.params)
            )
            if tel.capture:
                call.input_messages = request.messages
        span = tel.start(call)
        return tel, call, span, time.perf_counter()

    def _settle(
        self, call: Call, request: ChatRequest, response: ChatResponse
    ) -> ChatResponse:
        if response.usage.estimated:
            response = _estimate(response, request)
        read_result(call, response)
        return response

    def _settle_embed(self, call: Call, response: EmbeddingResponse) -> None:
        call.response_model = response.model
        call.set_usage(input_tokens=response.usage.input_tokens)
        call.estimated = response.usage.estimated


def _texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    listed = list(texts)
    if not all(isinstance(text, str) for text in listed):
        msg = "embed() takes a string or a list of strings"
        raise TypeError(msg)
    return listed


def _estimate(response: ChatResponse, request: ChatRequest) -> ChatResponse:
    """Usage the provider did not report, counted with tiktoken and marked estimated."""
    from aisys.metering.tokens import count_tokens

    model = response.model or request.model
    usage = Usage(
        input_tokens=count_tokens(request.messages, model),
        output_tokens=count_tokens(response.text, model),
        estimated=True,
    )
    return response.model_copy(update={"usage": usage})


class _StreamCore:
    """What both stream flavours share: parse events, time the first chunk, finish once."""

    def __init__(self, llm: LLM, request: ChatRequest) -> None:
        self._llm = llm
        self._request = request
        self._parser: StreamParser = llm.provider.stream_parser(llm.target)
        self._pending: list[ChatChunk] = []
        self._delivered = 0
        self._finished = False
        self._started_at = 0.0
        self._span: Span | None = None
        self._tel: Telemetry | None = None
        self._call: Call | None = None
        self.response: ChatResponse | None = None
        """The whole answer with usage, once the stream is exhausted."""

    def _begin(self) -> tuple[Telemetry, Span]:
        tel, call, span, started = self._llm._begin("chat", self._request)
        self._tel, self._call, self._span, self._started_at = tel, call, span, started
        return tel, span

    def _take(self, event: str, data: str) -> None:
        chunks = self._parser.feed(event, data)
        if chunks and self._delivered == 0 and self._call is not None:
            self._call.ttft_s = time.perf_counter() - self._started_at
        self._pending.extend(chunks)

    def _next_chunk(self) -> ChatChunk:
        chunk = self._pending.pop(0)
        self._delivered += 1
        return chunk

    def _ended(self) -> ProviderError | None:
        """The event stream ran out: finish the call, and return the error if it was cut."""
        if not self._parser.complete:
            name = self._llm.provider.name
            error = ProviderConnectionError(
                f"the {name} stream ended before the answer was complete, after "
                f"{self._delivered} chunks ({len(self._parser.response().text)} characters) "
                "had been delivered",
                provider=name,
            )
            self._finish(error)
            return error
        response = self._parser.response()
        if response.usage.estimated:
            response = _estimate(response, self._request)
        self.response = response
        self._finish(None)
        return None

    def _broken(self, exc: ProviderError) -> ProviderError:
        """Say how much was delivered when the stream breaks mid-way."""
        if self._delivered and isinstance(exc, ProviderConnectionError):
            return ProviderConnectionError(
                f"{exc} after {self._delivered} chunks had been delivered",
                provider=exc.provider,
                status_code=exc.status_code,
            )
        return exc

    def __del__(self) -> None:
        # A stream dropped unfinished still ends its span (the pool reclaims the socket).
        if getattr(self, "_finished", True) or getattr(self, "_call", None) is None:
            return
        with contextlib.suppress(Exception):  # nothing more to do at garbage collection
            self._finish(None, early=True)

    def _finish(self, error: BaseException | None, *, early: bool = False) -> None:
        if self._finished:
            return
        self._finished = True
        call, tel, span = self._call, self._tel, self._span
        if call is None or tel is None or span is None:
            return
        call.error = error
        call.closed_early = early
        call.stream_chunks = self._delivered
        if self.response is not None:
            read_result(call, self.response)
        else:
            partial = self._parser.response()
            call.output_text = partial.text
            call.response_id = partial.id
            call.response_model = partial.model
        tel.end(call, span, self._started_at)


class ChatStream(_StreamCore):
    """A streamed chat answer: iterate for `ChatChunk`s; also a context manager.

    Added in 0.1.
    """

    _response: httpx2.Response | None = None
    _events: Iterator[httpx2.ServerSentEvent] | None = None

    def _open(self) -> None:
        tel, span = self._begin()
        token = tel.activate(span)
        try:
            self._response = drive(self._llm._open_flow(self._request))
            self._events = iter(httpx2.EventSource(self._response))
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            tel.deactivate(token)

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> ChatChunk:
        if self._events is None:
            if self._finished:
                raise StopIteration
            self._open()
        assert self._events is not None  # noqa: S101 - set by _open
        while not self._pending:
            if self._finished:
                raise StopIteration
            try:
                with transport_errors(self._llm.provider.name, "reading the stream"):
                    event = next(self._events, None)
                    if event is not None:
                        self._take(event.event, event.data)
            except ProviderError as exc:
                error = self._broken(exc)
                self._close_response()
                self._finish(error)
                raise error from exc
            except BaseException as exc:
                self._close_response()
                self._finish(exc)
                raise
            if event is None:
                self._close_response()
                cut = self._ended()
                if cut is not None:
                    raise cut
                raise StopIteration
        return self._next_chunk()

    def _close_response(self) -> None:
        if self._response is not None:
            self._response.close()

    def close(self) -> None:
        """Stop reading; the call's span ends, marked closed early if not exhausted."""
        self._close_response()
        self._finish(None, early=True)

    def __enter__(self) -> ChatStream:
        if self._events is None and not self._finished:
            self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._parser.response().text


class AsyncChatStream(_StreamCore):
    """The async twin of `ChatStream`: ``async for`` and ``async with``.

    Added in 0.1.
    """

    _response: httpx2.Response | None = None
    _events: AsyncIterator[httpx2.ServerSentEvent] | None = None

    async def _open(self) -> None:
        tel, span = self._begin()
        token = tel.activate(span)
        try:
            self._response = await adrive(self._llm._open_flow(self._request))
            self._events = httpx2.EventSource(self._response).__aiter__()
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            tel.deactivate(token)

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._events is None:
            if self._finished:
                raise StopAsyncIteration
            await self._open()
        assert self._events is not None  # noqa: S101 - set by _open
        while not self._pending:
            if self._finished:
                raise StopAsyncIteration
            try:
                with transport_errors(self._llm.provider.name, "reading the stream"):
                    event = await anext(self._events, None)
                    if event is not None:
                        self._take(event.event, event.data)
            except ProviderError as exc:
                error = self._broken(exc)
                await self._close_response()
                self._finish(error)
                raise error from exc
            except BaseException as exc:
                await self._close_response()
                self._finish(exc)
                raise
            if event is None:
                await self._close_response()
                cut = self._ended()
                if cut is not None:
                    raise cut
                raise StopAsyncIteration
        return self._next_chunk()

    async def _close_response(self) -> None:
        if self._response is not None:
            await self._response.aclose()

    async def aclose(self) -> None:
        """Stop reading; the call's span ends, marked closed early if not exhausted."""
        await self._close_response()
        self._finish(None, early=True)

    async def __aenter__(self) -> AsyncChatStream:
        if self._events is None and not self._finished:
            await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._parser.response().text


def close_all() -> None:
    """Close the sync pools of every LLM still open (`aisys.shutdown` calls this)."""
    for llm in list(_OPEN_LLMS):
        llm.close()
