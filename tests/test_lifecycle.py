"""One call lifecycle: every entry point by every way a call ends, the same rules.

Each call, whatever made it and however it ended, gives exactly one logical span and
one log event, and is metered by the same rule (docs/telemetry.md, "One call, one
ending"): priced from the usage the provider reported — or counted, marked estimated,
for delivered text it reported none for — and nothing for a call that sent nothing or
failed before any answer.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

import aisys
from aisys import guards
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer

MODEL = "gpt-4o-mini"
BLOCKED = "forbidden words"


_OPENED: list[aisys.LLM] = []
_CLIENTS: list[openai.OpenAI] = []


def _llm(server: WireServer, model: str = f"openai:{MODEL}") -> aisys.LLM:
    """An LLM on the loopback server (closed by `_run` when the call is over)."""
    _OPENED.append(llm := _make_llm(server, model))
    return llm


def _make_llm(server: WireServer, model: str) -> aisys.LLM:
    return aisys.LLM(
        model,
        base_url=server.base_url,
        api_key="sk-aisys-test-key-k",
        retry=None,
        price_as="openai",
        guards=[guards.Pattern("forbidden", name="forbidden"), guards.Secrets()],
    )


def _client(server: WireServer) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-aisys-test-key-c", base_url=server.base_url, max_retries=0
    )


def _aclient(server: WireServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="sk-aisys-test-key-c", base_url=server.base_url, max_retries=0
    )


_DECORATOR = {
    "guards": [guards.Pattern("forbidden", name="forbidden"), guards.Secrets()],
    "provider": "openai",
}


def _entry(name: str, server: WireServer) -> Callable[[str], Any]:
    """A function of the prompt that makes one call through entry point ``name``.

    Its result is what a caller holds: an answer, or a stream still to be read.
    """
    if name == "LLM.chat":
        return lambda prompt: _llm(server).chat(prompt)
    if name == "LLM.achat":
        return lambda prompt: _llm(server).achat(prompt)
    if name == "LLM.stream":
        return lambda prompt: _llm(server).stream(prompt)
    if name == "LLM.astream":
        return lambda prompt: _llm(server).astream(prompt)
    if name == "LLM.embed":
        return lambda prompt: _llm(server, "openai:text-embedding-3-small").embed(
            [prompt]
        )
    if name == "LLM.aembed":
        return lambda prompt: _llm(server, "openai:text-embedding-3-small").aembed(
            [prompt]
        )
    if name == "traced sync":

        @aisys.traced_llm(**_DECORATOR)
        def answer(prompt: str) -> Any:
            with _client(server) as client:
                return client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}]
                )

        return answer
    if name == "traced async":

        @aisys.traced_llm(**_DECORATOR)
        async def aanswer(prompt: str) -> Any:
            async with _aclient(server) as client:
                return await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": prompt}]
                )

        return aanswer
    if name == "traced generator":

        @aisys.traced_llm(model=MODEL, **_DECORATOR)
        def words(prompt: str) -> Iterator[str]:
            with _client(server) as client:
                stream = client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": prompt}],
                    stream=True,
                )
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content

        return words
    if name == "traced async generator":

        @aisys.traced_llm(model=MODEL, **_DECORATOR)
        async def awords(prompt: str) -> Any:
            async with _aclient(server) as client:
                stream = await client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": prompt}],
                    stream=True,
                )
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        yield chunk.choices[0].delta.content

        return awords
    assert name == "SDK stream"
    client = _client(server)
    _CLIENTS.append(client)

    @aisys.traced_llm(**_DECORATOR)
    def sdk_stream(prompt: str) -> Any:
        return client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": prompt}],
            stream=True,
            stream_options={"include_usage": True},
        )

    return sdk_stream


STREAMS = {
    "LLM.stream",
    "LLM.astream",
    "traced generator",
    "traced async generator",
    "SDK stream",
}
ASYNC = {"LLM.achat", "LLM.astream", "LLM.aembed", "traced async", "traced async generator"}
ENTRIES = [
    "LLM.chat",
    "LLM.achat",
    "LLM.stream",
    "LLM.astream",
    "LLM.embed",
    "LLM.aembed",
    "traced sync",
    "traced async",
    "traced generator",
    "traced async generator",
    "SDK stream",
]


async def _consume(result: Any, *, stop_after: int | None = None) -> Any:
    """Read what a caller holds to its end (or close it after ``stop_after`` chunks)."""
    if inspect.iscoroutine(result):
        result = await result
    if hasattr(result, "__aiter__"):
        seen = 0
        async for _ in result:
            seen += 1
            if stop_after is not None and seen >= stop_after:
                await (result.aclose() if hasattr(result, "aclose") else result.close())
                break
        return result
    if hasattr(result, "__next__") or (
        hasattr(result, "__iter__") and not hasattr(result, "model_dump")
    ):
        for seen, _ in enumerate(result, 1):
            if stop_after is not None and seen >= stop_after:
                result.close()
                break
    return result


def _run(entry: str, server: WireServer, prompt: str, stop_after: int | None) -> None:
    call = _entry(entry, server)

    async def go() -> None:
        try:
            await _consume(call(prompt), stop_after=stop_after)
        finally:
            await _close_opened()

    asyncio.run(go())


async def _close_opened() -> None:
    while _OPENED:
        await _OPENED.pop().aclose()
    while _CLIENTS:
        _CLIENTS.pop().close()


def _one_call(seen: Captured) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one logical span's attributes and the one log event; fails otherwise."""
    spans = [
        dict(span.attributes or {})
        for span in seen.spans
        if "aisys.attempt.number" not in (span.attributes or {})
    ]
    events = [e for e in seen.logs if e["event"] == "gen_ai.call"]
    assert len(spans) == 1, [s.get("gen_ai.operation.name") for s in spans]
    assert len(events) == 1
    return spans[0], events[0]


