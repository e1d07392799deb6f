"""What aisys adds to a call, measured beside a bare call and a raw OTel span, in one run.

    python benchmarks/overhead.py [--calls 100000] [--rounds 15]

Timing: rounds of interleaved batches, median microseconds per call. Memory: RSS of the
process before and after 100k calls of each scenario, after a 20k warm-up that fills
any queue. Results go to stdout as a Markdown table (copied into docs/performance.md).
Nothing here is asserted: timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import aisys

RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Five days."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 42, "completion_tokens": 3, "total_tokens": 45},
}


class Discard(SpanExporter):
    """An exporter that drops every batch: measures the pipeline, not the sink."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


JSONL_RUNTIME: aisys.Runtime | None = None
RUNTIMES: list[aisys.Runtime] = []


def rss_kib() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def bare(question: str) -> dict[str, Any]:
    return RESPONSE


def build() -> dict[str, Callable[[], Any]]:
    """One zero-argument callable per scenario, each making one call."""
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = provider.get_tracer("bench")
    meter_provider = MeterProvider(
        metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False
    )

    def raw_span() -> Any:
        with tracer.start_as_current_span("chat gpt-4o-mini"):
            return bare("q")

    same = aisys.Runtime(
        aisys.Settings(), tracer_provider=provider, meter_provider=meter_provider
    )
    traced = same.traced_llm(model="gpt-4o-mini")(bare)
    span_only_rt = aisys.Runtime(aisys.Settings(), tracer_provider=provider)
    span_only = span_only_rt.traced_llm(model="gpt-4o-mini")(bare)

    async def abare(question: str) -> dict[str, Any]:
        return RESPONSE

    atraced = same.traced_llm(model="gpt-4o-mini")(abare)
    loop = asyncio.new_event_loop()

    def gen_bare(question: str) -> Any:
        yield "Five "
        yield "days."

    gtraced = same.traced_llm(model="gpt-4o-mini")(gen_bare)

    def run_async() -> Any:
        return loop.run_until_complete(atraced("q"))

    def run_gen() -> Any:
        return list(gtraced("q"))

    logged_rt = aisys.Runtime(
        aisys.Settings(), tracer_provider=provider, meter_provider=meter_provider
    )
    logged = logged_rt.traced_llm(model="gpt-4o-mini")(bare)
    aisys_logger = logging.getLogger("aisys")

    def run_logged() -> Any:
        aisys_logger.disabled = False
        aisys_logger.setLevel(logging.INFO)
        try:
            return logged("q")
        finally:
            aisys_logger.setLevel(logging.WARNING)

    tmp = Path(tempfile.mkdtemp())
    jsonl_rt = aisys.Runtime(
        aisys.Settings(exporters=["jsonl"], jsonl_path=tmp / "bench.jsonl"),
        meter_provider=meter_provider,
    )
    jsonl = jsonl_rt.traced_llm(model="gpt-4o-mini")(bare)
    none_rt = aisys.Runtime(aisys.Settings(exporters=()))
    nothing = none_rt.traced_llm(model="gpt-4o-mini")(bare)

    global JSONL_RUNTIME
    JSONL_RUNTIME = jsonl_rt
    RUNTIMES.extend([same, span_only_rt, logged_rt, jsonl_rt, none_rt])
    return {
        "bare call": lambda: bare("q"),
        "raw OTel span (BatchSpanProcessor, discarding exporter)": raw_span,
        "@traced_llm sync (same exporter; span + metrics)": lambda: traced("q"),
        "@traced_llm sync (same exporter; span, metrics to no-op meter)": lambda: (
            span_only("q")
        ),
        "bare async call (run on an event loop)": lambda: loop.run_until_complete(
            abare("q")
        ),
        "@traced_llm async (same exporter)": run_async,
        "bare generator, 2 chunks": lambda: list(gen_bare("q")),
        "@traced_llm generator, 2 chunks (same exporter)": run_gen,
        "@traced_llm sync + JSON log event rendered": run_logged,
        "@traced_llm sync, exporters=jsonl": lambda: jsonl("q"),
        "@traced_llm sync, exporters=none": lambda: nothing("q"),
    }


def time_rounds(
    scenarios: dict[str, Callable[[], Any]], rounds: int, batch: int
) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in scenarios}
    for _ in range(rounds):
        for name, fn in scenarios.items():
            started = time.perf_counter()
            for _ in range(batch):
                fn()
            for runtime in RUNTIMES:  # the recorder's work counts where it was caused
                runtime.flush(timeout=5.0)
            samples[name].append((time.perf_counter() - started) / batch * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def memory(
    scenarios: dict[str, Callable[[], Any]], calls: int
) -> dict[str, tuple[int, int]]:
    result = {}
    for name, fn in scenarios.items():
        for _ in range(20_000):
            fn()
        before = rss_kib()
        for _ in range(calls):
            fn()
        result[name] = (before, rss_kib())
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=2_000)
    args = parser.parse_args(argv)

    scenarios = build()
    for fn in scenarios.values():  # warm caches, imports, the tokenizer
        for _ in range(200):
            fn()
    medians = time_rounds(scenarios, args.rounds, args.batch)
    rss = memory(scenarios, args.calls)
    raw = medians["raw OTel span (BatchSpanProcessor, discarding exporter)"]
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.rounds} rounds x {args.batch} calls; "
        f"RSS over {args.calls:,} calls after a 20k warm-up\n"
    )
    print(
        "| scenario | median µs/call | x raw OTel span | RSS before → after (MiB) | growth (KiB) |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, median in medians.items():
        before, after = rss[name]
        print(
            f"| {name} | {median:.2f} | {median / raw:.2f} | {before / 1024:.1f} → {after / 1024:.1f} | {after - before:+d} |"
        )
    if JSONL_RUNTIME is not None:
        dropped = JSONL_RUNTIME.telemetry.dropped_spans
        print(f"\nexporters=jsonl: {dropped:,} spans dropped by a full export queue")
    names = [t.name for t in threading.enumerate()]
    print(
        f"threads after the run: {len(names)} "
        f"({', '.join(sorted(set(names)))}; one recorder per aisys runtime in use)"
    )


if __name__ == "__main__":
    main()
