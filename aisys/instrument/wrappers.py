"""The decorators' wrappers: one call of a decorated function, begun and ended.

Dispatched once, at decoration time, on what the function is: a plain, coroutine,
generator or async-generator function. A model function's provider stream is handed
back wrapped, to end its call when it ends (`aisys.instrument.streams`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aisys.instrument.plan import Plan, begin
from aisys.instrument.spec import Spec
from aisys.instrument.streams import (
    Finisher,
    TracedAsyncStream,
    TracedStream,
    async_generator_wrapper,
    generator_wrapper,
)
from aisys.pipeline._flow import adrive, drive
from aisys.providers.registry import stream_kind

if TYPE_CHECKING:
    from aisys.lifecycle import CallScope, RuntimeView

__all__ = ["instrument"]


def instrument(
    runtime: RuntimeView,
    spec: Spec,
    fn: Callable[..., Any],
    plan: Plan | None = None,
) -> Callable[..., Any]:
    """Wrap ``fn`` so each call makes one span and one log event.

    With a `Plan` (steps such as budgets, or a route of retries and fallbacks) each
    call runs through the chain; without one, the function is simply called.
    """
    if inspect.isasyncgenfunction(fn):
        wrapper: Callable[..., Any] = async_generator_wrapper(runtime, spec, fn, plan)
    elif inspect.isgeneratorfunction(fn):
        wrapper = generator_wrapper(runtime, spec, fn, plan)
    elif inspect.iscoroutinefunction(fn):
        wrapper = _coroutine_wrapper(runtime, spec, fn, plan)
    else:
        wrapper = _function_wrapper(runtime, spec, fn, plan)
    return functools.wraps(fn)(wrapper)


def _function_wrapper(
    runtime: RuntimeView, spec: Spec, fn: Callable[..., Any], plan: Plan | None
) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = begin(runtime, spec, args, kwargs, plan)
        scope.activate()
        try:
            if plan is None:
                result = fn(*args, **kwargs)
            else:
                result = drive(plan.flow(scope.call, scope.route, args, kwargs))
        except BaseException as exc:
            scope.end(exc)
            raise
        scope.deactivate()
        if spec.kind == "llm":
            stream = _stream_of(scope, spec, result, args, kwargs)
            if stream is not None:
                return stream  # its scope ends when the stream does
        if spec.reads:
            scope.read(result, spec.observe, args, kwargs, scope.tel.capture)
        if spec.online is not None or spec.review is not None:
            scope.answered(result)
        scope.end()
        return result

    return wrapper


def _coroutine_wrapper(
    runtime: RuntimeView, spec: Spec, fn: Callable[..., Any], plan: Plan | None
) -> Callable[..., Any]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = begin(runtime, spec, args, kwargs, plan)
        scope.activate()
        try:
            if plan is None:
                result = await fn(*args, **kwargs)
            else:
                result = await adrive(plan.flow(scope.call, scope.route, args, kwargs))
        except BaseException as exc:
            await scope.aend(exc)
            raise
        scope.deactivate()
        if spec.kind == "llm":
            stream = _stream_of(scope, spec, result, args, kwargs)
            if stream is not None:
                return stream  # its scope ends when the stream does
        if spec.reads:
            scope.read(result, spec.observe, args, kwargs, scope.tel.capture)
        if spec.online is not None or spec.review is not None:
            scope.answered(result)
        await scope.aend()
        return result

    return wrapper


def _stream_of(
    scope: CallScope,
    spec: Spec,
    result: Any,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
) -> Any:
    """A provider stream returned by a model function, wrapped to end its call; else None."""
    kind = stream_kind(result)
    if kind is None:
        return None
    call = scope.call
    if call.chunk_redactor is not None:  # SDK chunks cannot be rewritten
        call.output_checks.append(call.chunk_redactor.check_whole)
        call.chunk_redactor = None
    finisher = Finisher(scope, spec, args, kwargs)
    if kind == "sync":
        return TracedStream(result, finisher)
    return TracedAsyncStream(result, finisher)
