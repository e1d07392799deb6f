"""``aisys report`` over many spans: plain, ``--drift`` and ``--html``.

    python benchmarks/report.py [--spans 1000000]

Writes ``--spans`` JSONL span records (as the exporter writes them; two models, tags,
one evaluation line per tenth call, start times over eight days) to a temporary file,
then times each command as a subprocess (wall seconds; one process, so one core for the
Python work) and its peak memory (ru_maxrss of the child). Nothing is asserted;
docs/performance.md reports the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, spans: int) -> None:
    rng = random.Random(1)  # noqa: S311 - seeded test data
    now = time.time()
    with path.open("w") as out:
        for i in range(spans):
            start = now - rng.uniform(0, 8 * 86400)
            model = ("gpt-4o-mini", "claude-haiku")[i % 2]
            record = {
                "name": f"chat {model}", "trace_id": f"{i + 1:032x}", "span_id": f"{i + 1:016x}",
                "parent_span_id": None, "kind": "CLIENT",
                "start_time_unix_nano": int(start * 1e9),
                "end_time_unix_nano": int((start + rng.uniform(0.2, 1.5)) * 1e9),
                "status": {"code": "UNSET", "description": None},
                "attributes": {
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": model, "gen_ai.response.model": model,
                    "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
                    "aisys.cost.usd": 0.0002, "aisys.cost.status": "priced",
                    "aisys.tags": ["vip"] if i % 3 == 0 else ["free"],
                },
                "events": [], "resource": {"service.name": "bench"},
            }  # fmt: skip
            out.write(json.dumps(record) + "\n")
            if i % 10 == 0:
                score = {
                    "event": "gen_ai.evaluation.result", "trace_id": f"{i + 1:032x}",
                    "span_id": f"{i + 1:016x}", "time_unix_nano": int(start * 1e9),
                    "attributes": {"gen_ai.evaluation.name": "helpfulness",
                                   "gen_ai.evaluation.score.value": rng.random()},
                }  # fmt: skip
                out.write(json.dumps(score) + "\n")


def timed(args: list[str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "aisys.cli", "report", *args], cwd=cwd,
                   check=True, capture_output=True)  # fmt: skip
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="aisys-report-bench-"))
    try:
        traces = work / "t.jsonl"
        write(traces, args.spans)
        size = traces.stat().st_size / 1e6
        print(
            f"| {args.spans:,} spans ({size:.0f} MB) | wall s | peak MB (max so far) |"
        )
        print("|---|---:|---:|")
        for label, extra in (
            ("report (table)", []),
            ("report --format json", ["--format", "json"]),
            ("report --drift", ["--drift", "--format", "json"]),
            ("report --html", ["--html", str(work / "r.html")]),
        ):
            seconds, peak = timed([str(traces), *extra], work)
            print(f"| {label} | {seconds:.1f} | {peak:.0f} |")
        print(f"\n(page: {(work / 'r.html').stat().st_size / 1e6:.2f} MB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
