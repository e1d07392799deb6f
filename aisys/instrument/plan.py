"""A decorated function's chain: its steps, then the route `aisys.LLM` uses.

`@aisys.traced_llm(retry=..., fallbacks=[...], deadline=..., budget=...)` builds a
`Plan`: the configured steps (`aisys.pipeline.chain`) ending in a `FunctionRoute`, or
in one plain call of the function. Each call of the function is the `Invoke` effect
(a call, or an await for coroutine functions), so the same flows serve both.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from aisys.errors import ConfigError
from aisys.instrument.invoke import invoke
from aisys.names import split_model
from aisys.pipeline._flow import Flow
from aisys.pipeline.chain import Step, run
from aisys.pipeline.keys import key_data

if TYPE_CHECKING:
    from aisys.call import Billed, Call
    from aisys.instrument.failover import FunctionRoute
    from aisys.instrument.spec import Spec
    from aisys.lifecycle import CallScope, RuntimeView
    from aisys.pipeline.route import Route

__all__ = ["Invocation", "Plan", "begin"]

_NOT_STRUCTURED = "structured output is aisys.LLM's; validate your function's answer"


class Invocation:
    """What travels down a decorated function's chain: its arguments."""

    __slots__ = ("args", "call", "fn", "kwargs", "spec")

    use_cache = True
    shares_flights = True
    response_model = None
    """Structured output is `aisys.LLM`'s: a decorated function's answer is its own."""
    max_retries = 0

    def __init__(
        self,
        spec: Spec,
        call: Call,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fn: Callable[..., Any] | None = None,
    ) -> None:
        self.spec = spec
        self.call = call
        self.args = args
        self.kwargs = kwargs
        self.fn = fn

    def cache_material(self) -> dict[str, Any]:
        """The function's qualified name and its bound arguments, defaults applied.

        Arguments go through `key_data`, which keeps their types: ``{1: x}`` and
        ``{"1": x}``, or ``Decimal("1.5")`` and ``"1.5"``, get different keys.
        """
        fn, binder = self.fn, self.spec.binder
        if fn is None or binder is None:
            msg = f"{getattr(fn, '__qualname__', fn)!r} has no signature to key on"
            raise TypeError(msg)
        arguments = binder.bind(self.args, self.kwargs)
        arguments.pop("self", None)
        arguments.pop("cls", None)
        return {
            "fn": f"{fn.__module__}.{fn.__qualname__}",
            "args": key_data(arguments),
        }

    def input_parts(self) -> list[tuple[int, str, str]]:
        """The prompt argument: a string (the user's), or messages by role."""
        value = self.call.input_value
        if isinstance(value, str):
            return [(0, "user", value)]
        parts = []
        if isinstance(value, list | tuple):
            for index, message in enumerate(value):
                if isinstance(message, Mapping) and isinstance(
                    message.get("content"), str
                ):
                    parts.append(
                        (index, str(message.get("role", "user")), message["content"])
                    )
        return parts

    def with_input(self, replaced: dict[int, str]) -> Invocation:
        """The call with its prompt argument's texts replaced (input redaction)."""
        value = self.call.input_value
        if isinstance(value, str):
            new: Any = replaced.get(0, value)
        else:
            new = [
                {**m, "content": replaced[i]} if i in replaced else m
                for i, m in enumerate(value)
            ]
        param = self.spec.input_param
        if param is None:  # pragma: no cover - parts come from the input parameter
            return self
        self.call.input_value = new
        return self._with_argument(param, new)

    def _with_argument(self, param: tuple[str, int | None], value: Any) -> Invocation:
        """The same call with one argument (by name and position) replaced."""
        key, index = param
        args, kwargs = self.args, dict(self.kwargs)
        if index is not None and index < len(args):
            args = (*args[:index], value, *args[index + 1 :])
        else:
            kwargs[key] = value
        return Invocation(self.spec, self.call, args, kwargs, self.fn)

    def output_text(self, result: Any) -> str | None:
        """The answer's text, read as telemetry reads it ("" when there is none)."""
        if isinstance(result, str):
            return result
        from aisys.call import Call
        from aisys.providers.registry import read_result, stream_kind

        if (
            stream_kind(result) is not None
            or inspect.isgenerator(result)
            or inspect.isasyncgen(result)
        ):
            return None  # a stream: read as it is consumed
        scratch = Call("llm", "chat")
        read_result(scratch, result)
        return scratch.output_text or ""

    def billed_by(self, result: Any, target: str | None) -> Billed | None:
        """What a refused return value was billed: the usage read from it."""
        from aisys.call import Call
        from aisys.providers.registry import read_result

        scratch = Call("llm", "chat", provider=self.call.provider)
        if not read_result(scratch, result) or not scratch.usage:
            return None
        return (
            scratch.provider,
            scratch.response_model or self.call.request_model,
            None,
            self.call.price_as,
            dict(scratch.usage),
        )

    def asking_for(self, response_format: Any, model: Any) -> Invocation:
        """Not asked of a decorated function (it has no ``response_model``)."""
        raise NotImplementedError(_NOT_STRUCTURED)

    def followed_by(self, answer: str, feedback: str) -> Invocation:
        """Not asked of a decorated function (it has no ``response_model``)."""
        raise NotImplementedError(_NOT_STRUCTURED)

    def with_parsed(self, result: Any, parsed: Any, earlier: list[Any]) -> Any:
        """Not asked of a decorated function (it has no ``response_model``)."""
        raise NotImplementedError(_NOT_STRUCTURED)

    def with_output(self, result: Any, text: str) -> Any:
        """The answer with its text redacted: strings and `aisys.ChatResponse` only."""
        if isinstance(result, str):
            return text
        if hasattr(result, "model_copy") and hasattr(result, "text"):
            return result.model_copy(update={"text": text})
        from aisys.errors import GuardError

        msg = (
            f"an output guard would redact this {type(result).__name__}, which aisys "
            "cannot rewrite; return a string or an aisys.ChatResponse, or use "
            "action='block'"
        )
        raise GuardError(msg, action="redact")

    def after(self, target: str | None) -> Invocation | None:
        """Decorated functions have no further target for an output guard."""
        return None

    def from_cache(
        self, value: Any, chunks: list[str] | None, *, shared: bool = True
    ) -> Any:
        """The stored return value, as the function returned it.

        Each caller gets a copy of its own, unless the value is immutable or was just
        read from the store for this caller alone (``shared=False``).
        """
        if not shared or isinstance(value, str | int | float | bool | type(None)):
            return value
        config = getattr(type(value), "model_config", None)
        if isinstance(config, dict) and config.get("frozen"):
            return value
        return copy.deepcopy(value)

    def wait_limit(self) -> float:
        """A follower waits at most a minute for the leading call."""
        return 60.0

    def priced_as(self) -> tuple[str | None, str | None, str | None]:
        """Provider and model as the call knows them (no endpoint in decorator mode)."""
        call = self.call
        return call.price_as or call.provider, call.request_model, None

    def retarget(self, model: Any) -> Invocation:
        """The same call with the function's ``model`` argument replaced."""
        name = getattr(getattr(model, "target", None), "model", None) or str(model)
        name = split_model(name)[1]
        param = self.spec.model_param
        if param is None:  # checked at decoration time; here for type checkers
            msg = "downgrade needs a function with a `model` parameter"
            raise ConfigError(msg, field="budget")
        self.call.request_model = name
        return self._with_argument(param, name)


