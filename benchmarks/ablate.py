"""Where set-up A's gap goes: aisys beside its twin, one piece of its work taken out at a time.

    python benchmarks/ablate.py [--rounds 7]

Set-up A of `hot_path.py` (an SDK tracer, no meter, logging not configured). Each row
replaces one part of aisys's own work with the twin's fixed result (monkeypatched, so
the output is no longer correct) and reports how far aisys then is from the twin in the
same run. The difference between two rows is what that part costs *in place*, beside
a real SDK span; the "alone" lines time the same parts in a tight loop. This script
reaches into aisys's internals by name: when they move, update it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from opentelemetry import metrics
from opentelemetry.sdk.trace import TracerProvider

import aisys
import aisys.instrument.spec as instrument
import aisys.lifecycle as lifecycle
import aisys.telemetry.writer as telemetry
from aisys.call import Call
from aisys.metering import cost as metering
from aisys.providers.registry import read_result
from aisys.testing import ScriptedTransport

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hot_path import MODEL, RESPONSE, Twin, bare


@contextmanager
def patched(target: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, old)


def gap(
    aisys_call: Callable[[], Any], twin_call: Callable[[], Any], rounds: int, n: int
) -> tuple[float, float]:
    """Median µs per call of each side over interleaved rounds."""
    ours, theirs = [], []
    for _ in range(rounds):
        ours.append(min(timeit.repeat(aisys_call, number=n, repeat=3)) / n * 1e6)
        theirs.append(min(timeit.repeat(twin_call, number=n, repeat=3)) / n * 1e6)
    return sorted(ours)[rounds // 2], sorted(theirs)[rounds // 2]


def alone(fn: Callable[[], Any], n: int = 50_000) -> float:
    return min(timeit.repeat(fn, number=n, repeat=5)) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    provider = TracerProvider(shutdown_on_exit=False)
    runtime = aisys.Runtime(aisys.Settings(), tracer_provider=provider)
    twin = Twin(provider.get_tracer("twin"), metrics.get_meter("twin"), None)
    traced = runtime.traced_llm(model=MODEL, provider="openai")(bare)
    fixed_attrs = twin._read(RESPONSE)[0]

    def row(label: str) -> None:
        ours, theirs = gap(
            lambda: traced("q"), lambda: twin.sync("q"), args.rounds, 2000
        )
        print(f"| {label} | {theirs:.1f} | {ours:.1f} | {ours - theirs:+.1f} |")

    print("| `@traced_llm` sync, set-up A | twin µs | aisys µs | aisys above twin |")
    print("|---|---:|---:|---:|")
    row("whole call")
    with patched(telemetry, "end_attributes", lambda call, **_: dict(fixed_attrs)):
        row("span attributes: the twin's fixed dict")
        with patched(lifecycle, "_metering", lambda: lambda call: None):
            row("… and no pricing")
            with patched(instrument, "read_result", lambda call, result: True):
                row("… and no reading of the result")

    call = Call("llm", "chat", provider="openai", request_model=MODEL)
    read_result(call, RESPONSE)

    def read() -> None:
        read_result(Call("llm", "chat", provider="openai"), RESPONSE)

    print()
    print(
        f"alone in a loop: reading {alone(read):.2f} µs (a `Call` included), ", end=""
    )
    print(f"pricing {alone(lambda: metering.meter(call)):.2f} µs")

    transport = ScriptedTransport(lambda body: "Five days.")
    client = httpx2.Client(transport=transport, headers={"authorization": "Bearer k"})
    llm = aisys.LLM(
        f"openai:{MODEL}", api_key="k", transport=transport, runtime=runtime
    )
    answer = llm.chat("q")

    def chat_row(label: str) -> None:
        ours, theirs = gap(
            lambda: llm.chat("q"), lambda: twin.http(client, "q"), args.rounds, 1000
        )
        transport.requests.clear()
        print(f"| {label} | {theirs:.1f} | {ours:.1f} | {ours - theirs:+.1f} |")

    print()
    print("| `LLM.chat`, set-up A | twin µs | aisys µs | aisys above twin |")
    print("|---|---:|---:|---:|")
    chat_row("whole call")
    with patched(metering.CallCost, "to_cost", lambda self: answer.cost):
        chat_row("the public `Cost`: one prebuilt")
    with patched(llm.provider, "parse_chat", lambda target, response: answer):
        chat_row("no JSON parsed, no `ChatResponse` built")


if __name__ == "__main__":
    main()
