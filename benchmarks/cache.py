"""Cache hits against the raw backend, and against the provider call they replace.

    python benchmarks/cache.py [--n 5000]

- key hashing of a 1 KB and a 32 KB request (canonical JSON + SHA-256);
- a hit through `LLM.chat` (span to an SDK tracer with a discarding exporter) per
  backend, against the raw backend `get` + key hashing + a bare OTel span, and against
  the same plus the hit's own span (name, kind, attributes) written by hand, in one run;
- the loopback provider call a hit replaces (the wire server in its own process).

Nothing is asserted; docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import SpanKind

import aisys
from aisys.llm import LLMRequest
from aisys.types import ChatRequest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cost_budget import per_call_us
from overhead import Discard


def bench_keys(n: int) -> None:
    llm = aisys.LLM("openai:gpt-4o-mini", api_key="k")
    cache = aisys.Cache("memory")
    print("| key hashing | µs per key |")
    print("|---|---:|")
    for size in (1024, 32 * 1024):
        text = "x" * (size - 120)
        request = ChatRequest(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": text}],
            params={"temperature": 0, "max_tokens": 200},
        )
        wrapped = LLMRequest(llm, request)
        us = per_call_us(lambda w=wrapped: cache.key(w.cache_material()), n)
        print(f"| {size // 1024} KB request | {us:.1f} |")
    print()


def serve() -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_serve.py")), "8"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{int(server.stdout.readline())}/v1"


def hit_attributes(llm: aisys.LLM) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attributes of a hit's span, as aisys writes them: (at start, the rest)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    runtime = aisys.Runtime(
        llm.runtime.settings.model_copy(update={"record_in_background": False}),
        tracer_provider=provider,
    )
    probe = aisys.LLM(
        "openai:gpt-4o-mini",
        base_url=llm.target.base_url,
        api_key="k",
        runtime=runtime,
        cache=llm.cache,
    )
    probe.chat("hello")
    (span,) = exporter.get_finished_spans()
    attrs = dict(span.attributes or {})
    start_keys = (
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
    )
    return (
        {k: attrs[k] for k in start_keys},
        {k: v for k, v in attrs.items() if k not in start_keys},
    )


def decorated_hits(runtime: aisys.Runtime, tracer: Any, n: int) -> None:
    """A hit of `@traced_llm(cache=...)` returning a completion dict (memory backend)."""
    from overhead import RESPONSE

    cache = aisys.Cache("memory", namespace="bench-decorated")

    @runtime.traced_llm(cache=cache, model="gpt-4o-mini", provider="openai")
    def answer(question: str, temperature: float = 0.0) -> dict[str, Any]:
        return RESPONSE

    answer("hello")  # the miss that stores the entry
    store = cache.opened.get(runtime.settings.cache_dir)
    material = {
        "fn": f"{answer.__module__}.{answer.__qualname__}",
        "args": {"question": "hello", "temperature": 0.0},
    }
    key = cache.key(material)
    assert store.get_blob(key) is not None  # the key aisys stored the answer under

    def raw() -> None:
        with tracer.start_as_current_span("chat gpt-4o-mini"):
            cache.key(material)
            store.get_blob(key)

    hit = per_call_us(lambda: answer("hello"), n)
    bare = per_call_us(raw, n)
    print(
        f"| `@traced_llm` function, memory | {hit:.1f} | {bare:.1f} | "
        f"{hit / bare:.2f}x | n/a | n/a | n/a |"
    )


def bench_hits(n: int, tmp: Path) -> None:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    tracer = provider.get_tracer("bench")
    runtime = aisys.Runtime(aisys.Settings(cache_dir=tmp), tracer_provider=provider)
    server, url = serve()
    redis_server = None
    backends: list[tuple[str, str | None]] = [("memory", "memory"), ("diskcache", None)]
    if shutil.which("redis-server"):
        redis_server = subprocess.Popen(
            ["redis-server", "--port", "6392", "--save", "", "--dir", str(tmp)],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(0.3)
        backends.append(("redis (loopback)", "redis://127.0.0.1:6392/0"))
    try:
        aisys.register_price("openai:gpt-4o-mini", input="0.15", output="0.60")
        plain = aisys.LLM(
            "openai:gpt-4o-mini", base_url=url, api_key="k", runtime=runtime
        )
        plain.chat("warm up")
        provider_us = per_call_us(
            lambda: plain.chat("hello", cache=False), max(50, n // 50), 3
        )
        print(
            "| cache hit | hit µs | raw get + hash + bare span µs | ratio "
            "| raw get + hash + the same span by hand µs | ratio "
            "| x faster than the provider call |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name, spec in backends:
            cache = aisys.Cache(spec, namespace=f"bench-{name}")
            llm = aisys.LLM(
                "openai:gpt-4o-mini",
                base_url=url,
                api_key="k",
                runtime=runtime,
                cache=cache,
            )
            llm.chat("hello")  # the miss that stores the entry
            request = LLMRequest(llm, llm._request("hello", {}, stream=False))
            key = cache.key(request.cache_material())
            store = cache.opened.get(runtime.settings.cache_dir)

            def raw(
                store: Any = store,
                request: Any = request,
                cache: Any = cache,
                key: str = key,
            ) -> None:
                with tracer.start_as_current_span("chat gpt-4o-mini"):
                    cache.key(request.cache_material())
                    store.get_blob(key)

            start, end = hit_attributes(llm)

            def twin(
                store: Any = store,
                request: Any = request,
                cache: Any = cache,
                key: str = key,
                start: dict[str, Any] = start,
                end: dict[str, Any] = end,
            ) -> None:
                """The same span (name, kind, attributes) written by hand."""
                span = tracer.start_span(
                    "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=start
                )
                with trace.use_span(span, end_on_exit=False):
                    cache.key(request.cache_material())
                    store.get_blob(key)
                span.set_attributes(end)
                span.end()

            hit = per_call_us(lambda llm=llm: llm.chat("hello"), n)
            bare = per_call_us(raw, n)
            same = per_call_us(twin, n)
            print(
                f"| {name} | {hit:.1f} | {bare:.1f} | {hit / bare:.2f}x | "
                f"{same:.1f} | {hit / same:.2f}x | {provider_us / hit:.0f}x |"
            )
            llm.close()
        decorated_hits(runtime, tracer, n)
        print(f"\nthe loopback provider call a hit replaces: {provider_us:.0f} µs")
        plain.close()
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)
        if redis_server is not None:
            redis_server.terminate()
            redis_server.wait()
        provider.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    bench_keys(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        bench_hits(args.n, Path(tmp))


if __name__ == "__main__":
    main()
