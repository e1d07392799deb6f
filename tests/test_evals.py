"""Evaluation: datasets, scorers, experiments with run files, compare, the CLI gates.

Real parts: the loopback wire server answers the targets' and the judge's requests (the
official openai client as a target); the command line runs as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisys
from aisys.evals.compare import compare
from aisys.evals.experiment import load_run
from aisys.scorers import (
    Contains,
    Exact,
    JsonValid,
    Judge,
    Length,
    Matches,
    Numeric,
    Refusal,
    Regex,
)
from tests.wire_server import Reply, WireServer

CASES = [
    {"id": "r1", "inputs": {"question": "How long do refunds take?"}, "expected": "Five days.", "tags": ["refunds"]},
    {"id": "r2", "inputs": {"question": "Can I cancel?"}, "expected": "Yes.", "tags": ["orders"], "metadata": {"lang": "en"}},
    {"id": "r3", "inputs": {"question": "Where is my parcel?"}, "expected": "On its way.", "tags": []},
]  # fmt: skip

ANSWERS = {
    "How long do refunds take?": "Five days.",
    "Can I cancel?": "Yes.",
    "Where is my parcel?": "Lost.",
}


def _jsonl(path: Path, cases: list[dict[str, Any]] = CASES) -> Path:
    path.write_text("".join(json.dumps(c) + "\n" for c in cases))
    return path


def answer(question: str) -> str:
    return ANSWERS[question]


# -- datasets --------------------------------------------------------------------------


def test_the_three_formats_load_the_same_cases(tmp_path: Path) -> None:
    jsonl = _jsonl(tmp_path / "cases.jsonl")
    (tmp_path / "cases.csv").write_text(
        "id,question,expected,tags\n"
        "r1,How long do refunds take?,Five days.,refunds\n"
        "r2,Can I cancel?,Yes.,orders\n"
        "r3,Where is my parcel?,On its way.,\n"
    )
    (tmp_path / "cases.yaml").write_text(
        "- id: r1\n  inputs: {question: 'How long do refunds take?'}\n"
        "  expected: Five days.\n  tags: [refunds]\n"
        "- id: r2\n  inputs: {question: 'Can I cancel?'}\n  expected: Yes.\n"
        "  tags: [orders]\n  metadata: {lang: en}\n"
        "- id: r3\n  inputs: {question: 'Where is my parcel?'}\n  expected: On its way.\n"
    )
    loaded = [
        aisys.Dataset.load(tmp_path / f"cases.{s}") for s in ("jsonl", "csv", "yaml")
    ]
    assert [len(d) for d in loaded] == [3, 3, 3]
    for dataset in loaded:
        assert [c.id for c in dataset] == ["r1", "r2", "r3"]
        assert dataset[0].inputs == {"question": "How long do refunds take?"}
        assert dataset[0].tags == ("refunds",)
    assert loaded[0].sha256 == loaded[2].sha256  # the same canonical cases
    assert loaded[0].sha256 != aisys.Dataset.load(_jsonl(jsonl, CASES[:2])).sha256


def test_a_case_without_an_id_gets_a_stable_one(tmp_path: Path) -> None:
    cases = [{"inputs": {"question": "hi"}}]
    first = aisys.Dataset.load(_jsonl(tmp_path / "a.jsonl", cases))[0]
    again = aisys.Dataset.load(_jsonl(tmp_path / "b.jsonl", cases))[0]
    assert first.id == again.id
    assert len(first.id) == 12


@pytest.mark.parametrize(
    ("name", "text", "said"),
    [
        ("bad.jsonl", '{"inputs": {"q": 1}}\n{not json\n', "bad.jsonl:2: line: not JSON"),
        ("bad.jsonl", '{"expected": "x"}\n', "bad.jsonl:1: inputs: required"),
        ("bad.jsonl", '{"inputs": {}, "expect": "x"}\n', "bad.jsonl:1: expect: unknown field"),
        ("bad.jsonl", '{"inputs": {}, "tags": "a"}\n', "bad.jsonl:1: tags: a list of strings"),
        ("bad.jsonl", '{"id": "a", "inputs": {}}\n{"id": "a", "inputs": {"x": 1}}\n', "case 2 has the id 'a'"),
        ("bad.csv", "q,expected\nhi,x,extra\n", "bad.csv:2: row: more cells"),
        ("bad.yaml", "inputs: {q: 1}\n", "bad.yaml:1: cases: a YAML dataset is a list"),
        ("bad.yaml", "- inputs: {q: 1}\n- inputs: [1]\n", "bad.yaml:2: inputs: required"),
        ("bad.txt", "x", "a dataset is a .jsonl, .csv or .yaml file"),
    ],
)  # fmt: skip
def test_a_malformed_dataset_names_file_line_and_field(
    tmp_path: Path, name: str, text: str, said: str
) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(aisys.ConfigError) as caught:
        aisys.Dataset.load(tmp_path / name)
    assert said in str(caught.value)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "inputs": st.dictionaries(
                    st.from_regex(r"[a-z]{1,8}", fullmatch=True),
                    st.one_of(st.text(max_size=20), st.integers(), st.booleans()),
                    max_size=3,
                ),
                "expected": st.one_of(st.none(), st.text(max_size=20)),
                "tags": st.lists(st.text(min_size=1, max_size=8), max_size=3),
            }
        ),
        max_size=8,
        unique_by=lambda c: json.dumps(c["inputs"], sort_keys=True),
    )
)
def test_jsonl_round_trips_any_cases(
    tmp_path: Path, cases: list[dict[str, Any]]
) -> None:
    dataset = aisys.Dataset.load(_jsonl(tmp_path / "any.jsonl", cases))
    assert [(dict(c.inputs), c.expected, list(c.tags)) for c in dataset] == [
        (c["inputs"], c["expected"], c["tags"]) for c in cases
    ]


# -- scorers ---------------------------------------------------------------------------


def test_the_built_in_scorers() -> None:
    case = aisys.Case({"q": "x"}, "c", expected="Five days.")
    number = aisys.Case({"q": "x"}, "n", expected="42")

    class Invoice(__import__("pydantic").BaseModel):
        number: str

    assert Exact()(case, " Five days. ").value == 1.0
    assert Exact()(case, "5 days").value == 0.0
    assert Contains()(case, "It takes Five days.").value == 1.0
    assert Contains("refund", ignore_case=True)(None, "Your REFUND").value == 1.0
    assert Regex(r"\d+ days")(None, "in 5 days").value == 1.0
    assert JsonValid()(None, '{"a": 1}').value == 1.0
    assert JsonValid()(None, "{a: 1}").value == 0.0
    assert Matches(Invoice)(None, '{"number": "A1"}').value == 1.0
    missing = Matches(Invoice)(None, "{}")
    assert (missing.value, missing.explanation) == (0.0, "number: Field required")
    assert Numeric(tolerance=0.5)(number, "about 42.4 euros").value == 1.0
    assert Numeric()(number, "none").value == 0.0
    refused = Refusal()(None, "I'm sorry, but I can't help with that.")
    assert (refused.value, refused.label) == (1.0, "refused")
    assert Refusal()(None, "Refunds take five days.").label == "answered"
    assert Length(10)(None, "short").value == 1.0
    assert Length(3)(None, "too long").value == 0.0


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Regex("("), "pattern"),
        (lambda: Matches(dict), "model"),
        (lambda: Numeric(-1), "tolerance"),
        (lambda: Length(0), "max_chars"),
        (lambda: Judge(3), "rubric"),
        (lambda: Judge("x", threshold=2), "threshold"),
        (lambda: Contains(3), "text"),  # type: ignore[arg-type]
    ],
)
def test_scorer_arguments_are_checked(make: Any, field: str) -> None:
    with pytest.raises(aisys.ConfigError) as caught:
        make()
    assert caught.value.field == field


# -- experiments -----------------------------------------------------------------------


def test_a_run_scores_every_case_and_writes_the_run_file(tmp_path: Path) -> None:
    def broken(case: aisys.Case, output: Any) -> float:
        raise ValueError("scorer bug")

    async def tone(case: aisys.Case, output: Any) -> aisys.Score:
        return aisys.Score("tone", 0.5, "neutral", "fine")

    run = aisys.evaluate(
        _jsonl(tmp_path / "cases.jsonl"),
        answer,
        [Exact(), broken, tone],
        name="refunds",
        out_dir=tmp_path / "runs",
        progress=False,
    )
    assert run.path.parent == tmp_path / "runs"
    assert run.path.name.startswith("refunds-")
    data = json.loads(run.path.read_text())
    assert data["name"] == "refunds"
    assert data["target"].endswith(":answer")
    assert data["dataset"]["cases"] == 3
    assert (
        data["dataset"]["sha256"] == aisys.Dataset.load(tmp_path / "cases.jsonl").sha256
    )
    assert data["aisys_version"] == aisys.__version__
    assert {"started", "git_commit", "cost_usd", "judge_cost_usd"} <= set(data)
    assert run.summary["exact"] == {
        "mean": pytest.approx(2 / 3, abs=1e-5),
        "n": 3,
        "errors": 0,
    }
    assert run.summary["broken"] == {"mean": None, "n": 0, "errors": 3}  # never a crash
    assert run.summary["tone"]["mean"] == 0.5
    first = run.cases[0]
    assert set(first) == {
        "id", "tags", "output", "expected", "scores", "error", "latency_ms",
        "cost_usd", "trace_id", "prompt",
    }  # fmt: skip
    assert first["output"] == "Five days."
    assert first["scores"]["broken"]["error"] == "ValueError"
    assert first["scores"]["tone"] == {
        "value": 0.5,
        "label": "neutral",
        "explanation": "fine",
    }


def test_a_target_that_raises_is_recorded_and_scored_zero(tmp_path: Path) -> None:
    def flaky(question: str) -> str:
        if "parcel" in question:
            raise RuntimeError("upstream down")
        return ANSWERS[question]

    run = aisys.evaluate(
        _jsonl(tmp_path / "c.jsonl"), flaky, [Exact()], out_dir=tmp_path, progress=False
    )
    failed = run.cases[2]
    assert failed["error"] == "RuntimeError: upstream down"
    assert failed["scores"]["exact"]["value"] == 0.0


def test_each_case_runs_in_its_own_trace(tmp_path: Path) -> None:
    aisys.configure(exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl")
    traced = aisys.traced_llm(model="gpt-4o-mini")(answer)
    run = aisys.evaluate(
        _jsonl(tmp_path / "c.jsonl"),
        traced,
        [Exact()],
        out_dir=tmp_path,
        progress=False,
    )
    aisys.flush()
    trace_ids = [c["trace_id"] for c in run.cases]
    assert len(set(trace_ids)) == 3
    assert None not in trace_ids
    lines = [
        json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()
    ]
    roots = [s for s in lines if s.get("name") == "eval answer"]
    assert sorted(r["trace_id"] for r in roots) == sorted(trace_ids)
    scored = [r for r in lines if r.get("event") == "gen_ai.evaluation.result"]
    assert sorted(r["trace_id"] for r in scored) == sorted(trace_ids)  # on each trace


def test_sync_targets_run_concurrently_on_threads(tmp_path: Path) -> None:
    together = threading.Barrier(3, timeout=10)  # passes only if 3 run at once

    def meet(question: str) -> str:
        together.wait()
        return ANSWERS[question]

    run = aisys.evaluate(
        _jsonl(tmp_path / "c.jsonl"), meet, [Exact()], concurrency=3, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert [c["error"] for c in run.cases] == [None, None, None]


def test_async_targets_run_concurrently_as_tasks(tmp_path: Path) -> None:
    arrived: list[str] = []
    all_in = asyncio.Event

    async def meet(question: str) -> str:
        arrived.append(question)
        for _ in range(1000):  # yields until all three are in, or gives up
            if len(arrived) == 3:
                return ANSWERS[question]
            await asyncio.sleep(0)
        raise RuntimeError(f"only {len(arrived)} ran at once")

    assert all_in is not None
    run = aisys.evaluate(
        _jsonl(tmp_path / "c.jsonl"), meet, [Exact()], concurrency=3, out_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert [c["error"] for c in run.cases] == [None, None, None]


def test_ctrl_c_writes_what_finished_and_resume_skips_it(tmp_path: Path) -> None:
    seen: list[str] = []

    def stops_at_the_parcel(question: str) -> str:
        if "parcel" in question:
            raise KeyboardInterrupt
        seen.append(question)
        return ANSWERS[question]

    with pytest.raises(KeyboardInterrupt):
        aisys.evaluate(
            _jsonl(tmp_path / "c.jsonl"), stops_at_the_parcel, [Exact()],
            concurrency=1, name="long", out_dir=tmp_path / "runs", progress=False,
        )  # fmt: skip
    (partial,) = (tmp_path / "runs").glob("long-*.json")
    written = load_run(partial)
    assert written.data["interrupted"] is True
    assert [c["id"] for c in written.cases] == ["r1", "r2"]

    seen.clear()
    resumed = aisys.evaluate(
        tmp_path / "c.jsonl", answer_and_note(seen), [Exact()], name="long",
        out_dir=tmp_path / "again", resume=partial, progress=False,
    )  # fmt: skip
    assert seen == ["Where is my parcel?"]  # only what had not finished
    assert [c["id"] for c in resumed.cases] == ["r1", "r2", "r3"]


def answer_and_note(seen: list[str]) -> Any:
    def target(question: str) -> str:
        seen.append(question)
        return ANSWERS[question]

    return target


def test_evaluate_checks_its_arguments(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "c.jsonl")
    for kwargs, field in (
        ({"target": "answer"}, "target"),
        ({"scorers": Exact()}, "scorers"),
        ({"scorers": ["exact"]}, "scorers"),
        ({"concurrency": 0}, "concurrency"),
        ({"scorers": [Exact(), Exact()]}, "scorers"),
    ):
        arguments: dict[str, Any] = {"target": answer, "scorers": [], **kwargs}
        with pytest.raises(aisys.ConfigError) as caught:
            aisys.evaluate(path, arguments.pop("target"), **arguments)
        assert caught.value.field == field


# -- the official client as a target, a judge on the wire --------------------------------


def test_the_openai_client_as_target_and_a_judge_answered_by_the_wire_server(
    tmp_path: Path, server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "politeness.prompty").write_text(
        "---\nname: politeness\nmodel: openai:gpt-4o-mini\n"
        "inputs:\n  output: {type: string}\n  expected: {type: string}\n---\n"
        "system:\nRate how polite the answer is, from 0 to 1.\n"
        "user:\nAnswer: {{ output }}\nReference: {{ expected }}\n"
    )
    aisys.configure(prompts_dir=prompts)
    client = openai.OpenAI(api_key="sk-test", base_url=server.base_url, max_retries=0)

    @aisys.traced_llm(price_as="openai")
    def bot(question: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    judge_llm = aisys.LLM(
        "openai:gpt-4o-mini",
        base_url=server.base_url,
        api_key="sk-test",
        price_as="openai",
    )
    server.script(
        Reply(text="Refunds take five days, thank you for asking."),
        Reply(text='{"score": 0.9, "explanation": "thanks the customer"}'),
    )
    run = aisys.evaluate(
        _jsonl(tmp_path / "c.jsonl", CASES[:1]), bot, [Judge("politeness", llm=judge_llm)],
        concurrency=1, out_dir=tmp_path, progress=False,
    )  # fmt: skip
    (case,) = run.cases
    assert case["output"] == "Refunds take five days, thank you for asking."
    judged = case["scores"]["politeness"]
    assert (judged["value"], judged["label"]) == (0.9, "pass")
    assert judged["explanation"] == "thanks the customer"
    judge_request = server.requests[1].body
    sent = json.dumps(judge_request["messages"])
    assert "Rate how polite the answer is" in sent  # the rubric reached the judge
    assert "thank you for asking" in sent  # and the case's output
    assert "Five days." in sent  # and the reference
    assert (case["cost_usd"] or 0) > 0  # the target's call, priced
    assert (run.judge_cost_usd or 0) > 0  # the judge's, counted apart
    assert run.cost_usd == pytest.approx(case["cost_usd"])


# -- compare ---------------------------------------------------------------------------


def _run(tmp_path: Path, name: str, broken: set[str], n: int = 40) -> aisys.EvalRun:
    cases = [
        {
            "id": f"c{i}",
            "inputs": {"i": i},
            "expected": "ok",
            "tags": ["hard"] if i % 4 == 0 else ["easy"],
        }
        for i in range(n)
    ]
    path = _jsonl(tmp_path / f"{name}.jsonl", cases)

    def target(i: int) -> str:
        return "wrong" if f"c{i}" in broken else "ok"

    return aisys.evaluate(path, target, [Exact()], name=name, out_dir=tmp_path / "runs",
                          progress=False)  # fmt: skip


def test_compare_finds_a_regression_on_a_known_subset(tmp_path: Path) -> None:
    hard = {f"c{i}" for i in range(0, 40, 4)}
    base = _run(tmp_path, "base", set())
    candidate = _run(tmp_path, "candidate", hard)
    result = compare(base, candidate)
    (exact,) = result["scorers"]
    assert exact["delta"] == pytest.approx(-0.25)
    assert exact["ci_high"] < 0  # the interval excludes 0
    assert sorted(result["regressions"]) == sorted(hard)
    assert result["improvements"] == []
    by_tag = {row["tag"]: row for row in result["tags"]}
    assert by_tag["hard"]["delta"] == -1.0
    assert by_tag["easy"]["delta"] == 0.0
    assert compare(base, candidate) == result  # seeded: the same interval again
    gate = _cli(
        "eval", "compare", str(base.path), str(candidate.path), "--fail-on-regression",
        cwd=tmp_path,
    )  # fmt: skip
    assert gate.returncode == 1
    assert "FAIL regression in exact" in gate.stderr


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.sets(st.integers(min_value=0, max_value=19)))
def test_compare_of_a_run_with_itself_finds_nothing(
    tmp_path: Path, broken: set[int]
) -> None:
    run = _run(tmp_path, "same", {f"c{i}" for i in broken}, n=20)
    result = compare(run, run)
    assert result["regressions"] == result["improvements"] == []
    for row in result["scorers"] + result["tags"]:
        assert (row["delta"], row["ci_low"], row["ci_high"]) == (0.0, 0.0, 0.0)


# -- the command line ------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aisys.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(cwd)},
    )


def test_eval_run_and_compare_as_ci_gates(tmp_path: Path) -> None:
    _jsonl(tmp_path / "cases.jsonl")
    (tmp_path / "bot.py").write_text(
        "ANSWERS = " + repr(ANSWERS) + "\n"
        "def answer(question):\n    return ANSWERS[question]\n"
        "def worse(question):\n    return 'No idea.'\n"
        "def tone(case, output):\n    return 'idea' not in output\n"
    )
    good = _cli("eval", "run", "cases.jsonl", "--target", "bot:answer", "--scorer", "exact",
                "--scorer", "bot:tone", "--name", "base", cwd=tmp_path)  # fmt: skip
    assert good.returncode == 0, good.stderr
    base = good.stdout.strip().splitlines()[-1]  # the run file's path, last
    assert Path(tmp_path / base).is_file()
    assert "0.667" in good.stdout

    under = _cli("eval", "run", "cases.jsonl", "--target", "bot:answer", "--scorer", "exact",
                 "--fail-under", "exact=0.9", cwd=tmp_path)  # fmt: skip
    assert under.returncode == 1
    assert "exact: mean 0.666667 is below 0.9" in under.stderr

    worse = _cli("eval", "run", "cases.jsonl", "--target", "bot:worse", "--scorer", "exact",
                 "--name", "worse", cwd=tmp_path)  # fmt: skip
    candidate = worse.stdout.strip().splitlines()[-1]
    compared = _cli(
        "eval", "compare", base, candidate, "--format", "json", cwd=tmp_path
    )
    assert compared.returncode == 0
    assert sorted(json.loads(compared.stdout)["regressions"]) == ["r1", "r2"]
    gate = _cli(
        "eval", "compare", base, candidate, "--fail-on-regression", cwd=tmp_path
    )
    assert "regressions (2): r1, r2" in gate.stdout
    assert gate.returncode == 0  # 2 of 3 cases: the interval still reaches 0

    for args in (
        ("eval", "run", "missing.jsonl", "--target", "bot:answer"),
        ("eval", "run", "cases.jsonl", "--target", "bot:nothing"),
        ("eval", "run", "cases.jsonl", "--target", "nomodule:answer"),
        ("eval", "run", "cases.jsonl", "--target", "bot:answer", "--scorer", "exactly"),
        (
            "eval",
            "run",
            "cases.jsonl",
            "--target",
            "bot:answer",
            "--fail-under",
            "exact",
        ),
        ("eval", "compare", "missing.json", candidate),
    ):
        bad = _cli(*args, cwd=tmp_path)
        assert bad.returncode == 2, args
        assert "Traceback" not in bad.stderr
        assert bad.stderr.startswith("aisys eval ")
