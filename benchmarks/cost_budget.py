"""What pricing and budgets add to a call, against the raw operations, in one run.

    python benchmarks/cost_budget.py [--n 20000] [--redis redis://127.0.0.1:6379/0]

- pricing: aisys's `meter` on a call (price resolved once, then Decimal products),
  against genai-prices' own `calc_price` per call;
- a budget check: the budget step's whole work for one call (count the prompt's tokens,
  estimate, reserve, settle), against the store's raw reserve + add, per store:
  memory, diskcache, and Redis when `--redis` (or a local redis-server) is given.

Nothing is asserted (timings are noisy on 2 cores); docs/performance.md reports them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aisys
from aisys.call import Call
from aisys.metering.cost import meter
from aisys.pipeline._flow import drive
from aisys.pipeline.budget import budget_step
from aisys.pipeline.chain import finish
from aisys.stores import open_store
from aisys.types import Cost

MESSAGES = [
    {"role": "system", "content": "Answer from the notes. " * 8},
    {"role": "user", "content": "How long do refunds take to reach my card?"},
]


def per_call_us(fn: Callable[[], Any], n: int, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of ``n`` calls, in microseconds per call."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(runs)


def priced_call() -> Call:
    call = Call("llm", "chat", provider="openai", request_model="gpt-4o-mini")
    call.response_model = "gpt-4o-mini-2024-07-18"
    call.usage = {
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_input_tokens": 400,
    }
    return call


def bench_pricing(n: int) -> None:
    from genai_prices import Usage, calc_price

    meter(priced_call())  # resolve the price once
    usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=400)
    ours = per_call_us(lambda: meter(priced_call()), n)
    bare = per_call_us(priced_call, n)
    theirs = per_call_us(
        lambda: calc_price(usage, "gpt-4o-mini-2024-07-18", provider_id="openai"), n
    )
    print("| pricing | µs per call |")
    print("|---|---:|")
    print(f"| aisys `meter` (incl. building the Call, {bare:.2f} µs) | {ours:.2f} |")
    print(f"| aisys pricing alone | {ours - bare:.2f} |")
    print(f"| genai-prices `calc_price` | {theirs:.2f} |")
    print()


class _Request:
    def priced_as(self) -> tuple[str, str, None]:
        return "openai", "gpt-4o-mini", None

    def retarget(self, model: Any) -> _Request:
        return self


def _proceed(request: Any) -> Any:
    return None
    yield  # a generator: the rest of the chain, answering at once


def bench_budget(name: str, store_spec: str | None, n: int, runtime: Any) -> None:
    budget = aisys.Budget(10**9, per="day", store=store_spec, name=f"bench-{name}")
    step = budget_step((budget,), lambda: runtime)
    request = _Request()
    cost = Cost(usd=0, status="priced")  # what the call cost, as metering sets it

    def one_call() -> None:
        call = Call("llm", "chat", provider="openai", request_model="gpt-4o-mini")
        call.input_value = MESSAGES
        call.request_params = {"max_tokens": 200}
        drive(step(call, request, _proceed))
        call.cost = cost
        drive(finish(call))

    store = open_store(store_spec, runtime.settings.cache_dir, purpose="budgets")

    def raw() -> None:
        store.reserve("raw", 1000, 10**18, 86400)
        store.add("raw", -10, 86400)

    one_call()
    full = per_call_us(one_call, n)
    bare = per_call_us(raw, n)
    print(f"| {name} | {full:.1f} | {bare:.1f} | {full - bare:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    bench_pricing(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        aisys.configure(cache_dir=Path(tmp))
        runtime = aisys._DEFAULT
        print(
            "| budget check, one call | whole step µs | raw reserve + add µs | aisys's own µs |"
        )
        print("|---|---:|---:|---:|")
        bench_budget("memory", "memory", args.n, runtime)
        bench_budget("diskcache", None, max(1, args.n // 10), runtime)
        url, server = args.redis, None
        if url is None and shutil.which("redis-server"):
            server = subprocess.Popen(
                ["redis-server", "--port", "6391", "--save", "", "--dir", tmp],
                stdout=subprocess.DEVNULL,
            )
            url = "redis://127.0.0.1:6391/0"
            time.sleep(0.3)
        if url is not None:
            bench_budget("redis (loopback)", url, max(1, args.n // 10), runtime)
        if server is not None:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    main()
