"""Retries, fallbacks, one deadline and circuit breakers, against real loopback servers.

Every test runs sync and async (the `mode` fixture); waits are simulated with
`aisys.testing.fake_clock`, so Retry-After of seconds costs no real time.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest

import aisys
from aisys.testing import Captured, FakeClock, fake_clock
from tests.wire_server import Reply, WireServer

NO_JITTER = aisys.Retry(max_attempts=3, initial=0.5, max_delay=20, jitter=False)


@pytest.fixture(name="clock")
def fixture_clock() -> Iterator[FakeClock]:
    with fake_clock() as clock:
        yield clock


@pytest.fixture(name="backup")
def fixture_backup() -> Iterator[WireServer]:
    """A second, healthy provider endpoint for fallbacks."""
    with WireServer() as server:
        yield server


@pytest.fixture(name="mode", params=["sync", "async"])
def fixture_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _chat(llm: aisys.LLM, mode: str, text: str = "hi") -> aisys.ChatResponse:
    return llm.chat(text) if mode == "sync" else await llm.achat(text)


async def _stream(llm: aisys.LLM, mode: str) -> tuple[list[str], Any]:
    if mode == "sync":
        stream = llm.stream("hi")
        return [c.text for c in stream], stream
    astream = llm.astream("hi")
    return [c.text async for c in astream], astream


def _llm(server: WireServer, **kwargs: Any) -> aisys.LLM:
    kwargs.setdefault("retry", NO_JITTER)
    kwargs.setdefault("api_key", "sk-aisys-test-key-k")
    return aisys.LLM("openai:primary", base_url=server.base_url, timeout=5, **kwargs)


def _root(seen: Captured) -> Any:
    """The logical call's span (attempt spans share its name, as the conventions ask)."""
    roots = [s for s in seen.spans if s.parent is None]
    assert len(roots) == 1, [s.name for s in roots]
    return roots[0]


def _attempt_spans(seen: Captured) -> list[Any]:
    root = _root(seen)
    return [
        s
        for s in seen.spans
        if s.parent is not None and s.parent.span_id == root.context.span_id
    ]


@pytest.mark.parametrize(
    ("headers", "asked", "expected"),
    [
        ({"retry-after": "7"}, 7.0, 7.0),
        ({"retry-after-ms": "1500"}, 1.5, 1.5),
        ({"retry-after": "60"}, 60.0, 20.0),  # capped by max_delay
    ],
)
async def test_rate_limit_waits_what_the_server_asked(
    server: WireServer,
    clock: FakeClock,
    seen: Captured,
    mode: str,
    headers: dict[str, str],
    asked: float,
    expected: float,
) -> None:
    """429 + Retry-After: one wait of exactly that (capped), then success."""
    server.script(Reply(status=429, headers=headers), Reply(text="ok"))
    async with _llm(server) as llm:
        response = await _chat(llm, mode)

    assert response.text == "ok"
    assert response.attempts == 2
    assert clock.sleeps == [expected]
    assert len(server.requests) == 2
    root = _root(seen)
    assert root.attributes["aisys.retry.attempts"] == 2
    assert root.attributes["aisys.fallback.index"] == 0
    first, second = _attempt_spans(seen)
    assert first.attributes["error.type"] == "aisys.RateLimitError"
    assert first.attributes["http.response.status_code"] == 429
    assert first.attributes["aisys.attempt.retry_after_s"] == asked
    assert first.status.status_code.name == "ERROR"
    assert second.attributes["aisys.attempt.wait_s"] == expected
    assert second.attributes["aisys.attempt.outcome"] == "ok"
    (event,) = seen.logs
    assert [a["outcome"] for a in event["aisys.attempts"]] == ["error", "ok"]


