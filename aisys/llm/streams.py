"""ChatStream and AsyncChatStream: a streamed answer, its span, and its one ending.

Opening a stream goes through the LLM's route (retries, fallbacks, deadline) up to the
first chunk; after that a failure is raised as it is, saying how much was delivered,
because the caller has already seen part of the answer. The span ends once: on
exhaustion, error, `close()`/`aclose()`, leaving ``with``, or garbage collection.
"""

from __future__ import annotations

import contextlib
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aisys.errors import (
    AisysError,
    HandoffRequired,
    ProviderConnectionError,
    ProviderError,
)
from aisys.llm.answers import deliver, read_answer
from aisys.llm.attempts import Opened, stream_attempt
from aisys.pipeline._flow import Flow, adrive, drive
from aisys.types import ChatChunk, ChatRequest, ChatResponse

if TYPE_CHECKING:
    from aisys.call import Call
    from aisys.lifecycle import CallScope
    from aisys.llm.view import LLMView

__all__ = ["AsyncChatStream", "ChatStream"]


class _StreamCore:
    """What both stream flavours share: chunks in order, first-chunk time, one ending."""

    def __init__(
        self,
        llm: LLMView,
        request: ChatRequest,
        *,
        use_cache: bool = True,
        prompt: Any = None,
    ) -> None:
        self._llm = llm
        self._prompt = prompt
        self._request = request
        self._use_cache = use_cache
        self._texts: list[str] = []
        self._replay: ChatResponse | None = None
        """A cached answer being replayed (no stream was opened)."""
        self._opened: Opened | None = None
        self._pending: list[ChatChunk] = []
        self._delivered = 0
        self._finished = False
        """Ended (or closed before it began): iteration stops."""
        self._scope: CallScope | None = None
        self._call: Call | None = None
        self.response: ChatResponse | None = None
        """The whole answer with usage, once the stream is exhausted."""

    def _begin(self) -> CallScope:
        scope = self._scope = self._llm.begin(
            "chat", self._request, prompt=self._prompt
        )
        self._call = scope.call
        return scope

    def _flow(self, scope: CallScope) -> Flow[Any]:
        return self._llm.chain_flow(
            scope, stream_attempt, self._request, self._use_cache
        )

    def _accept(self, opened: Any) -> None:
        if isinstance(opened, Opened):
            self._opened = opened
            self._take(opened.chunks)
            return
        # A cache hit: replay the stored answer as chunks of the usual shape.
        assert self._scope is not None  # noqa: S101 - set by _begin
        hit: ChatResponse = opened.response
        texts = opened.chunks or ([hit.text] if hit.text else [])
        chunks = [ChatChunk(text=text) for text in texts]
        chunks.append(ChatChunk(finish_reason=hit.finish_reason))
        self._replay = deliver(self._scope, self._request, opened)
        self._take(chunks)

    def _take(self, chunks: list[ChatChunk]) -> None:
        call = self._call
        if chunks and call is not None and call.ttft_s is None:
            assert self._scope is not None  # noqa: S101 - set with the call
            call.ttft_s = time.perf_counter() - self._scope.started
        if (
            call is not None
            and call.chunk_redactor is not None
            and self._replay is None
        ):
            chunks = [_redacted(call.chunk_redactor, chunk) for chunk in chunks]
        self._pending.extend(chunks)

    def _held_back(self) -> bool:
        """At the end of the events: queue what the chunk redactor still holds."""
        redactor = self._call.chunk_redactor if self._call is not None else None
        tail = redactor.flush() if redactor is not None else ""
        if tail:
            self._pending.append(ChatChunk(text=tail))
        return bool(tail)

    def _feed(self, event: str, data: str) -> None:
        assert self._opened is not None  # noqa: S101 - only called once opened
        self._take(self._opened.parser.feed(event, data))

    def _next_chunk(self) -> ChatChunk:
        self._delivered += 1
        chunk = self._pending.pop(0)
        if chunk.text:
            self._texts.append(chunk.text)
        return chunk

    def _replayed(self) -> bool:
        """Whether a replayed answer has run out (then the call is done)."""
        if self._replay is None or self._pending:
            return False
        self.response = self._replay
        return True

    @property
    def _provider(self) -> str:
        return (
            self._opened.llm.provider.name if self._opened else self._llm.provider.name
        )

    def _ended(self) -> AisysError | None:
        """The event stream ran out: read the answer; return the error if it was cut."""
        assert self._opened is not None  # noqa: S101 - only called once opened
        parser = self._opened.parser
        if not parser.complete:
            return ProviderConnectionError(
                f"the {self._provider} stream ended before the answer was complete, after "
                f"{self._delivered} chunks ({len(parser.response().text)} characters) "
                "had been delivered",
                provider=self._provider,
            )
        response = parser.response()
        if self._call is not None:
            if self._call.chunk_redactor is not None:  # the text as delivered
                response = response.model_copy(update={"text": "".join(self._texts)})
            for check in self._call.output_checks:
                try:
                    changed = check(response.text)  # output guards on the whole answer
                except AisysError as exc:
                    if isinstance(exc, HandoffRequired):
                        exc.delivered_chunks = self._delivered
                    return exc
                if isinstance(changed, str):  # redacted (delivered chunks are as sent)
                    response = response.model_copy(update={"text": changed})
        if self._scope is not None:
            response = deliver(self._scope, self._request, response)
        self.response = response
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
        if getattr(self, "_scope", None) is None or self._finished:
            return
        with contextlib.suppress(Exception):  # nothing more to do at garbage collection
            self._finish(None, early=True)

    def _finish(self, error: BaseException | None, *, early: bool = False) -> None:
        """End the call through its scope: what the stream said, then its ending."""
        self._finished = True
        scope = self._scope
        if scope is not None and not scope.done:
            self._settle()
            scope.end(error, early=early)

    async def _afinish(
        self, error: BaseException | None, *, early: bool = False
    ) -> None:
        """`_finish` with the steps' finishing work awaited."""
        self._finished = True
        scope = self._scope
        if scope is not None and not scope.done:
            self._settle()
            await scope.aend(error, early=early)

    def _settle(self) -> None:
        """What the stream delivered, on the call (its answer is read, if it completed)."""
        call = self._call
        assert call is not None  # noqa: S101 - set with the scope
        call.stream_chunks = self._delivered
        call.stream_texts = self._texts
        if self.response is None and self._opened is not None:
            assert self._scope is not None  # noqa: S101 - set with the call
            # Delivered text was billed: what the provider did not report is counted.
            self._scope.read(self._opened.parser.response(), read_answer, self._request)

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._opened.parser.response().text if self._opened else ""


