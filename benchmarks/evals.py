"""Experiments against the ideal, and what online scoring costs a call.

    python benchmarks/evals.py [--cases 500] [--sleep 0.05] [--n 20000]

- `aisys.evaluate` over ``--cases`` cases whose target sleeps ``--sleep`` s (sync, on
  the thread pool; and async, as tasks), at concurrency 1, 8 and 32: wall time against
  the ideal (cases x sleep / concurrency);
- per call (µs, median of 5 rounds): a traced function with no scorers, with scorers
  at ``score_sample=0`` (unsampled: the draw only), and sampled (``score_sample=1``:
  queued for the worker), beside the bare function, in one run.

Nothing is asserted; docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aisys


def experiments(cases: int, sleep: float, out: Path) -> None:
    dataset = aisys.Dataset(
        aisys.Case({"i": i}, f"c{i}", expected="ok") for i in range(cases)
    )

    def target(i: int) -> str:
        time.sleep(sleep)
        return "ok"

    async def atarget(i: int) -> str:
        await asyncio.sleep(sleep)
        return "ok"

    print(
        f"| {cases} cases x {sleep * 1000:.0f} ms | concurrency | wall s | ideal s | x ideal |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, fn in (("sync (threads)", target), ("async (tasks)", atarget)):
        for concurrency in (1, 8, 32):
            ideal = cases * sleep / concurrency
            started = time.perf_counter()
            aisys.evaluate(
                dataset, fn, [aisys.scorers.Exact()], concurrency=concurrency,
                out_dir=out, progress=False, name=f"bench-{concurrency}",
            )  # fmt: skip
            wall = time.perf_counter() - started
            print(
                f"| {label} | {concurrency} | {wall:.2f} | {ideal:.2f} | {wall / ideal:.2f} |"
            )
    print()


def _rounds(fn: object, n: int) -> float:
    """Median µs per call over rounds of 1000 calls, flushing (untimed) between rounds.

    Each round fits the queues, so a sampled call pays for queueing, not for a drop.
    """
    import statistics

    runs = []
    for _ in range(max(1, n // 1000)):
        started = time.perf_counter()
        for _ in range(1000):
            fn("q")  # type: ignore[operator]
        runs.append((time.perf_counter() - started) / 1000 * 1e6)
        aisys.flush(60.0)
    return statistics.median(runs)


def online(n: int) -> None:
    def answer(question: str) -> str:
        return "Five days."

    def scorer(case: object, output: object) -> float:
        return 1.0

    plain = aisys.traced_llm(model="gpt-4o-mini")(answer)
    unsampled = aisys.traced_llm(
        model="gpt-4o-mini", scorers=[scorer], score_sample=0.0
    )(answer)
    sampled = aisys.traced_llm(model="gpt-4o-mini", scorers=[scorer], score_sample=1.0)(
        answer
    )
    aisys.configure(
        exporters=["jsonl"], jsonl_path=Path(tempfile.mkdtemp()) / "t.jsonl"
    )
    for fn in (plain, unsampled, sampled):
        fn("warm up")
    rows = [("bare function", _rounds(answer, n))]
    for label, fn in (
        ("traced, no scorers", plain),
        ("traced, scorers, score_sample=0 (unsampled)", unsampled),
        ("traced, scorers, score_sample=1 (sampled: queued)", sampled),
    ):
        rows.append((label, _rounds(fn, n)))
    print(f"| per call, {n} calls in rounds of 1000 | µs | vs traced, no scorers |")
    print("|---|---:|---:|")
    base = rows[1][1]
    for label, us in rows:
        print(f"| {label} | {us:.2f} | {us - base:+.2f} |")
    worker = aisys._DEFAULT.scoring_worker()
    print(f"\n(scores dropped by a full queue: {worker.dropped})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--sleep", type=float, default=0.05)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp(prefix="aisys-evals-bench-"))
    try:
        experiments(args.cases, args.sleep, out)
        online(args.n)
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
