"""Human review and handoff: the queue on SQLite and a real PostgreSQL, guards that queue a
call or hand it to a person, decisions once (as scores), corrections back into datasets.

Real parts: the loopback wire server and the official openai client; SQLite across two
processes; a throwaway PostgreSQL cluster (stopped mid-run in one test); the CLI as a
subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

import aisys
from aisys.review.store import PostgresStore, SqliteStore
from aisys.testing import ScriptedTransport
from tests.wire_server import Reply, WireServer

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-proj-abcdef0123456789abcdef0123456789"


@pytest.fixture(params=["sqlite", "postgres"], name="queue")
def fixture_queue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[aisys.ReviewQueue]:
    """The same suite against both stores."""
    if request.param == "sqlite":
        yield aisys.ReviewQueue(str(tmp_path / "review.db"))
        return
    url = request.getfixturevalue("postgres_url")
    with aisys.ReviewQueue(url) as queue:
        assert isinstance(queue.store, PostgresStore)
        queue.store._run("DELETE FROM aisys_review_items", ())  # one table per session
        yield queue


# -- the store suite (both backends) ---------------------------------------------------


def test_submit_list_get_and_decide_once(queue: aisys.ReviewQueue) -> None:
    first = queue.submit(
        reason="sampled", input="How long?", output="Five days.", model="m"
    )
    second = queue.submit(reason="guard", output="Call me at +1 415 555 0100")
    assert [i.id for i in queue.items(status="open")] == [first.id, second.id]
    assert queue.get(second.id).output == "Call me at [PHONE_1]"  # redacted by default
    decided = queue.decide(first.id, "corrected", by="alice@example.com",
                           correction="Five working days.", note="be precise")  # fmt: skip
    assert (decided.status, decided.decided_by, decided.correction) == (
        "corrected", "alice@example.com", "Five working days.",
    )  # fmt: skip
    assert [i.id for i in queue.items(status="open")] == [second.id]
    with pytest.raises(aisys.ConfigError, match="already decided: corrected by alice"):
        queue.decide(first.id, "accepted", by="bob@example.com")
    with pytest.raises(aisys.ConfigError, match="no review item 999"):
        queue.get(999)


def test_fifty_threads_submitting_at_once_lose_nothing(
    queue: aisys.ReviewQueue,
) -> None:
    ids: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(50, timeout=30)

    def submit(n: int) -> None:
        start.wait()
        item = queue.submit(reason=f"thread {n}", output=f"answer {n}")
        with lock:
            ids.append(item.id)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 50
    assert 0 not in ids  # none fell back to the local file
    assert sorted(i.reason for i in queue.items()) == sorted(
        f"thread {n}" for n in range(50)
    )


def test_decide_checks_its_arguments(queue: aisys.ReviewQueue) -> None:
    item = queue.submit(reason="x", output="y")
    for args, kwargs, field in (
        ((item.id, "fine"), {"by": "a"}, "decision"),
        ((item.id, "accepted"), {"by": ""}, "by"),
        ((item.id, "corrected"), {"by": "a"}, "correction"),
    ):
        with pytest.raises(aisys.ConfigError) as caught:
            queue.decide(*args, **kwargs)
        assert caught.value.field == field


# -- SQLite across processes -----------------------------------------------------------


def test_sqlite_is_shared_by_the_processes_of_one_machine(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    script = (
        "import sys, aisys\n"
        "q = aisys.ReviewQueue(sys.argv[1])\n"
        "for n in range(20):\n"
        "    q.submit(reason=f'{sys.argv[2]} {n}', output='x')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AISYS_CACHE_DIR": str(tmp_path)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script, str(db), name], env=env)
        for name in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in processes] == [0, 0]
    items = aisys.ReviewQueue(str(db)).items()
    assert len({i.id for i in items}) == 40
    decide = (
        "import sys, aisys\n"
        "q = aisys.ReviewQueue(sys.argv[1])\n"
        "try:\n    q.decide(1, 'accepted', by=sys.argv[2])\n"
        "except aisys.ConfigError:\n    sys.exit(1)\n"
    )
    codes = sorted(
        subprocess.run([sys.executable, "-c", decide, str(db), who], env=env).returncode
        for who in ("ann", "bob")
    )
    assert codes == [0, 1]  # one decision, whichever process came first


# -- content ---------------------------------------------------------------------------


def test_secrets_never_reach_the_store_and_content_follows_review_content(
    tmp_path: Path, server: WireServer
) -> None:
    server.script(Reply(text=f"Your key is {KEY}, mail ana@example.com"))
    for content, kept_email in (("redacted", False), ("full", True)):
        aisys.configure(cache_dir=tmp_path / content, review_content=content)
        llm = aisys.LLM(
            "openai:gpt-4o-mini", base_url=server.base_url, api_key="sk-test-api-key-42",
            guards=[aisys.guards.Secrets(action="review")],
        )  # fmt: skip
        server.script(Reply(text=f"Your key is {KEY}, mail ana@example.com"))
        assert KEY in llm.chat(f"my key {KEY}").text  # review lets the answer through
        (item,) = aisys.ReviewQueue().items()
        assert "[SECRET_1]" in (item.output or "")
        assert ("ana@example.com" in (item.output or "")) is kept_email
        raw = b"".join(p.read_bytes() for p in (tmp_path / content).glob("review.db*"))
        assert KEY.encode() not in raw
        assert b"sk-test-api-key-42" not in raw


# -- guards with the official client ---------------------------------------------------


def test_review_and_handoff_guards_around_the_official_client(
    tmp_path: Path, client: openai.OpenAI, server: WireServer
) -> None:
    aisys.configure(
        cache_dir=tmp_path, exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl"
    )

    @aisys.traced_llm(guards=[aisys.guards.PII(action="review"),
                              aisys.guards.Secrets(action="handoff")])  # fmt: skip
    def answer(question: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    server.script(Reply(text="Call Ana on +1 415 555 0100."), Reply(text=f"Use {KEY}."))
    reply = answer("Who can help me?")
    assert "555 0100" in reply.choices[0].message.content  # answered, and queued
    with pytest.raises(aisys.HandoffRequired) as caught:
        answer("What is the admin key?")
    handed = caught.value
    assert handed.item_id is not None
    assert "the answer was withheld" in str(handed)
    queue = aisys.ReviewQueue()
    reviewed, withheld = queue.items()
    assert "guard 'pii' found PHONE in the output" in reviewed.reason
    assert withheld.id == handed.item_id
    assert withheld.output == "Use [SECRET_1]."
    assert withheld.input == "What is the admin key?"
    assert withheld.metadata == {"input_name": "question"}
    assert withheld.trace_id is not None


def test_an_input_handoff_sends_nothing(tmp_path: Path, server: WireServer) -> None:
    aisys.configure(cache_dir=tmp_path)
    llm = aisys.LLM("openai:gpt-4o-mini", base_url=server.base_url, api_key="k",
                    guards=[aisys.guards.Secrets(action="handoff")])  # fmt: skip
    with pytest.raises(aisys.HandoffRequired, match="nothing was sent"):
        llm.chat(f"here is my key {KEY}")
    assert server.requests == []
    (item,) = aisys.ReviewQueue().items()
    assert item.output is None


def test_a_stream_handoff_happens_at_the_end_and_says_chunks_were_delivered(
    tmp_path: Path, server: WireServer
) -> None:
    aisys.configure(cache_dir=tmp_path)
    server.script(Reply(text=f"Your admin key is {KEY} keep it"))
    llm = aisys.LLM("openai:gpt-4o-mini", base_url=server.base_url, api_key="k",
                    guards=[aisys.guards.Secrets(action="handoff")])  # fmt: skip
    seen: list[str] = []

    def read() -> None:
        with llm.stream("key?") as stream:
            seen.extend(chunk.text for chunk in stream)

    with pytest.raises(aisys.HandoffRequired) as caught:
        read()
    assert seen  # delivered before the end
    assert caught.value.delivered_chunks == len(seen)
    assert "chunks were already delivered" in str(caught.value)
    (item,) = aisys.ReviewQueue().items()
    assert item.id == caught.value.item_id


# -- Review(sample=, below=) -----------------------------------------------------------


def test_sampled_and_low_scored_calls_are_queued_off_the_callers_path(
    tmp_path: Path,
) -> None:
    aisys.configure(
        cache_dir=tmp_path, exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl"
    )
    queue = aisys.ReviewQueue()
    sampled = aisys.LLM("scripted:m", transport=ScriptedTransport(["a", "b"]),
                        review=aisys.Review(queue, sample=1.0))  # fmt: skip
    sampled.chat("q")
    answered = aisys.LLM(
        "scripted:m",
        transport=ScriptedTransport(["I'm sorry, but I can't help with that.", "Sure."]),
        scorers=[lambda case, output: aisys.Score("helpful", 0.0 if "sorry" in output.text else 1.0)],
        review=aisys.Review(queue, below={"helpful": 0.5}),
    )  # fmt: skip
    low = answered.chat("q")
    answered.chat("q")
    assert aisys.flush(10.0)
    reasons = [i.reason for i in queue.items()]
    assert reasons == ["sampled for review", "score helpful = 0 is below 0.5"]
    assert queue.items()[1].span_id == low.span_id


def test_review_arguments_are_checked() -> None:
    for make, field in (
        (lambda: aisys.Review(sample=2), "sample"),
        (lambda: aisys.Review(queue="db"), "queue"),
        (lambda: aisys.Review(below={"x": "low"}), "below"),
        (lambda: aisys.LLM("scripted:m", review="yes"), "review"),
        (
            lambda: aisys.LLM("scripted:m", review=aisys.Review(below={"x": 0.5})),
            "review",
        ),
        (lambda: aisys.ReviewQueue(store=3), "store"),
        (lambda: aisys.guards.PII(action="escalate"), "action"),
    ):
        with pytest.raises(aisys.ConfigError) as caught:
            make()
        assert caught.value.field == field


# -- decisions as scores, callbacks, export round trip ---------------------------------


def test_a_decision_is_a_human_review_score_and_reaches_callbacks(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "t.jsonl"
    aisys.configure(cache_dir=tmp_path, exporters=["jsonl"], jsonl_path=traces)
    decided: list[aisys.ReviewItem] = []
    queue = aisys.ReviewQueue(on_decision=decided.append)
    response = aisys.LLM("scripted:m", transport=ScriptedTransport(["a"])).chat("q")
    item = queue.submit(response, reason="spot check")
    queue.decide(item.id, "rejected", by="alice@example.com", note="wrong policy")
    aisys.flush()
    lines = [json.loads(line) for line in traces.read_text().splitlines()]
    (score,) = [r for r in lines if r.get("event") == "gen_ai.evaluation.result"]
    assert score["span_id"] == response.span_id
    assert score["attributes"]["gen_ai.evaluation.name"] == "human_review"
    assert score["attributes"]["gen_ai.evaluation.score.label"] == "rejected"
    assert [d.status for d in decided] == ["rejected"]
    report = subprocess.run(
        [sys.executable, "-m", "aisys.cli", "report", str(traces), "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    (row,) = json.loads(report.stdout)
    assert (row["reviews"], row["corrections"]) == (1, 0)


def test_export_reads_back_as_a_dataset_and_runs(tmp_path: Path) -> None:
    aisys.configure(cache_dir=tmp_path)
    queue = aisys.ReviewQueue()
    kept = queue.submit(
        reason="x", input="How long do refunds take?", output="Five days."
    )
    fixed = queue.submit(reason="x", input="Can I cancel?", output="No.")
    dropped = queue.submit(reason="x", input="Hi", output="Bye")
    queue.decide(kept.id, "accepted", by="a")
    queue.decide(fixed.id, "corrected", by="a", correction="Yes, within 24 hours.")
    queue.decide(dropped.id, "rejected", by="a")
    assert queue.export(tmp_path / "evals" / "from_review.jsonl") == 2
    dataset = aisys.Dataset.load(tmp_path / "evals" / "from_review.jsonl")
    assert [c.expected for c in dataset] == ["Five days.", "Yes, within 24 hours."]
    run = aisys.evaluate(
        dataset, lambda input: "Five days.", [aisys.scorers.Exact()],
        out_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert run.summary["exact"]["mean"] == 0.5


# -- the CLI ---------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aisys.cli", "review", *args],
        cwd=cwd, capture_output=True, text=True, timeout=60,
        env={**os.environ, "AISYS_CACHE_DIR": str(cwd / "cache")},
    )  # fmt: skip


def test_the_review_commands(tmp_path: Path) -> None:
    aisys.configure(cache_dir=tmp_path / "cache")
    queue = aisys.ReviewQueue()
    first = queue.submit(reason="guard 'pii' found EMAIL", input="q1", output="a1")
    queue.submit(reason="sampled", input="q2", output="a2")
    listed = _cli("list", "--status", "open", "--format", "json", cwd=tmp_path)
    assert [i["id"] for i in json.loads(listed.stdout)] == [1, 2]
    assert "guard 'pii'" in _cli("list", cwd=tmp_path).stdout
    assert "a1" in _cli("show", str(first.id), cwd=tmp_path).stdout
    done = _cli("correct", "1", "--output", "the right answer", "--by", "alice@example.com",
                cwd=tmp_path)  # fmt: skip
    assert (done.returncode, done.stdout.strip()) == (
        0,
        "review item 1: corrected by alice@example.com",
    )
    again = _cli("accept", "1", "--by", "bob@example.com", cwd=tmp_path)
    assert again.returncode == 1
    assert "already decided" in again.stderr
    for args in (("show", "99"), ("accept", "99"), ("list", "--status", "closed")):
        bad = _cli(*args, cwd=tmp_path)
        assert bad.returncode == 2, args
        assert "Traceback" not in bad.stderr
    exported = _cli("export", "--dataset", "evals/from_review.jsonl", cwd=tmp_path)
    assert exported.stdout.strip() == "wrote 1 cases to evals/from_review.jsonl"
    assert (
        aisys.Dataset.load(tmp_path / "evals" / "from_review.jsonl")[0].expected
        == "the right answer"
    )


# -- PostgreSQL stopped mid-run ---------------------------------------------------------


def test_postgres_stopped_mid_run_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.postgres import Cluster

    cluster = Cluster()
    cluster.start()
    try:
        aisys.configure(cache_dir=tmp_path / "cache")
        queue = aisys.ReviewQueue(cluster.url)
        request_close = queue.close
        queue.submit(reason="before", output="x")
        cluster.stop()
        with caplog.at_level(logging.WARNING, logger="aisys"):
            while_down = [
                queue.submit(reason=f"down {n}", output="x") for n in range(3)
            ]
        assert [i.id for i in while_down] == [
            0,
            0,
            0,
        ]  # kept locally, the call unharmed
        assert queue.errors == 3
        assert queue.pending() == 3
        assert (
            sum("could not be reached" in r.getMessage() for r in caplog.records) == 1
        )
        cluster.start()
        queue.submit(reason="after", output="x")  # sends what waited, first
        assert [i.reason for i in queue.items()] == [
            "before",
            "down 0",
            "down 1",
            "down 2",
            "after",
        ]
        assert queue.pending() == 0
        request_close()
    finally:
        cluster.remove()


def test_stores_have_one_interface() -> None:
    for store in (SqliteStore, PostgresStore):
        for method in ("add", "get", "items", "decide"):
            assert callable(getattr(store, method))
