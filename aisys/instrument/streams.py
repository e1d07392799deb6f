"""Streams and generators under a span: passed through chunk by chunk, ended once.

Provider streams returned by a traced function (`TracedStream`, `TracedAsyncStream`)
and traced generator functions share one `Finisher`, which reads each chunk into the
call and ends it through its `CallScope` on exhaustion, error, close or garbage
collection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.instrument.plan import Plan, begin
from aisys.providers.base import StreamState
from aisys.providers.registry import read_chunk

if TYPE_CHECKING:
    from aisys.instrument.spec import Spec
    from aisys.lifecycle import CallScope, RuntimeView

__all__ = [
    "Finisher",
    "TracedAsyncStream",
    "TracedStream",
    "async_generator_wrapper",
    "generator_wrapper",
]


class Finisher:
    """A streamed call's chunks, read as they pass, and its one ending (`CallScope`)."""

    __slots__ = ("args", "call", "kwargs", "scope", "spec", "state")

    def __init__(
        self,
        scope: CallScope,
        spec: Spec,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
    ) -> None:
        self.scope = scope
        self.call = scope.call
        self.spec = spec
        self.args = args
        self.kwargs = kwargs
        self.state = StreamState()

    @property
    def done(self) -> bool:
        """Whether the call has ended."""
        return self.scope.done

    def chunk(self, chunk: Any) -> None:
        """Read one chunk that passed to the caller into the call."""
        if type(chunk) is str:  # the common case of a generator, read here
            self.state.chunks += 1
            self.state.parts.append(chunk)
            return
        try:
            read_chunk(self.call, chunk, self.state)
        except Exception as exc:
            self.call.unread = f"reading a {type(chunk).__name__} chunk failed: {exc!r}"

    def redacted(self, item: Any) -> Any:
        """A yielded string as the chunk redactor releases it (other items as they are)."""
        redactor = self.call.chunk_redactor
        if redactor is None or not isinstance(item, str):
            return item
        return redactor.feed(item)

    def held_back(self) -> str:
        """What the chunk redactor still holds, redacted (the generator has ended)."""
        redactor = self.call.chunk_redactor
        return redactor.flush() if redactor is not None else ""

    def conclude(self) -> None:
        """End a stream that ran out: its output guards decide; raises if they block."""
        error = self.checked()
        self.finish(error)
        if error is not None:
            raise error from None

    def checked(self) -> BaseException | None:
        """Run the output guards on the whole text; the error that blocks it, if any."""
        from aisys.errors import AisysError

        for check in self.call.output_checks:
            try:
                check(self.state.text)
            except AisysError as exc:
                return exc
        return None

    def finish(
        self, error: BaseException | None = None, *, early: bool = False
    ) -> None:
        """End the call once: what the chunks said, then the scope's ending."""
        if self.scope.done:
            return
        self._read(error)
        self.scope.end(error, early=early)

    async def afinish(
        self, error: BaseException | None = None, *, early: bool = False
    ) -> None:
        """`finish`, with the steps' finishing work awaited."""
        if self.scope.done:
            return
        self._read(error)
        await self.scope.aend(error, early=early)

    def _read(self, error: BaseException | None) -> None:
        call = self.call
        call.stream_chunks = self.state.chunks
        # What was delivered was billed; a stream that failed before its first chunk
        # delivered (and is billed) nothing.
        if self.spec.kind == "llm" and (error is None or self.state.chunks):
            self.scope.read(self.state, self._read_stream)

    def _read_stream(self, call: Call, state: StreamState) -> None:
        """The whole streamed answer: its text, and tokens the provider did not report."""
        if state.parts or call.output_text is None:
            call.output_text = state.text
        try:
            self.spec.finish_llm(call, self.args, self.kwargs, self.scope.tel.capture)
        except Exception as exc:
            call.unread = f"counting stream tokens failed: {exc!r}"


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
            self._finisher.conclude()  # raises if an output guard blocks
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
            error = self._finisher.checked()  # the output guards decide
            await self._finisher.afinish(error)
            if error is not None:
                raise error from None
            raise
        except BaseException as exc:
            await self._finisher.afinish(exc)
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
            await self._finisher.afinish(early=True)

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
    runtime: RuntimeView, spec: Spec, fn: Callable[..., Any], plan: Plan | None = None
) -> Callable[..., Any]:
    """A generator function's wrapper: its span current only while its body runs."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = begin(runtime, spec, args, kwargs, plan)
        call = scope.call
        finisher = Finisher(scope, spec, args, kwargs)
        # The span is current only while the function body runs, never across a yield.
        scope.activate()
        try:
            gen = _start(scope, fn, plan, args, kwargs)
            item = next(gen)
        except StopIteration as stop:
            finisher.finish()
            return stop.value
        except BaseException as exc:
            finisher.finish(exc)
            raise
        scope.deactivate()
        redact = finisher.redacted if call.chunk_redactor is not None else None
        try:
            while True:
                if redact is not None:
                    item = redact(item)
                finisher.chunk(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    gen.close()
                    finisher.finish(early=True)
                    raise
                except BaseException as exc:
                    scope.activate()
                    try:
                        item = gen.throw(exc)
                    finally:
                        scope.deactivate()
                else:
                    scope.activate()
                    try:
                        item = gen.send(sent)
                    finally:
                        scope.deactivate()
        except StopIteration as stop:
            value = stop.value
        except BaseException as exc:
            finisher.finish(exc)
            raise
        tail = finisher.held_back()
        if tail:
            finisher.chunk(tail)
            try:
                yield tail
            except GeneratorExit:
                finisher.finish(early=True)
                raise
        finisher.conclude()
        return value

    return wrapper


def async_generator_wrapper(
    runtime: RuntimeView, spec: Spec, fn: Callable[..., Any], plan: Plan | None = None
) -> Callable[..., Any]:
    """The async twin of `generator_wrapper`."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = begin(runtime, spec, args, kwargs, plan)
        call = scope.call
        finisher = Finisher(scope, spec, args, kwargs)
        scope.activate()
        try:
            gen = _start(scope, fn, plan, args, kwargs)
        except BaseException as exc:
            await finisher.afinish(exc)
            raise
        scope.deactivate()
        sent: Any = None
        throw: BaseException | None = None
        try:
            while True:
                scope.activate()
                try:
                    item = await (
                        gen.athrow(throw) if throw is not None else gen.asend(sent)
                    )
                finally:
                    scope.deactivate()
                throw = None
                if call.chunk_redactor is not None:
                    item = finisher.redacted(item)
                finisher.chunk(item)
                try:
                    sent = yield item
                except GeneratorExit:
                    await gen.aclose()
                    await finisher.afinish(early=True)
                    raise
                except BaseException as exc:
                    throw = exc
        except StopAsyncIteration:
            pass
        except BaseException as exc:
            await finisher.afinish(exc)
            raise
        tail = finisher.held_back()
        if tail:
            finisher.chunk(tail)
            try:
                yield tail
            except GeneratorExit:
                await finisher.afinish(early=True)
                raise
        error = finisher.checked()
        await finisher.afinish(error)
        if error is not None:
            raise error from None

    return wrapper


def _start(
    scope: CallScope,
    fn: Callable[..., Any],
    plan: Plan | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """The generator, made through the chain when there is one (input guards first)."""
    if plan is None:
        return fn(*args, **kwargs)
    from aisys.pipeline._flow import drive

    return drive(plan.flow(scope.call, None, args, kwargs))
