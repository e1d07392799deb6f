"""Chaos run: 1,000 calls, 50 at a time, against a primary that fails 30% of the time.

    python benchmarks/chaos.py [--calls 1000] [--concurrency 50] [--fault-rate 0.3]

The primary answers 429 (Retry-After: 1), 503, resets the connection, stalls past the
timeout, or sends a 200 whose body cannot be read (HTML, cut JSON, no choices), evenly,
for --fault-rate of its requests (seeded); a healthy fallback stands behind it. Reported (docs/reliability.md): success rate, p50/p95 latency, requests per
successful call, calls over the deadline (target 0), logical spans and log events lost
(target 0: exactly one of each per call). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aisys
from aisys.testing import capture

DEADLINE_S = 3.0
TIMEOUT_S = 0.5


def serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_serve.py")), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None
    return server, f"http://127.0.0.1:{int(server.stdout.readline())}/v1"


async def run(calls: int, concurrency: int, fault_rate: float, threshold: int) -> None:
    aisys.configure(circuit_failure_threshold=threshold)
    primary_server, primary_url = serve("8", str(fault_rate), "1.5")
    backup_server, backup_url = serve("8")
    backup = aisys.LLM(
        "openai:backup",
        base_url=backup_url,
        timeout=TIMEOUT_S,
        retry=aisys.Retry(max_attempts=2, initial=0.05, max_delay=0.5),
    )
    llm = aisys.LLM(
        "openai:primary",
        base_url=primary_url,
        timeout=TIMEOUT_S,
        retry=aisys.Retry(max_attempts=2, initial=0.05, max_delay=0.5),
        fallbacks=[backup],
        deadline=DEADLINE_S,
    )
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    requests = 0
    failures: list[BaseException] = []
    fell_back = 0

    async def one(index: int) -> None:
        nonlocal requests, fell_back
        async with gate:
            started = time.perf_counter()
            try:
                response = await llm.achat(f"question {index}")
            except aisys.AllTargetsFailedError as exc:
                failures.append(exc)
                requests += sum(1 for a in exc.attempts if a.made_request)
            except aisys.AisysError as exc:
                failures.append(exc)
                requests += 1
            else:
                requests += response.attempts
                fell_back += response.fallback_index > 0
            latencies.append(time.perf_counter() - started)

    with capture() as seen:
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        wall = time.perf_counter() - started
        roots = [s for s in seen.spans if s.parent is None and s.name == "chat primary"]
        events = [e for e in seen.logs if e["event"] == "gen_ai.call"]

    successes = calls - len(failures)
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    over = sum(1 for value in latencies if value > DEADLINE_S + 0.25)
    print(
        f"{calls} calls, {concurrency} concurrent, primary fault rate {fault_rate:.0%}, "
        f"deadline {DEADLINE_S} s, timeout {TIMEOUT_S} s, breaker threshold {threshold}, "
        f"{wall:.1f} s wall\n"
    )
    print("| figure | value |")
    print("|---|---:|")
    print(f"| success rate | {successes / calls:.1%} ({successes}/{calls}) |")
    print(f"| answered by the fallback | {fell_back} |")
    print(f"| p50 latency | {statistics.median(latencies) * 1000:.0f} ms |")
    print(f"| p95 latency | {p95 * 1000:.0f} ms |")
    print(f"| max latency | {ordered[-1] * 1000:.0f} ms |")
    print(f"| requests per successful call | {requests / max(successes, 1):.2f} |")
    print(f"| calls over the deadline (+250 ms) | {over} |")
    print(f"| logical spans lost | {calls - len(roots)} |")
    print(f"| log events lost | {calls - len(events)} |")
    if failures:
        kinds: dict[str, int] = {}
        for failure in failures:
            kinds[type(failure).__name__] = kinds.get(type(failure).__name__, 0) + 1
        print(f"\nfailures: {kinds}")
        for failure in failures[:3]:
            print(f"- {failure}")

    await llm.aclose()
    for server in (primary_server, backup_server):
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--fault-rate", type=float, default=0.3)
    parser.add_argument("--breaker-threshold", type=int, default=5)
    args = parser.parse_args(argv)
    asyncio.run(
        run(args.calls, args.concurrency, args.fault_rate, args.breaker_threshold)
    )


if __name__ == "__main__":
    main()
