"""Helpers for testing code that uses aisys: capture telemetry, script model replies.

`ScriptedModel` stands in for a model inside your own traced functions;
`ScriptedTransport` (with `Fault`) scripts what ``aisys.LLM("scripted:…")`` — or any
``aisys.LLM`` given ``transport=`` — receives over its in-process HTTP transport.

```python
from aisys.testing import capture, ScriptedModel

def test_answer_is_traced():
    with capture() as seen:
        answer("hi")
    assert seen.span("chat scripted-model").attributes["gen_ai.usage.output_tokens"] > 0
```

With pytest, the plugin this package registers (`aisys.testing.pytest_plugin`) gives
each test fresh aisys state through the fixtures ``aisys_capture``, ``aisys_clock`` and
``aisys_state``.

Needs the OTel SDK (the ``otel`` extra). Importing this package stays cheap (pytest
loads its plugin in every run): the heavier parts load on first use.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    from aisys._runtime import Runtime
    from aisys.providers.scripted import Fault, ScriptedTransport
    from aisys.types import ChatResponse

__all__ = [
    "Captured",
    "FakeClock",
    "Fault",
    "ScriptedModel",
    "ScriptedTransport",
    "capture",
    "fake_clock",
    "reset",
    "scripted",
]


def __getattr__(name: str) -> Any:
    # The scripted transport pulls in httpx2 and pydantic: loaded when first asked for.
    if name in ("Fault", "ScriptedTransport"):
        from aisys.providers import scripted as module

        value = getattr(module, name)
        globals()[name] = value
        return value
    msg = f"module 'aisys.testing' has no attribute {name!r}"
    raise AttributeError(msg)


def reset() -> None:
    """Forget aisys's process-wide state, so one test's failures never reach the next.

    Circuit breakers, memory stores (budget counters and cache entries), the online
    scoring worker (its counts), and the once-only warnings (unknown prices, cache problems, unmetered budgets). The pytest
    fixtures call it before and after each test that uses them.

    Added in 0.1.
    """
    import aisys._runtime
    from aisys.metering.cost import reset_warnings
    from aisys.pipeline.route import reset_breakers
    from aisys.stores import reset_memory_stores

    aisys._runtime.DEFAULT_RUNTIME._reset_scoring()
    reset_breakers()
    reset_memory_stores()
    reset_warnings()
    for name in ("aisys.pipeline.cache", "aisys.pipeline.budget"):
        module = sys.modules.get(name)
        if module is not None:
            module.reset_warnings()


class Captured:
    """The spans, log events and metrics recorded inside one `capture()` block."""

    def __init__(
        self, exporter: InMemorySpanExporter, reader: InMemoryMetricReader
    ) -> None:
        self._exporter = exporter
        self._reader = reader
        self.logs: list[dict[str, Any]] = []
        """Log events as dicts (``event``, ``log_level`` and the call's fields)."""

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Finished spans, in the order they ended."""
        return tuple(self._exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name``; fails if there are none or several."""
        found = [span for span in self.spans if span.name == name]
        if len(found) != 1:
            names = [span.name for span in self.spans]
            msg = f"expected one span named {name!r}, found {len(found)} among {names}"
            raise AssertionError(msg)
        return found[0]

    def metric_points(self, name: str) -> list[Any]:
        """The data points recorded so far for metric ``name`` (empty if none)."""
        data = self._reader.get_metrics_data()
        points: list[Any] = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        points.extend(metric.data.data_points)
        return points


@contextmanager
def capture(runtime: Runtime | None = None, **settings: Any) -> Iterator[Captured]:
    """Collect the spans, log events and metrics aisys records inside the block.

    Works on the default runtime unless given another; keyword arguments override
    settings for the block (``capture(capture_content="full")``). Nothing reaches the
    configured exporters meanwhile, and the global OTel providers are not touched.

    Added in 0.1.
    """
    from aisys.settings import Settings
    from aisys.telemetry.memory import InMemory

    if runtime is None:
        import aisys

        runtime = aisys._DEFAULT
    memory = InMemory.open()
    captured = Captured(memory.exporter, memory.reader)
    base = runtime.settings
    telemetry = runtime._build_telemetry(
        tracer_provider=memory.tracer_provider,
        meter_provider=memory.meter_provider,
        log_sink=captured.logs,
        settings=Settings(**{**base.model_dump(exclude_unset=True), **settings})
        if settings
        else base,
    )
    previous = runtime._swap_telemetry(telemetry)
    try:
        yield captured
    finally:
        runtime._swap_telemetry(previous)
        memory.close()


def scripted(
    text: str = "",
    *,
    model: str = "scripted-model",
    provider: str = "scripted",
    prompt: str | Sequence[Mapping[str, Any]] | None = None,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    finish_reason: str = "stop",
    response_id: str | None = None,
) -> ChatResponse:
    """A `ChatResponse` as a provider would send it, with usage counted if not given.

    Added in 0.1.
    """
    from aisys.metering.tokens import count_tokens
    from aisys.types import ChatResponse, Usage

    if input_tokens is None:
        input_tokens = count_tokens(prompt, model) if prompt is not None else 0
    if output_tokens is None:
        output_tokens = count_tokens(text, model)
    return ChatResponse(
        text=text,
        model=model,
        provider=provider,
        id=response_id,
        finish_reason=finish_reason,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


Reply: TypeAlias = "str | ChatResponse | BaseException"


class ScriptedModel:
    """A deterministic, offline model: answers from a script, in turn, and records requests.

    The script is a list of replies (strings, `ChatResponse`s, or exceptions to raise),
    cycled, or a function of the messages returning one.

    Added in 0.1.
    """

    def __init__(
        self,
        replies: Iterable[Reply] | Callable[[list[dict[str, Any]]], Reply],
        *,
        model: str = "scripted-model",
    ) -> None:
        self.model = model
        self._reply: Callable[[list[dict[str, Any]]], Reply]
        if callable(replies):
            self._reply = replies
        else:
            cycle = itertools.cycle(list(replies))
            self._reply = lambda _messages: next(cycle)
        self.requests: list[list[dict[str, Any]]] = []
        """Every message list the model was asked, in order."""

    def chat(self, messages: str | Sequence[Mapping[str, Any]]) -> ChatResponse:
        """Answer ``messages`` (a string or OpenAI-style dicts) from the script."""
        from aisys.types import ChatResponse

        listed = (
            [{"role": "user", "content": messages}]
            if isinstance(messages, str)
            else [dict(m) for m in messages]
        )
        self.requests.append(listed)
        reply = self._reply(listed)
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, ChatResponse):
            return reply
        return scripted(
            reply,
            model=self.model,
            prompt=listed,
            response_id=f"scripted-{len(self.requests)}",
        )


class FakeClock:
    """A clock whose sleeps are instant and recorded: retries and breakers without waiting.

    ``now()`` is the real monotonic time plus every simulated sleep and `advance`, so
    real elapsed time (HTTP timeouts) and simulated waits add up consistently.

    Added in 0.1.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.sleeps: list[float] = []
        """Every wait asked for, in order."""

    def now(self) -> float:
        """Real monotonic seconds plus the simulated time."""
        return time.monotonic() + self.offset

    def time(self) -> float:
        """Real wall-clock seconds plus the simulated time (budget windows roll over)."""
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on, without blocking."""
        self.sleeps.append(seconds)
        self.offset += seconds

    async def asleep(self, seconds: float) -> None:
        """Record the wait and move the clock on; yields to the loop once."""
        import asyncio

        self.sleeps.append(seconds)
        self.offset += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass (e.g. for a circuit breaker to half-open)."""
        self.offset += seconds


@contextmanager
def fake_clock(runtime: Runtime | None = None) -> Iterator[FakeClock]:
    """Use a `FakeClock` for retries, deadlines and breakers inside the block.

    Added in 0.1.
    """
    if runtime is None:
        import aisys

        runtime = aisys._DEFAULT
    clock = FakeClock()
    previous, runtime.clock = runtime.clock, clock
    try:
        yield clock
    finally:
        runtime.clock = previous
