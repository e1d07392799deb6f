"""aisys.LLM against the official openai client, same loopback server, same run.

    python benchmarks/llm_client.py [--calls 300] [--rounds 7] [--words 200]

Each client makes chat calls (and streams of --words chunks) to a wire server running
in another process. Reported: median ms per chat call, ratio to the official client,
and streaming throughput in chunks per second. aisys records a full span + metrics to a
discarding exporter (its real cost), and again with telemetry off. Not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

import aisys

MESSAGES = [{"role": "user", "content": "How long do refunds take?"}]


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def serve(words: int) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_serve.py")), str(words)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    port = int(server.stdout.readline())
    return server, f"http://127.0.0.1:{port}/v1"


def median_ms(fn: Callable[[], Any], calls: int, rounds: int) -> list[float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - started) / calls * 1000)
    return samples


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--words", type=int, default=200)
    args = parser.parse_args(argv)

    chat_server, chat_url = serve(8)
    stream_server, stream_url = serve(args.words)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    meters = MeterProvider(
        metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False
    )
    traced = aisys.Runtime(
        aisys.Settings(), tracer_provider=provider, meter_provider=meters
    )
    quiet = aisys.Runtime(aisys.Settings())

    official = openai.OpenAI(api_key="k", base_url=chat_url, max_retries=0)
    official_stream = openai.OpenAI(api_key="k", base_url=stream_url, max_retries=0)
    llm = aisys.LLM(
        "openai:gpt-4o-mini", base_url=chat_url, api_key="k", runtime=traced
    )
    llm_quiet = aisys.LLM(
        "openai:gpt-4o-mini", base_url=chat_url, api_key="k", runtime=quiet
    )
    llm_stream = aisys.LLM(
        "openai:gpt-4o-mini", base_url=stream_url, api_key="k", runtime=traced
    )

    def official_stream_all() -> int:
        stream = official_stream.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        return sum(
            1 for chunk in stream if chunk.choices and chunk.choices[0].delta.content
        )

    def aisys_stream_all() -> int:
        return sum(1 for chunk in llm_stream.stream(MESSAGES) if chunk.text)

    chat: dict[str, Callable[[], Any]] = {
        "official openai client": lambda: official.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        ),
        "aisys.LLM.chat (span + metrics)": lambda: llm.chat(MESSAGES),
        "aisys.LLM.chat (telemetry off)": lambda: llm_quiet.chat(MESSAGES),
    }
    streams: dict[str, Callable[[], int]] = {
        "official openai client": official_stream_all,
        "aisys.LLM.stream (span + metrics)": aisys_stream_all,
    }
    for fn in [*chat.values(), *streams.values()]:
        for _ in range(20):
            fn()

    chat_samples: dict[str, list[float]] = {name: [] for name in chat}
    stream_samples: dict[str, list[float]] = {name: [] for name in streams}
    for _ in range(args.rounds):
        for name, fn in chat.items():
            chat_samples[name] += median_ms(fn, args.calls, 1)
        for name, sfn in streams.items():
            started = time.perf_counter()
            chunks = sum(sfn() for _ in range(10))
            stream_samples[name].append(chunks / (time.perf_counter() - started))

    base = statistics.median(chat_samples["official openai client"])
    print(
        f"{args.rounds} rounds x {args.calls} chat calls; streams of {args.words} chunks, 10 per round\n"
    )
    print("| chat call | median ms/call | x official client |")
    print("|---|---:|---:|")
    for name, values in chat_samples.items():
        value = statistics.median(values)
        print(f"| {name} | {value:.3f} | {value / base:.2f} |")
    print("\n| stream | median chunks/s |")
    print("|---|---:|")
    for name, values in stream_samples.items():
        print(f"| {name} | {statistics.median(values):,.0f} |")

    for client in (official, official_stream):
        client.close()
    for model in (llm, llm_quiet, llm_stream):
        model.close()
    for server in (chat_server, stream_server):
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
