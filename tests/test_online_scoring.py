"""Online scoring: a sample of live calls scored off the caller's path, nothing lost.

``LLM(scorers=..., score_sample=...)`` and ``@traced_llm(scorers=..., ...)`` hand answers
to one background worker; its scores land on the calls' spans as evaluation results.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import aisys
from aisys.scorers import Refusal
from aisys.testing import ScriptedTransport

ROOT = Path(__file__).resolve().parent.parent


def _results(path: Path) -> list[dict[str, Any]]:
    aisys.flush()
    return [
        record
        for record in (json.loads(line) for line in path.read_text().splitlines())
        if record.get("event") == "gen_ai.evaluation.result"
    ]


def _llm(n: int, **kwargs: Any) -> aisys.LLM:
    answers = ["I'm sorry, but I can't help with that.", "Five days."] * n
    return aisys.LLM(
        "scripted:support-1", transport=ScriptedTransport(answers), **kwargs
    )


def test_sampled_answers_are_scored_on_their_spans(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)

    def short(case: Any, output: Any) -> bool:
        assert case is None  # live calls have no case
        return len(output.text) < 20

    llm = _llm(2, scorers=[Refusal(), short], score_sample=1.0)
    responses = [llm.chat("q") for _ in range(4)]
    results = _results(traces)
    assert len(results) == 8
    by_span = {
        (r["span_id"], r["attributes"]["gen_ai.evaluation.name"]): r for r in results
    }
    first = by_span[(responses[0].span_id, "refusal")]["attributes"]
    assert first["gen_ai.evaluation.score.label"] == "refused"
    assert (
        by_span[(responses[1].span_id, "short")]["attributes"][
            "gen_ai.evaluation.score.value"
        ]
        == 1.0
    )


def test_unsampled_calls_are_not_scored(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)
    calls = []
    llm = _llm(
        5, scorers=[lambda case, output: calls.append(output) or 1.0], score_sample=0.0
    )
    for _ in range(10):
        llm.chat("q")
    assert _results(traces) == []
    assert calls == []


def test_scoring_happens_off_the_callers_path(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)
    release = threading.Event()

    def slow(case: Any, output: Any) -> float:
        release.wait(30)
        return 1.0

    llm = _llm(1, scorers=[slow])
    response = llm.chat("q")  # returns while the scorer still waits
    assert response.text
    release.set()
    (result,) = _results(traces)
    assert result["span_id"] == response.span_id


def test_twenty_threads_lose_no_score(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)
    llm = aisys.LLM(
        "scripted:support-1",
        transport=ScriptedTransport(["ok"] * 200),
        scorers=[lambda case, output: 1.0],
    )
    spans: list[str | None] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            span = llm.chat("q").span_id
            with lock:
                spans.append(span)

    threads = [threading.Thread(target=work) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = _results(traces)
    assert sorted(r["span_id"] for r in results) == sorted(spans)  # 200, each once


def test_a_failing_scorer_is_counted_and_warned_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    aisys.configure(exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl")

    def broken(case: Any, output: Any) -> float:
        raise ValueError("scorer bug")

    llm = _llm(3, scorers=[broken, Refusal()])
    with caplog.at_level(logging.WARNING, logger="aisys"):
        for _ in range(5):
            assert llm.chat("q").text  # the calls are unaffected
        results = _results(tmp_path / "t.jsonl")
    said = [r for r in caplog.records if "online scorer 'broken'" in r.getMessage()]
    assert len(said) == 1
    assert aisys._DEFAULT.scoring_worker().failures == 5
    assert len(results) == 5  # the other scorer still scored every answer


def test_a_full_queue_drops_and_counts_never_blocks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    aisys.configure(
        exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl", max_queue_size=2
    )
    release = threading.Event()

    def slow(case: Any, output: Any) -> float:
        release.wait(30)
        return 1.0

    llm = _llm(5, scorers=[slow])
    with caplog.at_level(logging.WARNING, logger="aisys"):
        for _ in range(6):
            llm.chat("q")  # never waits for the scorer
    release.set()
    worker = aisys._DEFAULT.scoring_worker()
    assert worker.dropped >= 3  # one in the scorer, two queued, the rest dropped
    assert sum("queue is full" in r.getMessage() for r in caplog.records) == 1


def test_traced_functions_score_their_results(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)

    @aisys.traced_llm(model="gpt-4o-mini", scorers=[Refusal()], score_sample=1.0)
    def answer(question: str) -> str:
        return "I cannot help with that request."

    answer("q")
    (result,) = _results(traces)
    assert result["attributes"]["gen_ai.evaluation.score.label"] == "refused"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scorers": "refusal"}, "scorers"),
        ({"scorers": ["refusal"]}, "scorers"),
        ({"scorers": [Refusal()], "score_sample": 2}, "score_sample"),
        ({"scorers": [Refusal()], "score_sample": "all"}, "score_sample"),
        ({"score_sample": 0.5}, "score_sample"),
    ],
)
def test_scoring_arguments_are_checked(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(aisys.ConfigError) as caught:
        aisys.LLM("scripted:m", **kwargs)
    assert caught.value.field == field
    with pytest.raises(aisys.ConfigError) as caught:
        aisys.traced_llm(**kwargs)
    assert caught.value.field == field


def test_nothing_is_lost_at_exit(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import time, aisys\n"
        "from aisys.testing import ScriptedTransport\n"
        "def slow(case, output):\n    time.sleep(0.05)\n    return 1.0\n"
        "aisys.configure(exporters=['jsonl'], jsonl_path='t.jsonl')\n"
        "llm = aisys.LLM('scripted:m', transport=ScriptedTransport(['ok'] * 10),\n"
        "                scorers=[slow])\n"
        "for _ in range(10):\n    llm.chat('q')\n"  # exits with scores still queued
    )
    subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        check=True,
        timeout=120,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines = [
        json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()
    ]
    assert sum(r.get("event") == "gen_ai.evaluation.result" for r in lines) == 10