async def test_retry_after_http_date(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """An HTTP-date Retry-After is honoured as seconds from now."""
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    server.script(Reply(status=503, headers={"retry-after": when}), Reply())
    async with _llm(server) as llm:
        await _chat(llm, mode)
    (wait,) = clock.sleeps
    assert 2.0 <= wait <= 5.0  # whole seconds on the wire, measured from "now"


async def test_server_errors_then_success(
    server: WireServer, clock: FakeClock, seen: Captured, mode: str
) -> None:
    """500, 500, 200: three requests, exponential waits, the answer."""
    server.script(Reply(status=500), Reply(status=500), Reply(text="third time"))
    async with _llm(server) as llm:
        response = await _chat(llm, mode)
    assert response.text == "third time"
    assert response.attempts == 3
    assert clock.sleeps == [0.5, 1.0]
    assert len(server.requests) == 3
    assert [s.attributes["aisys.attempt.number"] for s in _attempt_spans(seen)] == [
        1,
        2,
        3,
    ]


async def test_jittered_waits_stay_within_bounds(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """With jitter, each wait is between 0 and the exponential cap."""
    server.script(Reply(status=502), Reply(status=502), Reply(status=502), Reply())
    async with _llm(
        server, retry=aisys.Retry(max_attempts=4, initial=1.0, max_delay=3.0)
    ) as llm:
        await _chat(llm, mode)
    assert len(clock.sleeps) == 3
    for number, wait in enumerate(clock.sleeps):
        assert 0 <= wait <= min(3.0, 1.0 * 2**number)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_client_errors_are_not_retried(
    server: WireServer, clock: FakeClock, mode: str, status: int
) -> None:
    """A request the provider rejects is not sent again."""
    server.script(Reply(status=status))
    async with _llm(server) as llm:
        with pytest.raises(aisys.ProviderError) as raised:
            await _chat(llm, mode)
    assert raised.value.status_code == status
    assert len(server.requests) == 1
    assert clock.sleeps == []


async def test_connection_reset_and_slow_response_are_retried(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """A reset connection and a response slower than the timeout are retried."""
    server.script(Reply(reset=True), Reply(delay_s=0.6), Reply(text="finally"))
    async with aisys.LLM(
        "openai:m", base_url=server.base_url, timeout=0.2, retry=NO_JITTER
    ) as llm:
        response = await _chat(llm, mode)
    assert response.text == "finally"
    assert response.attempts == 3


GARBAGE = [
    pytest.param(Reply(raw=b"<html>oops</html>", content_type="text/html"), id="html"),
    pytest.param(Reply(raw=b'{"id": "x", "object": "chat.com'), id="cut-json"),
    pytest.param(Reply(body={"id": "x", "object": "chat.completion"}), id="no-choices"),
    pytest.param(Reply(body=["not", "an", "object"]), id="json-list"),
]


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_garbage_body_is_retried(
    server: WireServer, clock: FakeClock, mode: str, garbage: Reply
) -> None:
    """A 200 that cannot be read is a provider fault: retried like a 502."""
    server.script(garbage)
    async with _llm(server) as llm:
        response = await _chat(llm, mode)
    assert response.text == "Hello from the wire."
    assert len(server.requests) == 2


@pytest.mark.parametrize("garbage", GARBAGE)
async def test_garbage_body_moves_to_the_fallback(
    server: WireServer, backup: WireServer, clock: FakeClock, mode: str, garbage: Reply
) -> None:
    """Garbage from every retry of the primary: the healthy fallback answers."""
    server.default = garbage
    fallback = aisys.LLM("openai:b", base_url=backup.base_url)
    try:
        async with _llm(server, fallbacks=[fallback]) as llm:
            response = await _chat(llm, mode)
    finally:
        server.default = Reply()
    assert response.fallback_index == 1
    assert len(server.requests) == 3


async def test_garbage_error_says_what_came(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """When nothing else answers, the error still says what was wrong with the body."""
    server.script(Reply(raw=b"<html>oops</html>", content_type="text/html"))
    async with _llm(server, retry=None) as llm:
        with pytest.raises(aisys.ResponseFormatError) as raised:
            await _chat(llm, mode)
    assert isinstance(raised.value, aisys.ServerError)
    assert raised.value.retryable
    assert "not JSON" in str(raised.value)
    assert "text/html" in str(raised.value)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(
            Reply(raw=b"data: {not json\n\n", content_type="text/event-stream"),
            id="bad-event",
        ),
        pytest.param(
            Reply(raw=b"<html>oops</html>", content_type="text/html"), id="html"
        ),
    ],
)
async def test_garbage_stream_before_the_first_chunk_falls_back(
    server: WireServer, backup: WireServer, clock: FakeClock, mode: str, garbage: Reply
) -> None:
    """A stream broken before its first chunk: retried, then the fallback streams."""
    server.default = garbage
    fallback = aisys.LLM("openai:b", base_url=backup.base_url)
    try:
        async with _llm(server, fallbacks=[fallback]) as llm:
            pieces, stream = await _stream(llm, mode)
    finally:
        server.default = Reply()
    assert "".join(pieces) == "Hello from the wire."
    assert stream.response.fallback_index == 1
    assert len(server.requests) == 3


async def test_decorator_retries_an_unreadable_sdk_answer(
    server: WireServer, clock: FakeClock
) -> None:
    """The official client's 2xx validation error is a provider fault in decorator mode too."""
    server.script(Reply(body={"id": "x", "object": "chat.completion", "choices": 3}))
    client = openai.OpenAI(
        api_key="sk-aisys-test-key-k",
        base_url=server.base_url,
        max_retries=0,
        _strict_response_validation=True,
    )

    @aisys.traced_llm(retry=NO_JITTER)
    def ask(question: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    try:
        assert ask("hi").choices[0].message.content == "Hello from the wire."
    finally:
        client.close()
    assert len(server.requests) == 2


async def test_stream_cut_before_the_first_chunk_is_retried(
    server: WireServer, clock: FakeClock, seen: Captured, mode: str
) -> None:
    """Nothing reached the caller yet: the stream is opened again."""
    server.script(Reply(cut_after=0), Reply(text="whole answer"))
    async with _llm(server) as llm:
        pieces, stream = await _stream(llm, mode)
    assert "".join(pieces) == "whole answer"
    assert stream.response.attempts == 2
    assert len(server.requests) == 2
    assert _root(seen).attributes["aisys.retry.attempts"] == 2


async def test_stream_cut_after_the_first_chunk_is_not_retried(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """Once text reached the caller, the error says how much, and nothing is resent."""
    server.script(Reply(text="one two three", cut_after=2), Reply(text="never sent"))
    async with _llm(server) as llm:
        with pytest.raises(aisys.ProviderConnectionError, match="after 2 chunks"):
            await _stream(llm, mode)
    assert len(server.requests) == 1


async def test_primary_down_falls_back(
    server: WireServer, backup: WireServer, clock: FakeClock, seen: Captured, mode: str
) -> None:
    """After the primary's retries, the fallback answers; the span names it."""
    server.script(*[Reply(status=503)] * 3)
    backup.script(Reply(text="from the backup"))
    fallback = aisys.LLM("openai:backup-model", base_url=backup.base_url, retry=None)
    async with _llm(server, fallbacks=[fallback]) as llm:
        response = await _chat(llm, mode)
    assert response.text == "from the backup"
    assert response.fallback_index == 1
    assert response.attempts == 4
    assert len(server.requests) == 3
    assert len(backup.requests) == 1
    root = _root(seen)
    assert root.attributes["aisys.fallback.index"] == 1
    assert root.attributes["aisys.target"] == "openai:backup-model"
    assert root.attributes["gen_ai.response.model"] == "backup-model-2024-07-18"
    assert root.status.status_code.name == "UNSET"
    assert [s.attributes["gen_ai.request.model"] for s in _attempt_spans(seen)] == [
        "primary"
    ] * 3 + ["backup-model"]
    fallbacks = seen.metric_points("aisys.fallbacks")
    retries = seen.metric_points("aisys.retries")
    assert fallbacks[0].value == 1
    assert retries[0].value == 2


async def test_string_fallback_of_the_same_provider_inherits_the_endpoint(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """ "openai:other" as a fallback uses the primary's base_url and key."""
    server.script(Reply(status=500), Reply(text="other model"))
    async with _llm(server, retry=None, fallbacks=["openai:other"]) as llm:
        response = await _chat(llm, mode)
    assert response.text == "other model"
    assert [r.body["model"] for r in server.requests] == ["primary", "other"]
    assert server.requests[1].headers["authorization"] == "Bearer sk-aisys-test-key-k"


async def test_bad_request_does_not_fall_back(
    server: WireServer, backup: WireServer, mode: str
) -> None:
    """A malformed request would fail everywhere: it is raised at once."""
    server.script(Reply(status=400))
    fallback = aisys.LLM("openai:b", base_url=backup.base_url)
    async with _llm(server, fallbacks=[fallback]) as llm:
        with pytest.raises(aisys.BadRequestError):
            await _chat(llm, mode)
    assert backup.requests == []


async def test_context_length_error_falls_back(
    server: WireServer, backup: WireServer, mode: str
) -> None:
    """A prompt too long for the primary may go to a larger-context fallback."""
    server.script(
        Reply(
            status=400,
            body={
                "error": {
                    "message": "This model's maximum context length is 8192 tokens"
                }
            },
        )
    )
    fallback = aisys.LLM("openai:big-context", base_url=backup.base_url)
    async with _llm(server, fallbacks=[fallback]) as llm:
        response = await _chat(llm, mode)
    assert response.fallback_index == 1
    assert len(server.requests) == 1


async def test_all_targets_down(
    server: WireServer, backup: WireServer, clock: FakeClock, seen: Captured, mode: str
) -> None:
    """Every attempt is listed: target, error, status, elapsed."""
    server.script(Reply(status=503), Reply(status=429))
    backup.script(Reply(status=500))
    fallback = aisys.LLM("openai:b", base_url=backup.base_url, retry=None)
    async with _llm(
        server, retry=aisys.Retry(max_attempts=2, jitter=False), fallbacks=[fallback]
    ) as llm:
        with pytest.raises(aisys.AllTargetsFailedError) as raised:
            await _chat(llm, mode)
    attempts = raised.value.attempts
    assert [type(e) for e in raised.value.errors] == [
        aisys.ServerError,
        aisys.RateLimitError,
        aisys.ServerError,
    ]
    assert [(a.target, a.status_code) for a in attempts] == [
        ("openai:primary", 503),
        ("openai:primary", 429),
        ("openai:b", 500),
    ]
    assert all(a.elapsed_s >= 0 and a.outcome == "error" for a in attempts)
    assert isinstance(raised.value.__cause__, aisys.ServerError)
    assert "every target failed" in str(raised.value)
    root = _root(seen)
    assert root.attributes["error.type"] == "aisys.AllTargetsFailedError"
    assert root.attributes["aisys.retry.attempts"] == 3
    assert len(seen.logs) == 1


async def test_deadline_shorter_than_the_chain(
    server: WireServer, backup: WireServer, mode: str
) -> None:
    """One deadline for everything: a slow primary uses it up; no fallback request is made."""
    server.script(Reply(delay_s=1.5))
    fallback = aisys.LLM("openai:b", base_url=backup.base_url)
    async with _llm(server, fallbacks=[fallback], deadline=0.3) as llm:
        with pytest.raises(aisys.AllTargetsFailedError) as raised:
            await _chat(llm, mode)
    # Had the 5 s request timeout not been cut to the deadline, the slow answer (1.5 s)
    # would have arrived and the call succeeded.
    assert "deadline" in str(raised.value)
    assert raised.value.attempts[0].outcome == "error"
    assert isinstance(raised.value.errors[0], aisys.ProviderTimeoutError)
    assert raised.value.errors[0] is raised.value.attempts[0].error
    assert backup.requests == []


async def test_a_wait_past_the_deadline_fails_over_at_once(
    server: WireServer, backup: WireServer, clock: FakeClock, mode: str
) -> None:
    """Retry-After longer than the time left: no sleep, straight to the fallback."""
    server.script(Reply(status=429, headers={"retry-after": "10"}))
    fallback = aisys.LLM("openai:b", base_url=backup.base_url)
    async with _llm(server, fallbacks=[fallback], deadline=5.0) as llm:
        response = await _chat(llm, mode)
    assert clock.sleeps == []
    assert response.fallback_index == 1
    assert len(server.requests) == 1


async def test_circuit_breaker_opens_and_recovers(
    server: WireServer, backup: WireServer, clock: FakeClock, mode: str
) -> None:
    """Repeated failures open the breaker (skipped, no request); after the pause one trial closes it."""
    from aisys.testing import capture

    aisys.configure(circuit_failure_threshold=2, circuit_reset_timeout=30)
    server.script(Reply(status=500), Reply(status=500))
    fallback = aisys.LLM("openai:b", base_url=backup.base_url, retry=None)
    async with _llm(server, retry=None, fallbacks=[fallback]) as llm:
        with capture() as seen:
            await _chat(llm, mode)
            await _chat(llm, mode)
            assert len(server.requests) == 2
            skipped = await _chat(llm, mode)  # open: skipped without a request
            assert len(server.requests) == 2
            assert skipped.fallback_index == 1
            assert skipped.attempts == 1
            clock.advance(31)
            recovered = await _chat(llm, mode)  # half-open: one trial, it succeeds
            assert recovered.fallback_index == 0
            assert len(server.requests) == 3
            again = await _chat(llm, mode)
            assert again.fallback_index == 0
            outcomes = [s.attributes.get("aisys.attempt.outcome") for s in seen.spans]
            assert "skipped" in outcomes
            states = {
                p.attributes["aisys.target"]: p.value
                for p in seen.metric_points("aisys.circuit.state")
            }
            (key,) = [k for k in states if k.startswith("openai:primary@")]
            assert key.startswith(f"openai:primary@{server.base_url}#")
            assert states[key] == 0


async def test_failed_attempt_usage_is_kept(
    server: WireServer, clock: FakeClock, seen: Captured, mode: str
) -> None:
    """An Anthropic stream that fails after reporting its input tokens still counts them."""
    server.script(
        Reply(error_event=True, usage={"input_tokens": 20, "output_tokens": 0}),
        Reply(text="fine now", usage={"input_tokens": 20, "output_tokens": 2}),
    )
    async with aisys.LLM(
        "anthropic:claude-3-5-haiku-latest", base_url=server.root_url, retry=NO_JITTER
    ) as llm:
        pieces, stream = await _stream(llm, mode)
    assert "".join(pieces) == "fine now"
    assert stream.response.usage.input_tokens == 20
    root = _root(seen)
    assert (
        root.attributes["gen_ai.usage.input_tokens"] == 40
    )  # both attempts were billed
    first = _attempt_spans(seen)[0]
    assert first.attributes["error.type"] == "aisys.ServerError"


def test_retry_validation() -> None:
    """Nonsense policies are refused with the field named."""
    with pytest.raises(aisys.ConfigError, match="max_attempts"):
        aisys.Retry(max_attempts=0)
    with pytest.raises(aisys.ConfigError, match="deadline"):
        aisys.LLM("scripted:x", deadline=0)
    with pytest.raises(aisys.ConfigError, match=r"LLM\(timeout=\) takes positive seconds"):
        aisys.LLM("scripted:x", timeout=0)


def test_an_llm_s_route_is_fixed_once_made() -> None:
    """Retry, breaker and fallbacks are planned when the LLM is made: no silent change later."""
    llm = aisys.LLM("scripted:a", fallbacks=["scripted:b"], retry=None)
    for name, value in (
        ("retry", aisys.Retry(max_attempts=5)),
        ("circuit", None),
        ("fallbacks", ()),
    ):
        with pytest.raises(AttributeError, match=name):
            setattr(llm, name, value)
    assert llm.retry.max_attempts == 1
    assert [fallback.model for fallback in llm.fallbacks] == ["scripted:b"]


# -- decorator mode -------------------------------------------------------------------


def test_decorator_retries_the_official_client(
    server: WireServer, clock: FakeClock, seen: Captured
) -> None:
    """@traced_llm(retry=...) retries the openai SDK's rate-limit error, honouring Retry-After."""
    client = openai.OpenAI(
        api_key="sk-aisys-test-key-k", base_url=server.base_url, max_retries=0
    )
    server.script(Reply(status=429, headers={"retry-after": "3"}), Reply(text="done"))

    @aisys.traced_llm(model="gpt-4o-mini", retry=NO_JITTER)
    def ask(question: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    completion = ask("hi")
    client.close()
    assert completion.choices[0].message.content == "done"
    assert clock.sleeps == [3.0]
    root = _root(seen)
    assert root.attributes["aisys.retry.attempts"] == 2
    assert (
        root.attributes["gen_ai.usage.output_tokens"]
        == completion.usage.completion_tokens
    )


async def test_decorator_fallback_functions(clock: FakeClock, seen: Captured) -> None:
    """Fallback functions take the same arguments; the span says which one answered."""
    calls: list[str] = []

    async def backup(question: str) -> str:
        calls.append(f"backup:{question}")
        return "backup answer"

    @aisys.traced_llm(model="m", fallbacks=[backup])
    async def primary(question: str) -> str:
        calls.append(f"primary:{question}")
        raise ConnectionError("down")

    assert await primary("q") == "backup answer"
    assert calls == ["primary:q", "backup:q"]
    root = _root(seen)
    assert root.attributes["aisys.fallback.index"] == 1
    assert root.attributes["aisys.target"].endswith("backup")


def test_decorator_non_retryable_errors_propagate(clock: FakeClock) -> None:
    """An ordinary bug is not retried and reaches the caller unchanged."""
    attempts = []

    @aisys.traced_llm(model="m", retry=NO_JITTER)
    def broken() -> str:
        attempts.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        broken()
    assert attempts == [1]


def test_decorator_policy_validation() -> None:
    """Generators and mixed sync/async fallbacks are refused at decoration time."""

    def gen() -> Iterator[str]:
        yield "x"

    async def async_fallback() -> str:
        return "x"

    def sync_fn() -> str:
        return "x"

    with pytest.raises(aisys.ConfigError, match="generator"):
        aisys.traced_llm(retry=aisys.Retry())(gen)
    with pytest.raises(aisys.ConfigError, match="plain function"):
        aisys.traced_llm(fallbacks=[async_fallback])(sync_fn)


async def test_cancelling_a_call_mid_retry_ends_its_span(
    server: WireServer, seen: Captured
) -> None:
    """A task cancelled while waiting between attempts still ends in one span, marked failed."""
    import asyncio

    server.script(Reply(status=503, headers={"retry-after": "30"}))
    async with _llm(server, retry=aisys.Retry(max_attempts=2, max_delay=30)) as llm:
        task = asyncio.create_task(llm.achat("hi"))
        for _ in range(500):  # until the first request has arrived (at most 5 s)
            if server.requests:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    root = _root(seen)
    assert root.attributes["error.type"] == "asyncio.exceptions.CancelledError"
    assert len(seen.logs) == 1


async def test_cancelling_a_stream_while_it_opens(
    server: WireServer, seen: Captured
) -> None:
    """Cancelling while the stream waits for its first chunk ends its span once."""
    import asyncio

    server.script(Reply(delay_s=0.5, text="late"))
    async with _llm(server) as llm:

        async def consume() -> list[str]:
            return [chunk.text async for chunk in llm.astream("hi")]

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(seen.logs) == 1
    assert _root(seen).status.status_code.name == "ERROR"


async def test_two_keys_on_one_endpoint_do_not_share_a_breaker(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """One tenant's failures open its own breaker; the other key still reaches the server."""
    from aisys.pipeline.route import breaker_states

    circuit = aisys.CircuitBreaker(failure_threshold=2, reset_timeout=30)
    noisy = aisys.LLM(
        "openai:m",
        base_url=server.base_url,
        api_key="sk-aisys-test-key-tenant-a",
        retry=None,
        circuit=circuit,
    )
    quiet = aisys.LLM(
        "openai:m",
        base_url=server.base_url,
        api_key="sk-aisys-test-key-tenant-b",
        retry=None,
        circuit=circuit,
    )
    server.script(Reply(status=429), Reply(status=429))
    async with noisy, quiet:
        await _two_tenants(server, noisy, quiet, mode)
    states = breaker_states()
    assert sorted(states.values()) == ["closed", "open"]
    assert not any("aisys-test-key" in key for key in states)


async def _two_tenants(
    server: WireServer, noisy: aisys.LLM, quiet: aisys.LLM, mode: str
) -> None:
    for _ in range(2):
        with pytest.raises(aisys.RateLimitError):
            await _chat(noisy, mode)
    with pytest.raises(aisys.CircuitOpenError):
        await _chat(noisy, mode)
    assert len(server.requests) == 2
    response = await _chat(quiet, mode)
    assert response.text == "Hello from the wire."
    assert len(server.requests) == 3


async def test_circuit_thresholds_per_llm_and_opt_out(
    server: WireServer, clock: FakeClock, mode: str
) -> None:
    """circuit= overrides the settings' thresholds for one LLM; circuit=None never skips."""
    server.default = Reply(status=503)
    strict = _llm(server, retry=None, circuit=aisys.CircuitBreaker(1, 5.0))
    unguarded = _llm(
        server, retry=None, circuit=None, api_key="sk-aisys-test-key-other"
    )
    try:
        with pytest.raises(aisys.ServerError):
            await _chat(strict, mode)
        with pytest.raises(aisys.CircuitOpenError):
            await _chat(strict, mode)
        assert len(server.requests) == 1
        clock.advance(5.1)  # half-open after this LLM's own reset_timeout
        with pytest.raises(aisys.ServerError):
            await _chat(strict, mode)
        assert len(server.requests) == 2

        server.reset()
        for _ in range(8):
            with pytest.raises(aisys.ServerError):
                await _chat(unguarded, mode)
        assert len(server.requests) == 8
    finally:
        server.default = Reply()
        await strict.aclose()
        await unguarded.aclose()


def test_circuit_breaker_arguments_are_checked() -> None:
    """Bad thresholds are a ConfigError naming the argument."""
    with pytest.raises(aisys.ConfigError, match="failure_threshold"):
        aisys.CircuitBreaker(failure_threshold=0)
    with pytest.raises(aisys.ConfigError, match="reset_timeout"):
        aisys.CircuitBreaker(reset_timeout=-1)
    with pytest.raises(aisys.ConfigError, match="circuit"):
        aisys.LLM("openai:m", circuit=3)  # type: ignore[arg-type]


async def test_decorator_circuit_policy(clock: FakeClock) -> None:
    """@traced_llm(circuit=...) sets the function's thresholds; circuit=None turns it off."""
    calls = {"guarded": 0, "unguarded": 0}

    @aisys.traced_llm(circuit=aisys.CircuitBreaker(failure_threshold=1))
    def guarded(question: str) -> str:
        calls["guarded"] += 1
        raise ConnectionError("down")

    @aisys.traced_llm(retry=aisys.Retry(max_attempts=1), circuit=None)
    def unguarded(question: str) -> str:
        calls["unguarded"] += 1
        raise ConnectionError("down")

    with pytest.raises(ConnectionError):
        guarded("hi")
    with pytest.raises(aisys.CircuitOpenError):
        guarded("hi")
    for _ in range(7):
        with pytest.raises(ConnectionError):
            unguarded("hi")
    assert calls == {"guarded": 1, "unguarded": 7}
