"""One attempt at one target, as a flow: build the request, send it, read the answer.

A chat attempt reads the whole answer; a stream attempt reads up to the first chunk —
the part that may be retried — and hands the open stream on (`Opened`). Provider
specifics are the adapter's: these flows only sequence them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aisys.errors import ProviderConnectionError
from aisys.llm.effects import Close, EventReader, Send
from aisys.pipeline._flow import Flow
from aisys.providers.base import StreamParser, error_from_response
from aisys.types import ChatChunk, ChatRequest, ChatResponse, EmbeddingResponse

if TYPE_CHECKING:
    from aisys.llm.view import LLMView

__all__ = ["Opened", "chat_attempt", "embed_attempt", "stream_attempt"]


class Opened:
    """A stream that has produced its first chunks (or ended cleanly without any)."""

    __slots__ = ("chunks", "llm", "parser", "reader")

    def __init__(
        self,
        llm: LLMView,
        reader: EventReader,
        parser: StreamParser,
        chunks: list[ChatChunk],
    ) -> None:
        self.llm = llm
        self.reader = reader
        self.parser = parser
        self.chunks = chunks


def chat_attempt(
    llm: LLMView, request: ChatRequest, timeout: float | None
) -> Flow[ChatResponse]:
    """Ask ``llm`` once for the whole answer."""
    http_request = llm.timed(llm.provider.chat_request(llm.target, request), timeout)
    response = yield Send(llm, http_request, stream=False)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    return llm.provider.parse_chat(llm.target, response)


def stream_attempt(
    llm: LLMView, request: ChatRequest, timeout: float | None
) -> Flow[Opened]:
    """Open a stream and read up to its first chunk: the part that may be retried."""
    http_request = llm.timed(llm.provider.chat_request(llm.target, request), timeout)
    response = yield Send(llm, http_request, stream=True)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    reader = EventReader(llm.provider.name, response)
    parser = llm.provider.stream_parser(llm.target)
    try:
        while True:
            event = yield reader
            if event is None:
                if parser.complete:
                    return Opened(llm, reader, parser, [])
                raise ProviderConnectionError(
                    f"the {llm.provider.name} stream ended before its first chunk",
                    provider=llm.provider.name,
                )
            chunks = parser.feed(event.event, event.data)
            if chunks:
                return Opened(llm, reader, parser, chunks)
    except GeneratorExit:
        raise  # the caller was cancelled: nothing may be yielded any more
    except BaseException as exc:
        reported = parser.response().usage
        if not reported.estimated:
            # Billed even though the attempt failed (e.g. an error after message_start).
            exc.usage = reported  # type: ignore[attr-defined]
        yield Close(reader)
        raise


def embed_attempt(
    llm: LLMView, request: tuple[list[str], Mapping[str, Any]], timeout: float | None
) -> Flow[EmbeddingResponse]:
    """Ask ``llm`` once for the vectors of the texts."""
    texts, extra = request
    http_request = llm.timed(
        llm.provider.embed_request(llm.target, texts, extra), timeout
    )
    response = yield Send(llm, http_request, stream=False)
    if response.status_code >= 400:
        raise error_from_response(llm.provider.name, response)
    return llm.provider.parse_embed(llm.target, response)
