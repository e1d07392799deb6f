"""aisys against the same telemetry written by hand, in three host set-ups, in one run.

    python benchmarks/hot_path.py [--n 2000] [--rounds 9]

For each host set-up — (A) an SDK tracer, no MeterProvider, logging not configured;
(B) an SDK tracer and an SDK MeterProvider; (C) B plus the host's structlog writing
JSON — it times `@traced_llm` (sync, async, generator), `aisys.LLM.chat` on the
scripted transport, a tool span (`@aisys.traced(operation="execute_tool")`) and a
retrieval span of 10 scored documents (`@aisys.traced_retrieval`) beside a *twin*:
the same call with the same span (name, kind, attributes), the same metric points and
the same log event, written by hand with the same libraries (OTel SDK, structlog,
tiktoken, httpx2). The twins are checked against aisys's own output before timing
(same span attribute keys and log fields; the metric points were compared by hand),
so a ratio compares like with like.

Timing: rounds of interleaved batches (aisys, twin, aisys, …), median µs per call.
"Caller" is the wall time of the calls; "CPU" is the process CPU time per call,
including whatever a background thread did for those calls (`aisys.flush()` is part
of the measured batch). Nothing is asserted; docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import structlog
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

import aisys
from aisys.metering.tokens import count_tokens
from aisys.testing import ScriptedTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
from overhead import RESPONSE, Discard

MODEL = "gpt-4o-mini"
PRICE_IN, PRICE_OUT = 0.15, 0.60  # USD per million tokens (registered for both sides)
DURATION_BUCKETS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12]
TOKEN_BUCKETS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576]
START = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": MODEL,
}


def bare(question: str) -> dict[str, Any]:
    return RESPONSE


async def abare(question: str) -> dict[str, Any]:
    return RESPONSE


def gen_bare(question: str) -> Iterator[str]:
    yield "Five "
    yield "days."


def lookup(city: str) -> str:
    """A tool (`@aisys.traced(operation="execute_tool")`)."""
    return "sunny"


DOCUMENTS = [
    {"id": f"d{i}", "text": "a passage " * 20, "score": 0.9 - i / 100}
    for i in range(10)
]


def search(query: str) -> list[dict[str, Any]]:
    """A retriever returning 10 scored documents (`@aisys.traced_retrieval`)."""
    return DOCUMENTS


TOOL_START = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup"}
SEARCH_START = {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb"}


# -- the twins: the same telemetry, by hand ------------------------------------------


class Twin:
    """What a careful engineer would write instead of aisys, for the same output."""

    def __init__(self, tracer: trace.Tracer, meter: metrics.Meter, log: Any) -> None:
        self.tracer = tracer
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.cost = meter.create_counter("aisys.cost.usd", unit="USD")
        self.log = log  # None when logging is not configured: no event is built

    def _end(
        self,
        span: Any,
        start: dict[str, Any],
        attrs: dict[str, Any],
        started: float,
        usage: tuple[int, int],
        usd: float,
    ) -> None:
        duration = time.perf_counter() - started
        span.set_attributes(attrs)
        span.end()
        points = {**start}
        if "gen_ai.response.model" in attrs:
            points["gen_ai.response.model"] = attrs["gen_ai.response.model"]
        self.cost.add(usd, points)
        self.duration.record(duration, points)
        self.tokens.record(usage[0], {**points, "gen_ai.token.type": "input"})
        self.tokens.record(usage[1], {**points, "gen_ai.token.type": "output"})
        self._log_event(span, f"chat {MODEL}", start, attrs, duration)

    def _log_event(
        self,
        span: Any,
        name: str,
        start: dict[str, Any],
        attrs: dict[str, Any],
        duration: float,
    ) -> None:
        if self.log is not None:
            context = span.get_span_context()
            fields = {
                "span_name": name,
                "trace_id": trace.format_trace_id(context.trace_id),
                "span_id": trace.format_span_id(context.span_id),
                "duration_s": round(duration, 6),
                "status": "ok",
                **start,
                **attrs,
            }
            self.log.info("gen_ai.call", **fields)

    def _end_plain(
        self,
        span: Any,
        name: str,
        start: dict[str, Any],
        attrs: dict[str, Any],
        started: float,
    ) -> None:
        """A span without usage or cost: one duration point and the log event."""
        duration = time.perf_counter() - started
        if attrs:
            span.set_attributes(attrs)
        span.end()
        self.duration.record(
            duration, {"gen_ai.operation.name": start["gen_ai.operation.name"]}
        )
        self._log_event(span, name, start, attrs, duration)

    def _read(
        self, result: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[int, int], float]:
        usage = result["usage"]
        tokens = (usage["prompt_tokens"], usage["completion_tokens"])
        usd = (tokens[0] * PRICE_IN + tokens[1] * PRICE_OUT) / 1e6
        attrs = {
            "gen_ai.response.model": result["model"],
            "gen_ai.response.id": result["id"],
            "gen_ai.response.finish_reasons": tuple(
                c["finish_reason"] for c in result["choices"]
            ),
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            "aisys.cost.status": "priced",
            "aisys.cost.usd": usd,
            "aisys.price_table": "override",
        }
        return attrs, tokens, usd

    def sync(self, question: str) -> dict[str, Any]:
        started = time.perf_counter()
        span = self.tracer.start_span(
            f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=START
        )
        with trace.use_span(span, end_on_exit=False):
            result = bare(question)
        attrs, usage, usd = self._read(result)
        self._end(span, START, attrs, started, usage, usd)
        return result

    async def asynchronous(self, question: str) -> dict[str, Any]:
        started = time.perf_counter()
        span = self.tracer.start_span(
            f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=START
        )
        with trace.use_span(span, end_on_exit=False):
            result = await abare(question)
        attrs, usage, usd = self._read(result)
        self._end(span, START, attrs, started, usage, usd)
        return result

    def generator(self, question: str) -> Iterator[str]:
        start = {"gen_ai.operation.name": "chat", "gen_ai.request.model": MODEL}
        started = time.perf_counter()
        span = self.tracer.start_span(
            f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=start
        )
        parts = []
        inner = gen_bare(question)
        while True:
            with trace.use_span(span, end_on_exit=False):
                piece = next(inner, None)
            if piece is None:
                break
            parts.append(piece)
            yield piece
        tokens = (count_tokens(question, MODEL), count_tokens("".join(parts), MODEL))
        usd = (tokens[0] * PRICE_IN + tokens[1] * PRICE_OUT) / 1e6
        attrs = {
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            "aisys.usage.estimated": True,
            "aisys.stream.chunks": len(parts),
            "aisys.cost.status": "estimated",
            "aisys.cost.usd": usd,
            "aisys.price_table": "override",
        }
        self._end(span, start, attrs, started, tokens, usd)

    def tool(self, city: str) -> str:
        """A tool span."""
        started = time.perf_counter()
        span = self.tracer.start_span(
            "execute_tool lookup", kind=SpanKind.INTERNAL, attributes=TOOL_START
        )
        with trace.use_span(span, end_on_exit=False):
            result = lookup(city)
        attrs: dict[str, Any] = {}  # nothing learnt beyond what the span started with
        self._end_plain(span, "execute_tool lookup", TOOL_START, attrs, started)
        return result

    def retrieval(self, query: str) -> list[dict[str, Any]]:
        """A retrieval span with the documents' count and scores."""
        started = time.perf_counter()
        span = self.tracer.start_span(
            "retrieval kb", kind=SpanKind.CLIENT, attributes=SEARCH_START
        )
        with trace.use_span(span, end_on_exit=False):
            result = search(query)
        attrs = {
            "aisys.retrieval.documents.count": len(result),
            "aisys.retrieval.scores": [float(doc["score"]) for doc in result],
        }
        self._end_plain(span, "retrieval kb", SEARCH_START, attrs, started)
        return result

    def http(self, client: httpx2.Client, question: str) -> dict[str, Any]:
        """The chat call by hand over httpx2, then its telemetry."""
        started = time.perf_counter()
        span = self.tracer.start_span(
            f"chat {MODEL}", kind=SpanKind.CLIENT, attributes=START
        )
        with trace.use_span(span, end_on_exit=False):
            response = client.post(
                "https://api.openai.com/v1/chat/completions",
                json={
                    "model": MODEL,
                    "messages": [{"role": "user", "content": question}],
                },
            )
            response.raise_for_status()
            result = response.json()
        attrs, usage, usd = self._read(result)
        attrs.update(
            {
                "server.address": "api.openai.com",
                "server.port": 443,
                "aisys.retry.attempts": 1,
                "aisys.fallback.index": 0,
                "aisys.target": f"openai:{MODEL}",
            }
        )
        self._end(span, START, attrs, started, usage, usd)
        return result


