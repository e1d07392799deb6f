"""Decorators and the trace block: instrument code the application already has.

`traced_llm`, `traced_retrieval` and `traced` wrap sync, async, generator and
async-generator functions; the wrapper returns exactly what the function returned
(provider streams are wrapped so their usage reaches the span). How a call is
observed is decided once, at decoration time; what a result means is left to
`aisys.providers`, and what a span says to `aisys.telemetry`.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aisys.call import Call
from aisys.context import _SCOPE, Scope
from aisys.errors import ConfigError
from aisys.pipeline._flow import Flow, adrive, drive
from aisys.providers.base import StreamState, read_chunk, read_result, stream_kind

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from aisys._runtime import Runtime
    from aisys.pipeline.retry import Retry
    from aisys.pipeline.route import Route
    from aisys.telemetry.runtime import Telemetry

__all__ = ["FunctionRoute", "Spec", "TraceBlock", "instrument"]

# Parameters whose value is the prompt or the query, in order of preference.
_INPUT_PARAMS = ("messages", "prompt", "question", "query", "input", "text")
_TOP_K_PARAMS = ("top_k", "k", "limit", "n_results")
_REQUEST_PARAMS = (
    "temperature",
    "max_tokens",
    "max_completion_tokens",
    "top_p",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "stream",
)


class Spec:
    """How one decorated function is observed; computed once, at decoration time."""

    __slots__ = (
        "data_source",
        "input_param",
        "kind",
        "model",
        "model_param",
        "name",
        "operation",
        "provider",
        "tool_name",
        "top_k_param",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        kind: str,
        *,
        operation: str | None,
        name: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        data_source: str | None = None,
    ) -> None:
        self.kind = kind
        self.operation = operation or ""
        self.provider = provider
        self.model = model
        self.data_source = data_source
        self.tool_name = None
        if kind == "step" and self.operation == "execute_tool":
            self.tool_name = name or fn.__name__
            name = None
        elif kind == "step":
            name = name or fn.__qualname__
        self.name = name
        params = _parameters(fn)
        self.model_param = _find(params, ("model",))
        self.input_param = _find(params, _INPUT_PARAMS) or _first_argument(params)
        self.top_k_param = _find(params, _TOP_K_PARAMS)

    def new_call(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Call:
        """A fresh `Call` for one invocation with the given arguments."""
        model = self.model
        if model is None and self.model_param is not None:
            value = _argument(self.model_param, args, kwargs)
            model = value if isinstance(value, str) else None
        call = Call(
            self.kind,
            self.operation,
            name=self.name,
            provider=self.provider,
            request_model=model,
            scope=_SCOPE.get(),
        )
        call.data_source = self.data_source
        call.tool_name = self.tool_name
        if kwargs:
            params = {key: kwargs[key] for key in _REQUEST_PARAMS if key in kwargs}
            if params:
                call.request_params = params
        return call

    def observe(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        """Read what the function returned into ``call``; never raises."""
        try:
            if self.kind == "llm":
                self._observe_llm(call, result, args, kwargs, capture)
            elif self.kind == "retrieval":
                self._observe_retrieval(call, result, args, kwargs, capture)
        except Exception as exc:
            call.unread = f"reading the {type(result).__name__} result failed: {exc!r}"

    def _observe_llm(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        if isinstance(result, str):
            call.output_text = result
        elif not read_result(call, result):
            call.unread = (
                f"returned {type(result).__name__}: not a response aisys can read "
                "(no model, id or usage)"
            )
        self.finish_llm(call, args, kwargs, capture)

    def finish_llm(
        self,
        call: Call,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        """Count tokens the provider did not report, and keep the prompt if asked to."""
        prompt = _argument(self.input_param, args, kwargs) if self.input_param else None
        if call.output_text is not None and (
            call.usage is None or "output_tokens" not in call.usage
        ):
            _estimate_usage(call, prompt)
        if capture and prompt is not None:
            call.input_messages = prompt

    def _observe_retrieval(
        self,
        call: Call,
        result: Any,
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        capture: bool,
    ) -> None:
        if self.top_k_param is not None:
            top_k = _argument(self.top_k_param, args, kwargs)
            if isinstance(top_k, int) and not isinstance(top_k, bool):
                call.top_k = top_k
        if not isinstance(result, list | tuple):
            call.unread = (
                f"returned {type(result).__name__}: expected a list of documents"
            )
            return
        scores = [s for s in (_score(doc) for doc in result) if s is not None]
        call.scores = scores or None
        call.documents = [_document(doc) for doc in result] if capture else list(result)
        if capture and self.input_param is not None:
            query = _argument(self.input_param, args, kwargs)
            call.query = query if isinstance(query, str) else None


class Invoke:
    """The effect of calling the user's function (awaiting it, for coroutines)."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs

    def run(self) -> Any:
        """Call the function."""
        return self.fn(*self.args, **self.kwargs)

    async def arun(self) -> Any:
        """Call the coroutine function and await it."""
        return await self.fn(*self.args, **self.kwargs)