class ChatStream(_StreamCore):
    """A streamed chat answer: iterate for `ChatChunk`s; also a context manager.

    Added in 0.1.
    """

    def _open(self) -> None:
        scope = self._begin()
        scope.activate()
        try:
            self._accept(drive(self._flow(scope)))
        except BaseException as exc:
            self._finish(exc)
            raise
        finally:
            scope.deactivate()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> ChatChunk:
        if self._opened is None and self._replay is None:
            if self._finished:
                raise StopIteration
            self._open()
        if self._replay is not None:
            if self._replayed():
                self._finish(None)
                raise StopIteration
            return self._next_chunk()
        assert self._opened is not None  # noqa: S101 - set by _open
        while not self._pending:
            if self._finished:
                raise StopIteration
            try:
                event = self._opened.reader.run()
                if event is not None:
                    self._feed(event.event, event.data)
            except ProviderError as exc:
                error = self._broken(exc)
                self._opened.reader.close()
                self._finish(error)
                raise error from exc
            except BaseException as exc:
                self._opened.reader.close()
                self._finish(exc)
                raise
            if event is None:
                if self._held_back():
                    continue  # deliver the held-back text first; the reader stays ended
                self._opened.reader.close()
                cut = self._ended()
                self._finish(cut)
                if cut is not None:
                    raise cut
                raise StopIteration
        return self._next_chunk()

    def close(self) -> None:
        """Stop reading; the call's span ends, marked closed early if not exhausted."""
        if self._opened is not None:
            self._opened.reader.close()
        self._finish(None, early=True)

    def __enter__(self) -> ChatStream:
        if self._opened is None and self._replay is None and not self._finished:
            self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncChatStream(_StreamCore):
    """The async twin of `ChatStream`: ``async for`` and ``async with``.

    Added in 0.1.
    """

    async def _open(self) -> None:
        scope = self._begin()
        scope.activate()
        try:
            self._accept(await adrive(self._flow(scope)))
        except BaseException as exc:
            await self._afinish(exc)
            raise
        finally:
            scope.deactivate()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatChunk:
        if self._opened is None and self._replay is None:
            if self._finished:
                raise StopAsyncIteration
            await self._open()
        if self._replay is not None:
            if self._replayed():
                await self._afinish(None)
                raise StopAsyncIteration
            return self._next_chunk()
        assert self._opened is not None  # noqa: S101 - set by _open
        while not self._pending:
            if self._finished:
                raise StopAsyncIteration
            try:
                event = await self._opened.reader.arun()
                if event is not None:
                    self._feed(event.event, event.data)
            except ProviderError as exc:
                error = self._broken(exc)
                await self._opened.reader.aclose()
                await self._afinish(error)
                raise error from exc
            except BaseException as exc:
                await self._opened.reader.aclose()
                await self._afinish(exc)
                raise
            if event is None:
                if self._held_back():
                    continue  # deliver the held-back text first; the reader stays ended
                await self._opened.reader.aclose()
                cut = self._ended()
                await self._afinish(cut)
                if cut is not None:
                    raise cut
                raise StopAsyncIteration
        return self._next_chunk()

    async def aclose(self) -> None:
        """Stop reading; the call's span ends, marked closed early if not exhausted."""
        if self._opened is not None:
            await self._opened.reader.aclose()
        await self._afinish(None, early=True)

    async def __aenter__(self) -> AsyncChatStream:
        if self._opened is None and self._replay is None and not self._finished:
            await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _redacted(redactor: Any, chunk: ChatChunk) -> ChatChunk:
    """``chunk`` with its text as the chunk redactor releases it (all of it at the end)."""
    text = redactor.feed(chunk.text) if chunk.text else ""
    if chunk.finish_reason is not None:
        text += redactor.flush()
    if text == chunk.text:
        return chunk
    return chunk.model_copy(update={"text": text, "raw": None})