@pytest.fixture(name="fresh")
def fixture_fresh() -> None:
    aisys.testing.reset()


@pytest.mark.parametrize("entry", ENTRIES)
def test_an_answered_call_is_one_span_one_event_and_priced(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    _run(entry, server, "hello there", None)
    span, event = _one_call(seen)
    assert "error.type" not in span
    assert span["aisys.cost.status"] in ("priced", "estimated")
    assert span["aisys.cost.usd"] > 0
    assert event["aisys.cost.usd"] == span["aisys.cost.usd"]


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_call_that_failed_after_its_request_is_one_span_one_event_unbilled(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    server.default = Reply(status=500)
    try:
        with pytest.raises(Exception, match=r"500|Internal|error") as raised:
            _run(entry, server, "hello there", None)
    finally:
        server.default = Reply()
    span, event = _one_call(seen)
    assert span["error.type"]
    assert event["status"] == "error"
    assert len(server.requests) == 1
    assert not isinstance(raised.value, aisys.GuardError)
    # Nothing was reported billed: no cost, never $0.
    assert "aisys.cost.usd" not in span
    assert "aisys.cost.status" not in span


@pytest.mark.parametrize("entry", ENTRIES)
def test_a_call_refused_before_any_request_is_one_span_one_event_unbilled(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    with pytest.raises(aisys.GuardError):
        _run(entry, server, BLOCKED, None)
    span, event = _one_call(seen)
    assert span["error.type"] == "aisys.GuardError"
    assert event["status"] == "error"
    assert server.requests == []
    assert "aisys.cost.usd" not in span


@pytest.mark.parametrize("entry", sorted(STREAMS))
def test_a_stream_closed_early_is_one_span_one_event_billed_for_what_it_delivered(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    server.default = Reply(text="one two three four five six")
    try:
        _run(entry, server, "hello there", 2)
    finally:
        server.default = Reply()
    span, _ = _one_call(seen)
    assert span["aisys.stream.closed_early"] is True
    assert "error.type" not in span
    # The provider reported no usage before the end: what was delivered is counted.
    assert span["aisys.cost.status"] == "estimated"
    assert span["aisys.cost.usd"] > 0


@pytest.mark.parametrize("entry", sorted(ASYNC - STREAMS))
def test_a_cancelled_call_is_one_span_one_event_unbilled(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    server.default = Reply(delay_s=2.0)
    call = _entry(entry, server)

    async def go() -> None:
        try:
            await asyncio.wait_for(call("hello there"), 0.2)
        finally:
            await _close_opened()

    try:
        with pytest.raises(TimeoutError):
            asyncio.run(go())
    finally:
        server.default = Reply()
    span, event = _one_call(seen)
    assert span["error.type"].endswith("CancelledError")
    assert event["status"] == "error"
    assert "aisys.cost.usd" not in span


SECRET = "sk-proj-" + "q1W2e3R4t5Y6u7I8o9P0a1S2d3F4"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if "embed" not in e])
def test_an_answer_an_output_guard_withheld_is_one_span_one_event_and_billed(
    entry: str, server: WireServer, seen: Captured, fresh: None
) -> None:
    """The provider billed the answer: withholding it does not make it free."""
    server.default = Reply(text=f"the key is {SECRET}")
    try:
        with pytest.raises(aisys.GuardError):
            _run(entry, server, "hello there", None)
    finally:
        server.default = Reply()
    span, event = _one_call(seen)
    assert span["error.type"] == "aisys.GuardError"
    assert event["status"] == "error"
    assert span["aisys.cost.status"] in ("priced", "estimated")
    assert span["aisys.cost.usd"] > 0


def test_a_cancelled_call_gives_its_budget_reservation_back(
    server: WireServer, fresh: None
) -> None:
    """Its steps' finishers run too: nothing was billed, so nothing stays reserved."""
    budget = aisys.Budget("0.0005", per="day", store="memory")  # one call's estimate
    fits_once = aisys.LLM(
        f"openai:{MODEL}",
        base_url=server.base_url,
        api_key="sk-aisys-test-key-k",
        retry=None,
        price_as="openai",
        budget=budget,
    )

    async def go() -> None:
        async with fits_once:
            server.default = Reply(delay_s=2.0)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(fits_once.achat("hello there"), 0.2)
            server.default = Reply()
            await fits_once.achat("hello there")  # refused if the first still counted

    try:
        asyncio.run(go())
    finally:
        server.default = Reply()