class FunctionRoute:
    """Retry and fallbacks for a decorated function: the same route `aisys.LLM` uses.

    Fallbacks are functions taking the same arguments; the deadline is checked before
    each attempt and wait (a running function is not interrupted).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        fallbacks: Sequence[Callable[..., Any]],
        retry: Retry | None,
        deadline: float | None,
        provider: str | None,
    ) -> None:
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            msg = (
                f"retry= and fallbacks= cannot wrap the generator function {fn.__qualname__}: "
                "its items are already with the caller when it fails; retry the call that "
                "opens the stream instead"
            )
            raise ConfigError(msg, field="retry")
        is_async = inspect.iscoroutinefunction(fn)
        for fallback in fallbacks:
            if inspect.iscoroutinefunction(fallback) != is_async:
                msg = (
                    f"fallback {getattr(fallback, '__qualname__', fallback)!r} must be "
                    f"{'a coroutine function' if is_async else 'a plain function'} like "
                    f"{fn.__qualname__}"
                )
                raise ConfigError(msg, field="fallbacks")
        # Loaded here, not at import: only functions with a policy pay for tenacity.
        from aisys.pipeline.retry import Retry
        from aisys.pipeline.route import check_deadline, record_route

        self.record = record_route
        self.functions = (fn, *fallbacks)
        self.retry = retry or Retry(max_attempts=1)
        self.deadline = check_deadline(deadline)
        self.prefix = provider or "function"

    def new_route(self, runtime: Runtime) -> Route:
        """A fresh route for one call, with the runtime's clock and breaker settings."""
        from aisys.pipeline.route import Route

        return Route.configured(
            runtime.clock, runtime.settings, deadline_s=self.deadline
        )

    def flow(
        self, route: Route, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Flow[Any]:
        """The route over the functions, for one call's arguments."""
        from aisys.pipeline.route import RouteTarget, route_flow

        targets = [
            RouteTarget(
                label=f"{self.prefix}:{function.__qualname__}",
                run=functools.partial(_invoke, function, args, kwargs),
                retry=self.retry,
                breaker_key=f"{function.__module__}.{function.__qualname__}",
            )
            for function in self.functions
        ]
        return route_flow(route, targets)


def _invoke(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    timeout: float | None,
) -> Flow[Any]:
    result = yield Invoke(fn, args, kwargs)
    return result


def instrument(
    runtime: Runtime,
    spec: Spec,
    fn: Callable[..., Any],
    route: FunctionRoute | None = None,
) -> Callable[..., Any]:
    """Wrap ``fn`` so each call makes one span and one log event."""
    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = _async_generator_wrapper(runtime, spec, fn)
    elif inspect.isgeneratorfunction(fn):
        wrapper = _generator_wrapper(runtime, spec, fn)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine_wrapper(runtime, spec, fn, route)
    else:
        wrapper = _function_wrapper(runtime, spec, fn, route)
    return functools.wraps(fn)(wrapper)


def _function_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any], policy: FunctionRoute | None
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        started = time.perf_counter()
        route = None if policy is None else policy.new_route(runtime)
        token = tel.activate(span)
        try:
            if policy is None or route is None:
                result = fn(*args, **kwargs)
            else:
                result = drive(policy.flow(route, args, kwargs))
        except BaseException as exc:
            call.error = exc
            tel.deactivate(token)
            _end_failed(tel, call, span, started, policy, route)
            raise
        tel.deactivate(token)
        if policy is not None and route is not None:
            policy.record(call, route)
        return _settle(tel, spec, call, span, started, result, args, kwargs)

    return wrapper


def _coroutine_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any], policy: FunctionRoute | None
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        started = time.perf_counter()
        route = None if policy is None else policy.new_route(runtime)
        token = tel.activate(span)
        try:
            if policy is None or route is None:
                result = await fn(*args, **kwargs)
            else:
                result = await adrive(policy.flow(route, args, kwargs))
        except BaseException as exc:
            call.error = exc
            tel.deactivate(token)
            _end_failed(tel, call, span, started, policy, route)
            raise
        tel.deactivate(token)
        if policy is not None and route is not None:
            policy.record(call, route)
        return _settle(tel, spec, call, span, started, result, args, kwargs)

    return wrapper


def _end_failed(
    tel: Telemetry,
    call: Call,
    span: Span,
    started: float,
    policy: FunctionRoute | None,
    route: Route | None,
) -> None:
    """End a call whose function raised (after its retries and fallbacks, if any)."""
    if policy is not None and route is not None:
        policy.record(call, route)
    tel.end(call, span, started)


def _settle(
    tel: Telemetry,
    spec: Spec,
    call: Call,
    span: Span,
    started: float,
    result: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> Any:
    """End the call with its result, or hand a provider stream a span to end later."""
    if spec.kind == "llm":
        kind = stream_kind(result)
        if kind is not None:
            finish = _Finisher(tel, spec, call, span, started, args, kwargs)
            return (
                TracedStream(result, finish)
                if kind == "sync"
                else TracedAsyncStream(result, finish)
            )
    spec.observe(call, result, args, kwargs, tel.capture)
    tel.end(call, span, started)
    return result


class _Finisher:
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
        self.tel.end(call, self.span, self.started)


class TracedStream:
    """A provider stream, passed through chunk by chunk; its span ends with it."""

    __slots__ = ("_finisher", "_inner", "_iterator")

    def __init__(self, inner: Any, finisher: _Finisher) -> None:
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

    def __init__(self, inner: Any, finisher: _Finisher) -> None:
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


def _generator_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any]
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        finisher = _Finisher(tel, spec, call, span, time.perf_counter(), args, kwargs)
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