# -- the set-ups ----------------------------------------------------------------------


def setup(name: str, meter: bool, logs: bool) -> dict[str, Callable[[int], Any]]:
    """aisys and twin scenarios for one host set-up: name -> run n calls."""
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(
        BatchSpanProcessor(Discard(), max_queue_size=65536, max_export_batch_size=4096)
    )
    meter_provider = (
        MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
        if meter
        else None
    )
    twin = Twin(
        provider.get_tracer("twin"),
        meter_provider.get_meter("twin")
        if meter_provider
        else metrics.get_meter("twin"),
        structlog.get_logger("twin") if logs else None,
    )
    transport = ScriptedTransport(lambda body: "Five days.")
    client = httpx2.Client(transport=transport, headers={"authorization": "Bearer k"})
    loop = asyncio.new_event_loop()

    def batch(fn: Callable[[], Any]) -> Callable[[int], Any]:
        def run(n: int) -> None:
            if n < 0:  # one call at a time, the application idle in between
                for _ in range(-n):
                    started = time.perf_counter()
                    fn()
                    LATENCIES.append(time.perf_counter() - started)
                    time.sleep(GAP_S)
            else:
                for _ in range(n):
                    fn()
            transport.requests.clear()

        return run

    def abatch(fn: Callable[[str], Any]) -> Callable[[int], Any]:
        async def many(n: int) -> None:
            if n < 0:
                for _ in range(-n):
                    started = time.perf_counter()
                    await fn("q")
                    LATENCIES.append(time.perf_counter() - started)
                    await asyncio.sleep(GAP_S)
                return
            for _ in range(n):
                await fn("q")

        return lambda n: loop.run_until_complete(many(n))

    scenarios: dict[str, Callable[[int], Any]] = {}
    for side, background in (("aisys", True), ("aisys in place", False)):
        runtime = aisys.Runtime(
            aisys.Settings(record_in_background=background),
            tracer_provider=provider,
            meter_provider=meter_provider,
        )
        traced = runtime.traced_llm(model=MODEL, provider="openai")(bare)
        atraced = runtime.traced_llm(model=MODEL, provider="openai")(abare)
        gtraced = runtime.traced_llm(model=MODEL)(gen_bare)
        ttraced = runtime.traced(operation="execute_tool")(lookup)
        rtraced = runtime.traced_retrieval(data_source="kb")(search)
        llm = aisys.LLM(
            f"openai:{MODEL}", api_key="k", transport=transport, runtime=runtime
        )
        RUNTIMES.append(runtime)
        scenarios |= {
            f"{name} | sync | {side}": batch(lambda t=traced: t("q")),
            f"{name} | async | {side}": abatch(atraced),
            f"{name} | generator, 2 chunks | {side}": batch(
                lambda g=gtraced: list(g("q"))
            ),
            f"{name} | aisys.LLM.chat, scripted transport | {side}": batch(
                lambda c=llm.chat: c("q")
            ),
            f"{name} | tool | {side}": batch(lambda t=ttraced: t("Oslo")),
            f"{name} | retrieval, 10 documents | {side}": batch(
                lambda r=rtraced: r("q")
            ),
        }
    return scenarios | {
        f"{name} | sync | twin": batch(lambda: twin.sync("q")),
        f"{name} | async | twin": abatch(twin.asynchronous),
        f"{name} | generator, 2 chunks | twin": batch(
            lambda: list(twin.generator("q"))
        ),
        f"{name} | aisys.LLM.chat, scripted transport | twin": batch(
            lambda: twin.http(client, "q")
        ),
        f"{name} | tool | twin": batch(lambda: twin.tool("Oslo")),
        f"{name} | retrieval, 10 documents | twin": batch(lambda: twin.retrieval("q")),
    }


