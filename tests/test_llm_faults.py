"""Provider failures become aisys errors that say what happened, with one span and one event."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterator

import pytest

import aisys
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer

KEY = "sk-aisys-test-key-77aa"


@pytest.fixture(name="llm")
def fixture_llm(server: WireServer) -> Iterator[aisys.LLM]:
    with aisys.LLM(
        "openai:gpt-4o-mini",
        base_url=server.base_url,
        api_key=KEY,
        timeout=1.0,
        retry=None,
    ) as llm:
        yield llm


def _one_failed_call(seen: Captured, error_type: str) -> None:
    (span,) = seen.spans
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == error_type
    (event,) = seen.logs
    assert event["status"] == "error"
    everything = repr(dict(span.attributes)) + repr(span.events) + repr(seen.logs)
    assert KEY not in everything


@pytest.mark.parametrize(
    ("reply", "error", "retryable"),
    [
        (
            Reply(status=400, body={"error": {"message": "messages: field required"}}),
            aisys.BadRequestError,
            False,
        ),
        (
            Reply(
                status=401, body={"error": {"message": "Incorrect API key provided"}}
            ),
            aisys.AuthenticationError,
            False,
        ),
        (Reply(status=404), aisys.BadRequestError, False),
        (Reply(status=408), aisys.ProviderTimeoutError, True),
        (Reply(status=500), aisys.ServerError, True),
        (Reply(status=503), aisys.ServerError, True),
    ],
)
def test_status_codes_map_to_errors(
    llm: aisys.LLM,
    server: WireServer,
    seen: Captured,
    reply: Reply,
    error: type[aisys.ProviderError],
    retryable: bool,
) -> None:
    """Each status becomes its aisys class with status, provider and the provider's message."""
    server.script(reply)

    with pytest.raises(error) as raised:
        llm.chat("hi")

    exc = raised.value
    assert type(exc) is error
    assert exc.status_code == reply.status
    assert exc.provider == "openai"
    assert exc.retryable is retryable
    assert f"HTTP {reply.status}" in str(exc)
    if reply.body:
        assert reply.body["error"]["message"] in str(exc)
    _one_failed_call(seen, f"aisys.{error.__name__}")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "not-a-date"}, None),
    ],
)
def test_rate_limit_reads_retry_after(
    llm: aisys.LLM, server: WireServer, headers: dict[str, str], expected: float | None
) -> None:
    """429 gives RateLimitError with the wait the server asked for."""
    server.script(Reply(status=429, headers=headers))
    with pytest.raises(aisys.RateLimitError) as raised:
        llm.chat("hi")
    assert raised.value.retry_after_s == expected
    assert raised.value.retryable


def test_retry_after_http_date(llm: aisys.LLM, server: WireServer) -> None:
    """An HTTP-date Retry-After becomes seconds from now."""
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    server.script(Reply(status=429, headers={"retry-after": when}))
    with pytest.raises(aisys.RateLimitError) as raised:
        llm.chat("hi")
    assert raised.value.retry_after_s is not None
    assert 25 <= raised.value.retry_after_s <= 31


