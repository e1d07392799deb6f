"""What a call pays while the OTLP collector is down, and how fast the spool replays.

    python benchmarks/spool.py [--n 20000] [--replay-spans 50000]

In one run, per call (µs, median of 5 rounds of n calls):
- a bare function call;
- the same function under a raw OTel span (SDK batch processor, OTLP exporter, the
  collector up);
- `@aisys.traced_llm` with `exporters=otlp`, the collector up;
- the same with the collector down (every batch goes to the spool);
and the spans the batch queue dropped in each (a caller outpacing the exporter).

Then replay: the spool filled while the collector was down, drained by
`aisys spool replay`'s code path with the collector (oteltap, its own process) up:
spans per second. Nothing is asserted; docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cost_budget import per_call_us

import aisys
from aisys.telemetry.otlp import replay
from aisys.telemetry.spool import Spool
from tests.collector import Collector


def answer(question: str) -> str:
    return "Five days."


traced = aisys.traced_llm(model="gpt-4o-mini")(answer)


def raw_span_us(endpoint: str, n: int) -> float:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
    )
    tracer = provider.get_tracer("bench")

    def call() -> None:
        with tracer.start_as_current_span("chat gpt-4o-mini"):
            answer("q")

    us = per_call_us(call, n)
    provider.shutdown()
    return us


def aisys_us(n: int, spool: Path) -> tuple[float, int, float]:
    """Per-call µs, spans dropped by the queue, and the flush's seconds."""
    aisys.configure(exporters="otlp", spool_dir=spool)
    traced("warm up")
    us = per_call_us(lambda: traced("q"), n)
    started = time.perf_counter()
    aisys.flush(30.0)
    flushed = time.perf_counter() - started
    dropped = aisys._DEFAULT.telemetry.dropped_spans
    aisys.shutdown(30.0)
    return us, dropped, flushed


def batch_of_spans(n: int) -> list[object]:
    """``n`` finished aisys spans (``chat gpt-4o-mini`` and their trace roots)."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    runtime = aisys.Runtime(aisys.Settings(), tracer_provider=provider)
    traced_here = runtime.traced_llm(model="gpt-4o-mini")(answer)
    while len(memory.get_finished_spans()) < n:
        with runtime.trace("ticket"):
            traced_here("q")
    runtime.shutdown()
    return list(memory.get_finished_spans()[:n])


def exporter_capacity(spool: Path, rounds: int = 20) -> float:
    """Spans per second the OTLP exporter takes (encode + send or spool), 512 a batch."""
    from aisys.telemetry.otlp import span_exporter

    exporter = span_exporter(aisys.Settings(spool_dir=spool))
    spans = batch_of_spans(512)
    exporter.export(spans)  # warm up (and, when down, find out)
    started = time.perf_counter()
    for _ in range(rounds):
        exporter.export(spans)
    seconds = time.perf_counter() - started
    exporter.shutdown()
    return rounds * len(spans) / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--replay-spans", type=int, default=50000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aisys-spool-bench-"))
    try:
        with Collector(work) as collector:
            os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.endpoint
            down_capacity = exporter_capacity(work / "capacity-down")
            collector.start()
            up_capacity = exporter_capacity(work / "capacity-up")
            bare = per_call_us(lambda: answer("q"), args.n)
            raw = raw_span_us(collector.endpoint, args.n)
            up, up_dropped, up_flush = aisys_us(args.n, work / "spool-up")
            collector.stop()
            down, down_dropped, down_flush = aisys_us(args.n, work / "spool-down")
            status = Spool(work / "spool-down", 10**12).status()
            print(f"| per call, {args.n} calls x 5 | µs | x bare | spans dropped |")
            print("|---|---:|---:|---:|")
            print(f"| bare function | {bare:.2f} | 1.0 | - |")
            print(f"| raw OTel span, OTLP, collector up | {raw:.2f} | {raw / bare:.1f} | - |")
            print(
                f"| aisys traced_llm, collector up | {up:.2f} | {up / bare:.1f} "
                f"| {up_dropped} |"
            )
            print(
                f"| aisys traced_llm, collector down (spooling) | {down:.2f} "
                f"| {down / bare:.1f} | {down_dropped} |"
            )
            print()
            print(
                f"the exporter thread takes {up_capacity:,.0f} spans/s to a collector "
                f"that is up, {down_capacity:,.0f} spans/s into the spool when it is down"
            )
            print(
                f"flush with the collector up: {up_flush * 1000:.0f} ms; down: "
                f"{down_flush * 1000:.0f} ms (then spooled: {status.batches} batches, "
                f"{status.kinds.get('traces', 0)} spans, {status.bytes / 1e6:.1f} MB)"
            )

            # replay throughput: fill a spool while down, drain it with the collector up
            spool = work / "spool-replay"
            aisys.configure(exporters="otlp", spool_dir=spool)
            for _ in range(args.replay_spans):
                traced("q")
            aisys.shutdown(60.0)
            waiting = Spool(spool, 10**12).status()
            collector.start()
            settings = aisys.Settings(spool_dir=spool)
            started = time.perf_counter()
            done, _ = replay(settings, timeout=600.0)
            seconds = time.perf_counter() - started
            spans = waiting.kinds.get("traces", 0)
            print(
                f"replay: {waiting.batches} batches, {spans} spans in {seconds:.2f} s "
                f"= {spans / seconds:,.0f} spans/s (drained: {done})"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