class Plan:
    """A decorated function's chain: its steps, then its route or one plain call."""

    __slots__ = ("fn", "route", "spec", "steps")

    def __init__(
        self,
        spec: Spec,
        fn: Callable[..., Any],
        steps: tuple[Step, ...],
        route: FunctionRoute | None,
    ) -> None:
        self.spec = spec
        self.fn = fn
        self.steps = steps
        self.route = route

    def new_route(self, runtime: RuntimeView) -> Route | None:
        """A fresh route for one call, if the function has retries or fallbacks."""
        return None if self.route is None else self.route.new_route(runtime)

    def flow(
        self,
        call: Call,
        route: Route | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Flow[Any]:
        """The chain for one call's arguments."""
        policy = self.route

        def last(invocation: Invocation) -> Flow[Any]:
            if policy is not None and route is not None:
                return policy.flow(route, invocation.args, invocation.kwargs)
            return invoke(self.fn, invocation.args, invocation.kwargs, None)

        flow: Flow[Any] = run(
            call, self.steps, last, Invocation(self.spec, call, args, kwargs, self.fn)
        )
        return flow


def begin(
    runtime: RuntimeView,
    spec: Spec,
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    plan: Plan | None,
) -> CallScope:
    """Begin one call of a decorated function: through its chain, if it has one."""
    if plan is None:
        return spec.begin(runtime, args, kwargs)
    return spec.begin(runtime, args, kwargs, plan.new_route(runtime), chained=True)
