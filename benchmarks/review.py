"""What review costs on the caller's path.

    python benchmarks/review.py [--n 2000]

In one run (µs per call, median of 5 rounds):
- `ReviewQueue.submit` on SQLite (WAL, in a temporary folder) and on PostgreSQL over
  loopback (a throwaway cluster, as the tests start one);
- an `aisys.LLM` call on the scripted transport with no guard, with
  ``PII(action="review")`` that finds nothing, and with ``PII(action="flag")`` (the same
  detector, to separate the guard's scan from the review machinery), beside the bare
  transport call.

Nothing is asserted; docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cost_budget import per_call_us

import aisys
from aisys.testing import ScriptedTransport


def submits(n: int, work: Path) -> None:
    from tests.postgres import Cluster

    print(f"| submit, {n} x 5 | µs per item |")
    print("|---|---:|")
    sqlite = aisys.ReviewQueue(str(work / "review.db"))
    print(
        f"| SQLite (WAL) | {per_call_us(lambda: sqlite.submit(reason='bench', output='Five days.'), n):.0f} |"
    )
    cluster = Cluster()
    cluster.start()
    try:
        with aisys.ReviewQueue(cluster.url) as postgres:
            us = per_call_us(
                lambda: postgres.submit(reason="bench", output="Five days."), n
            )
            print(f"| PostgreSQL (loopback) | {us:.0f} |")
    finally:
        cluster.remove()
    print()


def guarded_calls(n: int) -> None:
    answers = ["Refunds take five working days."] * (n * 6 + 10)
    transport = ScriptedTransport(list(answers))
    plain = aisys.LLM("scripted:m", transport=ScriptedTransport(list(answers)))
    review = aisys.LLM(
        "scripted:m",
        transport=ScriptedTransport(list(answers)),
        guards=[aisys.guards.PII(action="review")],
    )
    flag = aisys.LLM(
        "scripted:m",
        transport=ScriptedTransport(list(answers)),
        guards=[aisys.guards.PII(action="flag")],
    )
    question = "How long do refunds take?"
    import httpx2

    client = httpx2.Client(transport=transport)
    body = {"model": "m", "messages": [{"role": "user", "content": question}]}

    def bare() -> None:
        client.post("http://scripted.invalid/v1/chat/completions", json=body)

    rows = [("bare transport call (httpx2)", per_call_us(bare, n))]
    for label, llm in (
        ("aisys.LLM, no guard", plain),
        ("aisys.LLM, PII(action='flag'), finds nothing", flag),
        ("aisys.LLM, PII(action='review'), finds nothing", review),
    ):
        rows.append((label, per_call_us(lambda llm=llm: llm.chat(question), n)))
    print(f"| per call, {n} x 5 | µs | vs no guard |")
    print("|---|---:|---:|")
    for label, us in rows:
        print(f"| {label} | {us:.1f} | {us - rows[1][1]:+.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aisys-review-bench-"))
    aisys.configure(cache_dir=work)
    try:
        submits(args.n, work)
        guarded_calls(args.n)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
