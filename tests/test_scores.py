"""Scores and feedback on calls: ``gen_ai.evaluation.result`` where a team will look.

A span event while the scored span is open, else an OTel log record with its ids (a real
OTLP collector receives it); always a JSONL line and a log event; the report sums them
per group. Bad input is refused at the call that made it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import aisys
from aisys.testing import ScriptedTransport, capture
from tests.collector import Collector


def _llm(*answers: str) -> aisys.LLM:
    return aisys.LLM(
        "scripted:support-1",
        transport=ScriptedTransport(list(answers) or ["Five working days."]),
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_response_carries_its_span_ids() -> None:
    with capture() as seen:
        response = _llm().chat("How long do refunds take?")
    span = seen.span("chat support-1")
    assert response.trace_id == f"{span.context.trace_id:032x}"
    assert response.span_id == f"{span.context.span_id:016x}"


def test_a_stream_answer_carries_its_span_ids() -> None:
    with capture() as seen, _llm().stream("hi") as stream:
        "".join(chunk.text for chunk in stream)
    span = seen.span("chat support-1")
    assert stream.response is not None
    assert stream.response.span_id == f"{span.context.span_id:016x}"


def test_a_score_for_a_finished_call_is_a_jsonl_line_and_a_log_event(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "traces.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)
    response = _llm().chat("How long do refunds take?")
    result = aisys.score(
        "helpfulness",
        0.8,
        label="helpful",
        explanation="answers the question",
        response=response,
    )
    aisys.flush()
    assert result == aisys.Score("helpfulness", 0.8, "helpful", "answers the question")
    (line,) = [
        r for r in _lines(traces) if r.get("event") == "gen_ai.evaluation.result"
    ]
    assert (line["trace_id"], line["span_id"]) == (response.trace_id, response.span_id)
    assert line["attributes"] == {
        "gen_ai.evaluation.name": "helpfulness",
        "gen_ai.evaluation.score.value": 0.8,
        "gen_ai.evaluation.score.label": "helpful",
        "gen_ai.evaluation.explanation": "answers the question",
        "gen_ai.response.id": response.id,
    }
    with capture() as seen:
        response = _llm().chat("How long do refunds take?")
        aisys.score("helpfulness", 0.8, response=response)
    (event,) = [e for e in seen.logs if e["event"] == "gen_ai.evaluation.result"]
    assert event["span_id"] == response.span_id
    assert event["gen_ai.evaluation.score.value"] == 0.8


def test_a_score_inside_a_traced_function_is_an_event_on_its_open_span() -> None:
    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(question: str) -> str:
        aisys.score("grounded", True, explanation="cites the notes")
        return "Five working days."

    with capture() as seen:
        answer("How long do refunds take?")
    (event,) = seen.span("chat gpt-4o-mini").events
    assert event.name == "gen_ai.evaluation.result"
    assert event.attributes["gen_ai.evaluation.score.value"] == 1.0


def test_a_late_score_reaches_a_real_collector_as_a_log_record_with_the_call_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Collector(tmp_path) as collector:
        collector.start()
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
        aisys.configure(exporters="otlp", spool_dir=tmp_path / "spool")
        response = _llm().chat("How long do refunds take?")
        aisys.feedback(response, thumbs="down", comment="too vague")
        assert aisys.flush(10.0)
        (record,) = collector.wait_for(
            lambda: [
                r
                for r in collector.logs()
                if r.get("eventName") == "gen_ai.evaluation.result"
            ]
        )
        aisys.shutdown(5.0)
    assert (record["traceId"], record["spanId"]) == (
        response.trace_id,
        response.span_id,
    )
    attrs = {a["key"]: next(iter(a["value"].values())) for a in record["attributes"]}
    assert attrs["gen_ai.evaluation.name"] == "user_feedback"
    assert attrs["gen_ai.evaluation.score.value"] == 0.0
    assert attrs["gen_ai.evaluation.score.label"] == "down"


def test_feedback_from_thumbs_and_a_user(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces, capture_content="redacted")
    response = _llm().chat("hi")
    up = aisys.feedback(response, thumbs="up", user_id="ana@example.com")
    by_id = aisys.feedback(response.trace_id, value=0.5, comment="mail ana@example.com")
    aisys.flush()
    assert (up.name, up.value, up.label) == ("user_feedback", 1.0, "up")
    assert (by_id.value, by_id.label) == (0.5, None)
    lines = [r for r in _lines(traces) if r.get("event")]
    assert lines[0]["attributes"]["user.id"] == "[EMAIL_1]"  # redacted like the call
    assert lines[1]["span_id"] is None  # a trace id only: the trace is scored
    assert "ana@example.com" not in traces.read_text()


def test_explanations_are_redacted_unless_content_is_full(tmp_path: Path) -> None:
    for capture_content, kept in (("off", False), ("redacted", False), ("full", True)):
        traces = tmp_path / f"{capture_content}.jsonl"
        aisys.configure(
            exporters=["jsonl"], jsonl_path=traces, capture_content=capture_content
        )
        response = _llm().chat("hi")
        aisys.score(
            "tone",
            0.1,
            explanation="leaks sk-proj-abcdef0123456789abcdef01",
            response=response,
        )
        aisys.flush()
        assert ("sk-proj-abcdef0123456789abcdef01" in traces.read_text()) is kept


def test_current_trace_id_serves_decorator_mode() -> None:
    assert aisys.current_trace_id() is None
    with capture(), aisys.trace("ticket") as block:
        assert aisys.current_trace_id() == block.trace_id


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"name": "x"}, "value"),  # neither value nor label
        ({"name": "x", "value": 1.5}, "value"),
        ({"name": "x", "value": "high"}, "value"),
        ({"name": "", "value": 1}, "name"),
        ({"name": "x", "value": 1, "label": 3}, "label"),
        ({"name": "x", "value": 1, "trace_id": "abc"}, "trace_id"),
        ({"name": "x", "value": 1, "response": object()}, "response"),
        ({"name": "x", "value": 1}, "response"),  # no call to score
    ],
)
def test_bad_scores_are_refused_naming_the_argument(
    kwargs: dict[str, object], named: str
) -> None:
    name = kwargs.pop("name")
    with pytest.raises(aisys.ConfigError) as caught:
        aisys.score(name, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == named


def test_bad_feedback_is_refused() -> None:
    response = _llm().chat("hi")
    with pytest.raises(
        aisys.ConfigError, match=r"feedback\(thumbs=\) takes 'up', 'down'"
    ):
        aisys.feedback(response, thumbs="sideways")
    with pytest.raises(aisys.ConfigError, match="needs a value"):
        aisys.feedback(response)


def test_the_report_sums_scores_per_group(tmp_path: Path) -> None:
    import subprocess
    import sys

    traces = tmp_path / "traces.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=traces)
    llm = _llm("a", "b", "c")
    for value in (1.0, 0.0, 0.5):
        aisys.score("helpfulness", value, response=llm.chat("q"))
    aisys.flush()
    done = subprocess.run(
        [sys.executable, "-m", "aisys.cli", "report", str(traces), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    (row,) = json.loads(done.stdout)
    assert row["scores"] == {"helpfulness": {"mean": 0.5, "n": 3}}
