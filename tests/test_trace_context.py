"""`aisys.trace()` blocks: parent span, inherited user/session/tags, threads and executors."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

import aisys
from aisys.testing import Captured


@aisys.traced_llm(model="m")
def answer(question: str) -> str:
    return "ok"


def test_calls_inherit_the_trace(seen: Captured) -> None:
    """User, session, tags and metadata reach the call spans and their log events."""
    with aisys.trace(
        "answer-ticket",
        user_id="u-1",
        session_id="s-9",
        tags=["support"],
        metadata={"ticket": 42},
    ) as t:
        answer("q")

    root = seen.span("answer-ticket")
    call = seen.span("chat m")
    assert root.parent is None
    assert call.parent.span_id == root.context.span_id
    assert t.trace_id == f"{root.context.trace_id:032x}"
    for span in (root, call):
        assert span.attributes["user.id"] == "u-1"
        assert span.attributes["session.id"] == "s-9"
        assert span.attributes["aisys.tags"] == ("support",)
        assert span.attributes["aisys.metadata.ticket"] == 42
    call_event = next(e for e in seen.logs if e["event"] == "gen_ai.call")
    assert call_event["user.id"] == "u-1"
    assert call_event["trace_id"] == t.trace_id
    assert [e["event"] for e in seen.logs] == ["gen_ai.call", "aisys.trace"]


def test_nested_traces_merge(seen: Captured) -> None:
    """An inner trace keeps the outer user, adds tags, overrides what it sets."""
    with aisys.trace("outer", user_id="u", tags=["a"], metadata={"x": 1}):
        with aisys.trace("inner", session_id="s", tags=["b"], metadata={"y": "2"}):
            answer("q")
        answer("q2")

    spans = [s for s in seen.spans if s.name == "chat m"]
    inner_call, outer_call = spans
    assert inner_call.attributes["aisys.tags"] == ("a", "b")
    assert inner_call.attributes["session.id"] == "s"
    assert inner_call.attributes["user.id"] == "u"
    assert inner_call.attributes["aisys.metadata.y"] == "2"
    assert "session.id" not in outer_call.attributes
    assert outer_call.attributes["aisys.tags"] == ("a",)


def test_no_scope_outside(seen: Captured) -> None:
    """After the block, calls carry no user."""
    with aisys.trace("t", user_id="u"):
        pass
    answer("q")
    assert "user.id" not in seen.span("chat m").attributes


def test_error_inside_the_block(seen: Captured) -> None:
    """The trace span records an error that leaves the block."""
    with pytest.raises(RuntimeError), aisys.trace("t"):
        raise RuntimeError("x")
    assert seen.span("t").status.status_code.name == "ERROR"


async def test_async_with(seen: Captured) -> None:
    """`async with` works the same, across awaits and tasks."""
    async with aisys.trace("async-ticket", user_id="u-2"):
        await asyncio.gather(
            asyncio.to_thread(aisys.context.wrap(answer), "a"), asyncio.sleep(0)
        )

        @aisys.traced_llm(model="m2")
        async def aanswer() -> str:
            return "ok"

        await asyncio.create_task(aanswer())

    root = seen.span("async-ticket")
    for name in ("chat m", "chat m2"):
        span = seen.span(name)
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["user.id"] == "u-2"


def test_executor_with_wrap(seen: Captured) -> None:
    """`aisys.context.wrap` carries the trace into a thread pool."""
    with aisys.trace("batch", user_id="u-3"), ThreadPoolExecutor(2) as pool:
        list(pool.map(aisys.context.wrap(answer), ["a", "b", "c"]))

    root = seen.span("batch")
    calls = [s for s in seen.spans if s.name == "chat m"]
    assert len(calls) == 3
    assert all(s.parent.span_id == root.context.span_id for s in calls)
    assert all(s.attributes["user.id"] == "u-3" for s in calls)


def test_run_in_thread(seen: Captured) -> None:
    """`aisys.context.run_in_thread` runs in the trace and returns a Future."""
    with aisys.trace("bg", session_id="s-4"):
        future = aisys.context.run_in_thread(answer, "q")
        assert future.result(timeout=10) == "ok"

    assert seen.span("chat m").attributes["session.id"] == "s-4"
    assert seen.span("chat m").parent.span_id == seen.span("bg").context.span_id


def test_plain_thread_without_helper_loses_the_trace(seen: Captured) -> None:
    """Without the helper a new thread starts outside the trace (why the helper exists)."""
    import threading

    with aisys.trace("t", user_id="u"):
        worker = threading.Thread(target=answer, args=("q",))
        worker.start()
        worker.join()

    assert "user.id" not in seen.span("chat m").attributes


def test_a_call_after_a_trace_carries_none_of_its_facts(seen: Captured) -> None:
    """Spans of one function or LLM share their fixed start; a trace's facts stay in it."""
    from aisys.testing import ScriptedTransport

    llm = aisys.LLM(
        "openai:gpt-test", api_key="sk-aisys-test-key-k", transport=ScriptedTransport()
    )
    with aisys.trace("ticket", user_id="u-7", tags=["vip"]):
        answer("q")
        llm.chat("q")
    answer("q")
    llm.chat("q")

    for name in ("chat m", "chat gpt-test"):
        inside, after = (s for s in seen.spans if s.name == name)
        assert inside.attributes["user.id"] == "u-7"
        assert inside.attributes["aisys.tags"] == ("vip",)
        assert "user.id" not in after.attributes
        assert "aisys.tags" not in after.attributes
        assert after.attributes["gen_ai.operation.name"] == "chat"