RUNTIMES: list[aisys.Runtime] = []
LATENCIES: list[float] = []
GAP_S = 0.0002
"""The application's own wait between calls in the latency rounds (its I/O)."""


def latency(
    scenarios: dict[str, Callable[[int], Any]], rounds: int, n: int
) -> dict[str, float]:
    """Median µs inside one call when the application idles between calls."""
    found: dict[str, list[float]] = {k: [] for k in scenarios}
    for _ in range(rounds):
        for key, run in scenarios.items():
            LATENCIES.clear()
            run(-n)
            found[key].extend(LATENCIES)
            for runtime in RUNTIMES:
                runtime.flush(timeout=5.0)
    return {k: statistics.median(v) * 1e6 for k, v in found.items()}


def check_twins() -> None:
    """The twins write what aisys writes: same span attributes, metrics, log fields."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    sink: list[dict[str, Any]] = []
    runtime = aisys.Runtime(
        aisys.Settings(record_in_background=False),
        tracer_provider=provider,
        meter_provider=meter_provider,
    )
    runtime.telemetry.events.sink = sink

    class Log:
        def info(self, event: str, **fields: Any) -> None:
            sink.append({"event": event, "log_level": "info", **fields})

    twin = Twin(provider.get_tracer("twin"), meter_provider.get_meter("twin"), Log())
    transport = ScriptedTransport(lambda body: "Five days.")
    llm = aisys.LLM(
        f"openai:{MODEL}", api_key="k", transport=transport, runtime=runtime
    )
    client = httpx2.Client(transport=transport)
    pairs: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
        (
            "sync",
            lambda: runtime.traced_llm(model=MODEL, provider="openai")(bare)("q"),
            lambda: twin.sync("q"),
        ),
        (
            "generator",
            lambda: list(runtime.traced_llm(model=MODEL)(gen_bare)("q")),
            lambda: list(twin.generator("q")),
        ),
        ("LLM.chat", lambda: llm.chat("q"), lambda: twin.http(client, "q")),
        (
            "tool",
            lambda: runtime.traced(operation="execute_tool")(lookup)("Oslo"),
            lambda: twin.tool("Oslo"),
        ),
        (
            "retrieval",
            lambda: runtime.traced_retrieval(data_source="kb")(search)("q"),
            lambda: twin.retrieval("q"),
        ),
    ]
    for label, ours, theirs in pairs:
        shapes = []
        for side in (ours, theirs):
            exporter.clear()
            sink.clear()
            side()
            (span,) = exporter.get_finished_spans()
            (event,) = sink
            shapes.append(
                (span.name, span.kind, sorted(span.attributes), sorted(event))
            )
        if shapes[0] != shapes[1]:
            msg = f"the {label} twin differs from aisys:\n{shapes[0]}\n{shapes[1]}"
            raise SystemExit(msg)


def time_pairs(
    scenarios: dict[str, Callable[[int], Any]], rounds: int, n: int
) -> dict[str, tuple[float, float]]:
    """Median caller µs and CPU µs per call, interleaving all scenarios each round."""
    wall: dict[str, list[float]] = {k: [] for k in scenarios}
    cpu: dict[str, list[float]] = {k: [] for k in scenarios}
    for _ in range(rounds):
        for key, run in scenarios.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            run(n)
            for (
                runtime
            ) in RUNTIMES:  # what the recorder still holds is part of the cost
                runtime.flush(timeout=5.0)
            wall[key].append((time.perf_counter() - started) / n * 1e6)
            cpu[key].append((time.process_time() - cpu_started) / n * 1e6)
    return {
        k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in scenarios
    }


def per_chunk(rounds: int, n: int) -> tuple[float, float, float, float]:
    """µs per call and per chunk (2 and 1,002 chunks): a bare wrapper and aisys."""

    def many(question: str, count: int = 1000) -> Iterator[str]:
        yield from gen_bare(question)
        for _ in range(count):
            yield "x"

    def wrapper(inner: Callable[..., Iterator[str]]) -> Callable[..., Iterator[str]]:
        def wrapped(question: str, **kwargs: Any) -> Iterator[str]:
            yield from inner(question, **kwargs)

        return wrapped

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=65536))
    runtime = aisys.Runtime(aisys.Settings(), tracer_provider=provider)
    ours = runtime.traced_llm(model=MODEL)(many)
    bare_wrapped = wrapper(many)
    found: dict[str, list[float]] = {}
    for _ in range(rounds):
        for label, fn in (("bare", bare_wrapped), ("aisys", ours)):
            for count in (0, 1000):
                started = time.perf_counter()
                for _ in range(n):
                    for _ in fn("q", count=count):
                        pass
                found.setdefault(f"{label}{count}", []).append(
                    (time.perf_counter() - started) / n * 1e6
                )
            runtime.flush(5.0)
    m = {k: statistics.median(v) for k, v in found.items()}
    return (
        m["bare0"],
        (m["bare1000"] - m["bare0"]) / 1000,
        m["aisys0"],
        (m["aisys1000"] - m["aisys0"]) / 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    aisys.register_price(f"openai:{MODEL}", input=PRICE_IN, output=PRICE_OUT)
    aisys.register_price(MODEL, input=PRICE_IN, output=PRICE_OUT)
    logging.getLogger("aisys").setLevel(logging.WARNING)
    check_twins()
    results: dict[str, tuple[float, float]] = {}
    latencies: dict[str, float] = {}
    for name, meter, logs in (
        ("A: tracer", False, False),
        ("B: tracer + meter", True, False),
        ("C: tracer + meter + structlog JSON", True, True),
    ):
        if logs:
            structlog.configure(
                processors=[
                    structlog.contextvars.merge_contextvars,
                    structlog.processors.add_log_level,
                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.JSONRenderer(),
                ],
                logger_factory=structlog.WriteLoggerFactory(
                    file=open(os.devnull, "w")  # noqa: SIM115 - lives for the run
                ),
                cache_logger_on_first_use=True,
            )
        scenarios = setup(name, meter, logs)
        for run in scenarios.values():  # warm caches, imports, the tokenizer
            run(200)
        results.update(time_pairs(scenarios, args.rounds, args.n))
        latencies.update(latency(scenarios, args.rounds, max(50, args.n // 10)))
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores; median of "
        f"{args.rounds} interleaved rounds of {args.n} calls\n"
    )
    print(
        "| set-up | call | twin µs | aisys µs | ratio | aisys in place µs | ratio "
        "| CPU µs: twin / aisys / in place |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for key, (wall, cpu) in results.items():
        setup_name, call, side = key.split(" | ")
        if side != "aisys":
            continue
        twin_wall, twin_cpu = results[f"{setup_name} | {call} | twin"]
        inplace_wall, inplace_cpu = results[f"{setup_name} | {call} | aisys in place"]
        print(
            f"| {setup_name} | {call} | {twin_wall:.1f} | {wall:.1f} | "
            f"{wall / twin_wall:.2f} | {inplace_wall:.1f} | {inplace_wall / twin_wall:.2f} "
            f"| {twin_cpu:.1f} / {cpu:.1f} / {inplace_cpu:.1f} |"
        )
    print(
        f"\nCaller latency: median µs inside one call, the application idle "
        f"{GAP_S * 1e6:.0f} µs between calls (its own I/O)\n"
    )
    print("| set-up | call | twin µs | aisys µs | ratio | aisys in place µs | ratio |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for key, ours in latencies.items():
        setup_name, call, side = key.split(" | ")
        if side != "aisys":
            continue
        twin = latencies[f"{setup_name} | {call} | twin"]
        inplace = latencies[f"{setup_name} | {call} | aisys in place"]
        print(
            f"| {setup_name} | {call} | {twin:.1f} | {ours:.1f} | {ours / twin:.2f} "
            f"| {inplace:.1f} | {inplace / twin:.2f} |"
        )
    bare_call, bare_chunk, ours_call, ours_chunk = per_chunk(args.rounds, args.n // 20)
    print(
        f"\nGenerators (set-up A): a bare wrapping generator costs {bare_call:.1f} µs a "
        f"call and {bare_chunk:.2f} µs a chunk; @traced_llm {ours_call:.1f} µs a call "
        f"and {ours_chunk:.2f} µs a chunk (+{ours_chunk - bare_chunk:.2f})"
    )
    names = sorted({t.name for t in threading.enumerate()})
    print(f"\nthreads at the end: {', '.join(names)}")


if __name__ == "__main__":
    main()