def test_garbage_body(llm: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """A 200 that is not JSON says what arrived."""
    server.script(Reply(raw=b"<html>502 Bad Gateway</html>", content_type="text/html"))
    with pytest.raises(aisys.ResponseFormatError) as raised:
        llm.chat("hi")
    message = str(raised.value)
    assert "not JSON" in message
    assert "text/html" in message
    assert "<html>502" in message
    _one_failed_call(seen, "aisys.ResponseFormatError")


def test_json_without_choices(llm: aisys.LLM, server: WireServer) -> None:
    """Valid JSON that is not a completion is a ResponseFormatError naming what came."""
    server.script(Reply(body={"status": "ok"}))
    with pytest.raises(aisys.ResponseFormatError, match="without choices"):
        llm.chat("hi")


def test_stream_answered_with_json(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """A stream request answered with plain JSON is a format error, not a hang or a crash."""
    server.script(Reply(raw=b'{"choices": []}', content_type="application/json"))
    with pytest.raises(aisys.ResponseFormatError, match="text/event-stream"):
        list(llm.stream("hi"))
    _one_failed_call(seen, "aisys.ResponseFormatError")


def test_connection_reset(llm: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """A connection closed without an answer is a retryable ProviderConnectionError."""
    server.script(Reply(reset=True))
    with pytest.raises(aisys.ProviderConnectionError) as raised:
        llm.chat("hi")
    assert raised.value.retryable
    _one_failed_call(seen, "aisys.ProviderConnectionError")


def test_slow_response_times_out(server: WireServer, seen: Captured) -> None:
    """A response slower than the timeout raises ProviderTimeoutError."""
    server.script(Reply(delay_s=1.0))
    with (
        aisys.LLM(
            "openai:gpt-4o-mini", base_url=server.base_url, timeout=0.2, retry=None
        ) as llm,
        pytest.raises(aisys.ProviderTimeoutError) as raised,
    ):
        llm.chat("hi")
    assert raised.value.retryable
    assert "timed out" in str(raised.value)
    _one_failed_call(seen, "aisys.ProviderTimeoutError")


def test_stream_cut_midway(llm: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """A stream that stops before finishing says how much was delivered."""
    server.script(Reply(text="one two three four five", cut_after=2))
    received: list[str] = []
    stream = llm.stream("count")
    with pytest.raises(aisys.ProviderConnectionError) as raised:
        received.extend(chunk.text for chunk in stream)
    assert received == ["one", " two"]
    assert "after 2 chunks" in str(raised.value)
    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.stream.chunks"] == 2
    _one_failed_call(seen, "aisys.ProviderConnectionError")


async def test_async_errors_match(server: WireServer, seen: Captured) -> None:
    """The async twin raises the same classes."""
    server.script(Reply(status=429, headers={"retry-after": "2"}), Reply(status=500))
    async with aisys.LLM(
        "openai:gpt-4o-mini", base_url=server.base_url, retry=None
    ) as llm:
        with pytest.raises(aisys.RateLimitError):
            await llm.achat("hi")
        with pytest.raises(aisys.ServerError):
            async for _ in llm.astream("hi"):
                pass
    assert [s.attributes["error.type"] for s in seen.spans] == [
        "aisys.RateLimitError",
        "aisys.ServerError",
    ]


def test_unreachable_server(seen: Captured) -> None:
    """Nothing listening: ProviderConnectionError, not an httpx2 exception."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        aisys.LLM(
            "openai:m", base_url=f"http://127.0.0.1:{port}/v1", retry=None
        ) as llm,
        pytest.raises(aisys.ProviderConnectionError),
    ):
        llm.chat("hi")


def test_bad_inputs_say_what_is_wrong(llm: aisys.LLM) -> None:
    """Wrong message shapes raise before anything is sent, naming the problem."""
    with pytest.raises(TypeError, match="messages must be a string or a list"):
        llm.chat(42)
    with pytest.raises(ValueError, match=r"messages\[0\]\['role'\] must be one of"):
        llm.chat([{"content": "hi"}])
    with pytest.raises(ValueError, match="messages is empty"):
        llm.chat([])
    with pytest.raises(TypeError, match=r"messages\[1\] must be a dict"):
        llm.chat([{"role": "user", "content": "a"}, "b"])


def test_bad_model_strings() -> None:
    """Unknown providers and missing prefixes raise ConfigError listing the known ones."""
    with pytest.raises(
        aisys.ConfigError,
        match=r"unknown provider 'opneai'.*anthropic, openai, scripted",
    ):
        aisys.LLM("opneai:gpt-4o")
    with pytest.raises(aisys.ConfigError, match="must be written 'provider:model'"):
        aisys.LLM("gpt-4o")


def test_bad_base_url() -> None:
    """A base_url that is not http(s) is a ConfigError, on first use."""
    with (
        aisys.LLM("openai:m", base_url="ftp://example.invalid/v1") as llm,
        pytest.raises(aisys.ConfigError, match="base_url"),
    ):
        llm.chat("hi")


def test_unknown_parameters_are_refused(llm: aisys.LLM, server: WireServer) -> None:
    """A misspelt or provider-specific parameter is not dropped silently."""
    with pytest.raises(
        TypeError, match=r"unknown chat parameter\(s\) temprature.*extra="
    ):
        llm.chat("hi", temprature=0.2)
    with pytest.raises(TypeError, match="max_completion_tokens"):
        list(llm.stream("hi", max_completion_tokens=10))
    assert server.requests == []
    llm.chat("hi", extra={"max_completion_tokens": 10})
    assert server.requests[0].body["max_completion_tokens"] == 10
