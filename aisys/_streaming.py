"""Streams and generators under a span: passed through chunk by chunk, ended once.

Provider streams returned by a traced function (`TracedStream`, `TracedAsyncStream`)
and traced generator functions share one `Finisher`, which reads each chunk into the
call and ends the span on exhaustion, error, close or garbage collection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.providers.base import StreamState, read_chunk

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from aisys._runtime import Runtime
    from aisys.instrument import Spec
    from aisys.telemetry.runtime import Telemetry

__all__ = [
    "Finisher",
    "TracedAsyncStream",
    "TracedStream",
    "async_generator_wrapper",
    "generator_wrapper",
]


class Finisher:
    """Ends a streamed call once, whichever way the stream ends."""

    __slots__ = (
        "args",
        "call",
        "done",
        "kwargs",
        "span",
        "spec",
        "started",
        "state",
        "tel",
    )

    def __init__(
        self,
        tel: Telemetry,
        spec: Spec,
        call: Call,
        span: Span,
        started: float,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> None:
        self.tel = tel
        self.spec = spec
        self.call = call
        self.span = span
        self.started = started
        self.args = args
        self.kwargs = kwargs
        self.state = StreamState()
        self.done = False

    def chunk(self, chunk: Any) -> None:
        try:
            read_chunk(self.call, chunk, self.state)
        except Exception as exc:
            self.call.unread = f"reading a {type(chunk).__name__} chunk failed: {exc!r}"

    def finish(
        self, error: BaseException | None = None, *, early: bool = False
    ) -> None:
        if self.done:
            return
        self.done = True
        from aisys.instrument import end_call, meter  # instrument imports this module

        call = self.call
        call.error = error
        call.closed_early = early
        call.stream_chunks = self.state.chunks
        if self.spec.kind == "llm":
            if self.state.parts or call.output_text is None:
                call.output_text = self.state.text
            try:
                self.spec.finish_llm(call, self.args, self.kwargs, self.tel.capture)
            except Exception as exc:
                call.unread = f"counting stream tokens failed: {exc!r}"
            meter(call, self.tel.settings)
        end_call(self.tel, call, self.span, self.started)


class TracedStream:
    """A provider stream, passed through chunk by chunk; its span ends with it."""

    __slots__ = ("_finisher", "_inner", "_iterator")

    def __init__(self, inner: Any, finisher: Finisher) -> None:
        self._inner = inner
        self._iterator: Iterator[Any] = iter(inner)
        self._finisher = finisher

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._iterator)
        except StopIteration:
            self._finisher.finish()
            raise
        except BaseException as exc:
            self._finisher.finish(exc)
            raise
        self._finisher.chunk(chunk)
        return chunk

    def close(self) -> None:
        """Close the underlying stream; the span ends, marked as closed early."""
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._finisher.finish(early=True)

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __del__(self) -> None:
        finisher = getattr(self, "_finisher", None)
        if finisher is not None and not finisher.done:
            finisher.finish(early=True)


class TracedAsyncStream:
    """An async provider stream, passed through; its span ends with it."""

    __slots__ = ("_finisher", "_inner", "_iterator")

    def __init__(self, inner: Any, finisher: Finisher) -> None:
        self._inner = inner
        self._iterator: AsyncIterator[Any] = inner.__aiter__()
        self._finisher = finisher

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._iterator.__anext__()
        except StopAsyncIteration:
            self._finisher.finish()
            raise
        except BaseException as exc:
            self._finisher.finish(exc)
            raise
        self._finisher.chunk(chunk)
        return chunk

    async def close(self) -> None:
        """Close the underlying stream; the span ends, marked as closed early."""
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                await close()
        finally:
            self._finisher.finish(early=True)

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __del__(self) -> None:
        finisher = getattr(self, "_finisher", None)
        if finisher is not None and not finisher.done:
            finisher.finish(early=True)


def generator_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any]
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        finisher = Finisher(tel, spec, call, span, time.perf_counter(), args, kwargs)
        # The span is current only while the function body runs, never across a yield.
        token = tel.activate(span)
        try:
            gen = fn(*args, **kwargs)
            item = next(gen)
        except StopIteration as stop:
            tel.deactivate(token)
            finisher.finish()
            return stop.value
        except BaseException as exc:
            tel.deactivate(token)
            finisher.finish(exc)
            raise
        tel.deactivate(token)
        try:
            while True:
                finisher.chunk(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    gen.close()
                    finisher.finish(early=True)
                    raise
                except BaseException as exc:
                    token = tel.activate(span)
                    try:
                        item = gen.throw(exc)
                    finally:
                        tel.deactivate(token)
                else:
                    token = tel.activate(span)
                    try:
                        item = gen.send(sent)
                    finally:
                        tel.deactivate(token)
        except StopIteration as stop:
            finisher.finish()
            return stop.value
        except BaseException as exc:
            finisher.finish(exc)
            raise

    return wrapper


def async_generator_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any]
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        finisher = Finisher(tel, spec, call, span, time.perf_counter(), args, kwargs)
        gen = fn(*args, **kwargs)
        sent: Any = None
        throw: BaseException | None = None
        try:
            while True:
                token = tel.activate(span)
                try:
                    item = await (
                        gen.athrow(throw) if throw is not None else gen.asend(sent)
                    )
                finally:
                    tel.deactivate(token)
                throw = None
                finisher.chunk(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    await gen.aclose()
                    finisher.finish(early=True)
                    raise
                except BaseException as exc:
                    throw = exc
        except StopAsyncIteration:
            finisher.finish()
        except BaseException as exc:
            finisher.finish(exc)
            raise

    return wrapper
