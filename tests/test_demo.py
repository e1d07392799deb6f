"""`make demo` stays true: the example runs offline and shows what the README promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "examples" / "support_bot.py"


def test_demo_runs_offline_and_writes_traces(tmp_path: Path) -> None:
    """Three answers twice, a console tree per trace, and spans in aisys-traces.jsonl."""
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert done.stdout.count("A: Here is what I found:") == 6
    assert "embed(): 4 vectors" in done.stdout
    assert "stopped after" in done.stdout  # the daily budget ends the runaway loop
    assert "BudgetExceededError" in done.stderr
    assert "guard 'pii' found" in done.stdout  # the review queue lists the private call
    assert "regressions (1): shipping" in done.stdout  # the eval compare finds the change
    assert "aisys report by model" in done.stdout  # the demo ends with its report
    page = (tmp_path / "aisys-report.html").read_text()
    assert 'id="aisys-report"' in page  # and writes it as one page
    assert "support-2" in done.stdout.split("aisys report by model")[1]
    assert "└─ chat support-2" in done.stderr
    assert "$0.0000" in done.stderr  # cost per call in the console tree
    assert "cache hit, saved $" in done.stderr  # a repeated question hit the cache
    assert "chat() again: cached=True" in done.stdout
    assert "hit rate" in done.stdout
    assert done.stderr.count("\n└─ answer-ticket ") == 3  # roots (Part 5 nests them)
    assert done.stderr.count("\n└─ answer-ticket-llm ") == 3
    lines = [
        json.loads(line)
        for line in (tmp_path / "aisys-traces.jsonl").read_text().splitlines()
    ]
    records = [r for r in lines if "event" not in r]  # spans
    scores = [r for r in lines if r.get("event") == "gen_ai.evaluation.result"]
    assert len(scores) == 12  # Part 5: 2 runs x 3 cases x 2 scorers, on their traces
    names = {r["name"] for r in records}
    assert {
        "answer-ticket",
        "retrieval faq",
        "chat scripted-support-1",
        "chat support-2",
        "embeddings support-2",
    } <= names
    assert all(r["resource"]["service.name"] == "support-bot" for r in records)
    prompted = [r for r in records if r["name"] == "chat support-2"]
    assert prompted
    assert prompted[0]["attributes"]["aisys.prompt.name"] == "support_answer"
    assert prompted[0]["attributes"]["aisys.prompt.version"] == "1"
    written = (tmp_path / "aisys-traces.jsonl").read_text()
    assert "Refunds are paid" in written  # content is captured (redacted mode)...
    assert "ana.lopez@example.com" not in written  # ...with personal data masked
    assert "4111 1111 1111 1111" not in written
    assert "[EMAIL_1]" in written
    assert "blocked before sending" in done.stdout
    assert "aisys.GuardError" in done.stderr
