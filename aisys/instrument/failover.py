"""Retries and fallbacks for a decorated function: the route `aisys.LLM` uses.

Loaded only for a function given ``retry=``, ``fallbacks=``, ``deadline=`` or
``circuit=`` (it brings tenacity).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aisys.errors import ConfigError
from aisys.instrument.invoke import invoke
from aisys.pipeline._flow import Flow
from aisys.pipeline.retry import Retry
from aisys.pipeline.route import (
    CircuitBreaker,
    Route,
    RouteTarget,
    check_deadline,
    route_flow,
)

if TYPE_CHECKING:
    from aisys.lifecycle import RuntimeView

__all__ = ["FunctionRoute"]


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
        price_as: str | None = None,
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
        self.deadline = check_deadline(deadline)
        policy = retry or Retry(max_attempts=1)
        prefix = provider or "function"
        self.targets = tuple(
            RouteTarget(
                label=f"{prefix}:{function.__qualname__}",
                retry=policy,
                breaker_key=f"{function.__module__}.{function.__qualname__}"
                if use_circuit
                else None,
                circuit=circuit,
                price_as=price_as,
                subject=function,
            )
            for function in (fn, *fallbacks)
        )
        """The route's targets, planned once: each call only passes its arguments."""

    def new_route(self, runtime: RuntimeView) -> Route:
        """A fresh route for one call, with the runtime's clock and breaker settings."""
        return Route.configured(
            runtime.clock, runtime.settings, deadline_s=self.deadline
        )

    def flow(
        self, route: Route, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Flow[Any]:
        """The route over the functions, for one call's arguments."""

        def attempt(function: Callable[..., Any], timeout: float | None) -> Flow[Any]:
            return invoke(function, args, kwargs, timeout)

        return route_flow(route, self.targets, attempt)
