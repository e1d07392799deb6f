"""The effects an LLM call yields: the only code of `aisys.LLM` that does I/O.

Sending a request on the LLM's connection pool, reading the next server-sent event of
a streamed answer, closing a stream that will not be read to its end; each has a sync
(`run`) and an async (`arun`) edge, driven by `aisys.pipeline._flow`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2

from aisys.providers.base import transport_error, transport_errors

if TYPE_CHECKING:
    from aisys.llm.view import LLMView

__all__ = ["Close", "EventReader", "Send"]


class Send:
    """Send a request on the LLM's pool (reading error bodies of streamed responses)."""

    __slots__ = ("llm", "request", "stream")

    def __init__(self, llm: LLMView, request: httpx2.Request, *, stream: bool) -> None:
        self.llm = llm
        self.request = request
        self.stream = stream

    def run(self) -> httpx2.Response:
        """Send with the sync client."""
        try:
            response = self.llm.client.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                response.read()
                response.close()
        except Exception as exc:
            error = transport_error(exc, self.llm.provider.name, "sending the request")
            if error is None:
                raise
            raise error from exc
        return response

    async def arun(self) -> httpx2.Response:
        """Send with the async client."""
        try:
            response = await self.llm.aclient.send(self.request, stream=self.stream)
            if self.stream and response.status_code >= 400:
                await response.aread()
                await response.aclose()
        except Exception as exc:
            error = transport_error(exc, self.llm.provider.name, "sending the request")
            if error is None:
                raise
            raise error from exc
        return response


class EventReader:
    """Read the next server-sent event of a streamed response (``None`` at the end)."""

    __slots__ = ("_async", "_sync", "provider", "response")

    def __init__(self, provider: str, response: httpx2.Response) -> None:
        self.provider = provider
        self.response = response
        self._sync: Any = None
        self._async: Any = None

    def run(self) -> httpx2.ServerSentEvent | None:
        """The next event, blocking."""
        with transport_errors(self.provider, "reading the stream"):
            if self._sync is None:
                self._sync = iter(httpx2.EventSource(self.response))
            event: httpx2.ServerSentEvent | None = next(self._sync, None)
            return event

    async def arun(self) -> httpx2.ServerSentEvent | None:
        """The next event, awaited."""
        with transport_errors(self.provider, "reading the stream"):
            if self._async is None:
                self._async = httpx2.EventSource(self.response).__aiter__()
            event: httpx2.ServerSentEvent | None = await anext(self._async, None)
            return event

    def close(self) -> None:
        """Close the response (sync)."""
        self.response.close()

    async def aclose(self) -> None:
        """Close the response (async)."""
        await self.response.aclose()


class Close:
    """Close a streamed response that will not be read to its end."""

    __slots__ = ("reader",)

    def __init__(self, reader: EventReader) -> None:
        self.reader = reader

    def run(self) -> None:
        """Close, blocking."""
        self.reader.close()

    async def arun(self) -> None:
        """Close, awaited."""
        await self.reader.aclose()