def _async_generator_wrapper(
    runtime: Runtime, spec: Spec, fn: Callable[..., Any]
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        tel = runtime.telemetry
        call = spec.new_call(args, kwargs)
        span = tel.start(call)
        finisher = _Finisher(tel, spec, call, span, time.perf_counter(), args, kwargs)
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


class TraceBlock:
    """``with aisys.trace(...)`` / ``async with``: a parent span and a scope for calls inside."""

    __slots__ = (
        "_call",
        "_runtime",
        "_scope",
        "_scope_token",
        "_span",
        "_started",
        "_tel",
        "_token",
    )

    def __init__(
        self,
        runtime: Runtime,
        name: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        tags: tuple[str, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        parent = _SCOPE.get()
        self._scope = (
            parent.nested(name, user_id, session_id, tags, metadata)
            if parent is not None
            else Scope(
                name,
                user_id,
                session_id,
                tuple(dict.fromkeys(tags)),
                dict(metadata or {}),
            )
        )
        self._runtime = runtime

    @property
    def trace_id(self) -> str | None:
        """This trace's id as 32 hex digits, once entered (for linking logs or tickets)."""
        ctx = self._span.get_span_context()
        return f"{ctx.trace_id:032x}" if ctx.is_valid else None

    def __enter__(self) -> TraceBlock:
        self._tel = self._runtime.telemetry
        self._scope_token = _SCOPE.set(self._scope)
        self._call = Call("trace", "", name=self._scope.name, scope=self._scope)
        self._span = self._tel.start(self._call)
        self._started = time.perf_counter()
        self._token = self._tel.activate(self._span)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._call.error = exc
        self._tel.deactivate(self._token)
        self._tel.end(self._call, self._span, self._started)
        _SCOPE.reset(self._scope_token)

    async def __aenter__(self) -> TraceBlock:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


# -- helpers ----------------------------------------------------------------------------


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return []


def _find(
    params: list[inspect.Parameter], names: tuple[str, ...]
) -> tuple[str, int | None] | None:
    """The first parameter called one of ``names``: its name and position, if positional."""
    for wanted in names:
        for index, param in enumerate(params):
            if param.name == wanted and param.kind not in (
                param.VAR_POSITIONAL,
                param.VAR_KEYWORD,
            ):
                positional = param.kind in (
                    param.POSITIONAL_ONLY,
                    param.POSITIONAL_OR_KEYWORD,
                )
                return wanted, index if positional else None
    return None


def _first_argument(params: list[inspect.Parameter]) -> tuple[str, int | None] | None:
    """The first real argument (not ``self``/``cls``), as a fallback input."""
    for index, param in enumerate(params):
        if param.name in ("self", "cls"):
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            return param.name, index
        return None
    return None


def _argument(
    param: tuple[str, int | None], args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> Any:
    name, index = param
    if name in kwargs:
        return kwargs[name]
    if index is not None and index < len(args):
        return args[index]
    return None


def _estimate_usage(call: Call, prompt: Any) -> None:
    """Count tokens offline when the provider reported none; marks them estimated."""
    from aisys.metering.tokens import count_tokens

    model = call.request_model or call.response_model
    text = call.output_text or ""
    input_tokens = None
    if isinstance(prompt, str) or (
        isinstance(prompt, list | tuple) and all(isinstance(m, Mapping) for m in prompt)
    ):
        input_tokens = count_tokens(prompt, model)
    call.set_usage(input_tokens=input_tokens, output_tokens=count_tokens(text, model))
    call.estimated = True


def _score(doc: Any) -> float | None:
    if isinstance(doc, tuple) and len(doc) == 2 and isinstance(doc[1], int | float):
        return float(doc[1])
    value = (
        doc.get("score") if isinstance(doc, Mapping) else getattr(doc, "score", None)
    )
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool)
        else None
    )


def _document(doc: Any) -> dict[str, Any]:
    """A retrieved item as ``{id, content, score}`` for content capture."""
    score = _score(doc)
    if isinstance(doc, tuple) and len(doc) == 2:
        doc = doc[0]
    ident = None
    if isinstance(doc, str):
        content: Any = doc
    elif isinstance(doc, Mapping):
        content = doc.get("content", doc.get("text", doc.get("page_content")))
        ident = doc.get("id")
    else:
        content = getattr(doc, "content", None) or getattr(doc, "page_content", None)
        ident = getattr(doc, "id", None)
    out: dict[str, Any] = {"content": content if isinstance(content, str) else str(doc)}
    if ident is not None:
        out["id"] = str(ident)
    if score is not None:
        out["score"] = score
    return out
