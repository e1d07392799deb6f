"""Retry and fallbacks for users' own functions: the route `aisys.LLM` uses.

`@aisys.traced_llm(retry=..., fallbacks=[...], deadline=...)` builds a `FunctionRoute`;
each attempt is the `Invoke` effect (a call, or an await for coroutine functions), so the
same flows serve sync and async functions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aisys.errors import ConfigError
from aisys.pipeline._flow import Flow
from aisys.pipeline.retry import Retry
from aisys.pipeline.route import (
    CircuitBreaker,
    Route,
    RouteTarget,
    check_deadline,
    record_route,
    route_flow,
)

if TYPE_CHECKING:
    from aisys._runtime import Runtime
    from aisys.call import Call

__all__ = ["FunctionRoute", "Invoke"]


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
    each attempt and wait (a running function is not interrupted). Each function has
    its own breaker, shared process-wide by its qualified name (the function holds its
    credentials, so aisys cannot tell tenants apart: decorate one function per key, or
    pass ``circuit=None``).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        fallbacks: Sequence[Callable[..., Any]],
        retry: Retry | None,
        deadline: float | None,
        provider: str | None,
        circuit: CircuitBreaker | None = None,
        use_circuit: bool = True,
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
        self.functions = (fn, *fallbacks)
        self.retry = retry or Retry(max_attempts=1)
        self.deadline = check_deadline(deadline)
        self.prefix = provider or "function"
        self.circuit = circuit
        self.use_circuit = use_circuit

    @staticmethod
    def record(call: Call, route: Route) -> None:
        """Put the route's attempts on the call."""
        record_route(call, route)

    def new_route(self, runtime: Runtime) -> Route:
        """A fresh route for one call, with the runtime's clock and breaker settings."""
        return Route.configured(
            runtime.clock, runtime.settings, deadline_s=self.deadline
        )

    def flow(
        self, route: Route, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Flow[Any]:
        """The route over the functions, for one call's arguments."""
        targets = [
            RouteTarget(
                label=f"{self.prefix}:{function.__qualname__}",
                run=functools.partial(_invoke, function, args, kwargs),
                retry=self.retry,
                breaker_key=f"{function.__module__}.{function.__qualname__}"
                if self.use_circuit
                else None,
                circuit=self.circuit,
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
