"""`aisys.LLM("openai:…")` against the loopback OpenAI-protocol server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

import aisys
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer

KEY = "sk-aisys-test-key-4f9a"


@pytest.fixture(name="llm")
def fixture_llm(server: WireServer) -> Iterator[aisys.LLM]:
    with aisys.LLM(
        "openai:gpt-4o-mini", base_url=server.base_url, api_key=KEY, timeout=5
    ) as llm:
        yield llm


@pytest.fixture(name="allm")
async def fixture_allm(server: WireServer) -> AsyncIterator[aisys.LLM]:
    async with aisys.LLM(
        "openai:gpt-4o-mini", base_url=server.base_url, api_key=KEY, timeout=5
    ) as llm:
        yield llm


def _no_key(seen: Captured, *more: object) -> None:
    text = (
        repr([dict(s.attributes) for s in seen.spans])
        + repr([s.events for s in seen.spans])
        + repr(seen.logs)
    )
    text += "".join(repr(m) + str(m) for m in more)
    assert KEY not in text


def test_chat(llm: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """A chat call returns the normalised answer; the wire saw the OpenAI request."""
    server.script(Reply(text="Refunds take five days."))

    response = llm.chat(
        [{"role": "user", "content": "refunds?"}], temperature=0, max_tokens=50, seed=7
    )

    assert response.text == "Refunds take five days."
    assert response.finish_reason == "stop"
    assert response.model == "gpt-4o-mini-2024-07-18"
    assert response.provider == "openai"
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == 4
    assert not response.usage.estimated
    (request,) = server.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "refunds?"}],
        "temperature": 0,
        "max_tokens": 50,
        "seed": 7,
    }
    span = seen.span("chat gpt-4o-mini")
    attrs = span.attributes
    assert span.kind.name == "CLIENT"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["server.address"] == "127.0.0.1"
    assert attrs["server.port"] == server.port
    assert attrs["gen_ai.request.temperature"] == 0
    assert attrs["gen_ai.request.max_tokens"] == 50
    assert attrs["gen_ai.request.seed"] == 7
    assert attrs["gen_ai.response.id"] == "chatcmpl-wire-1"
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert len(seen.logs) == 1
    _no_key(seen, llm)


def test_string_and_message_inputs(llm: aisys.LLM, server: WireServer) -> None:
    """A string, dicts and aisys.Message objects all become OpenAI messages."""
    llm.chat("hello")
    llm.chat(
        [
            aisys.Message(role="system", content="Be brief."),
            aisys.Message(role="user", content="hi"),
        ]
    )

    first, second = (r.body["messages"] for r in server.requests)
    assert first == [{"role": "user", "content": "hello"}]
    assert second == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_images_tools_and_response_format_pass_through(
    llm: aisys.LLM, server: WireServer
) -> None:
    """Content parts, tools, tool_choice, response_format and extra reach the wire as given."""
    server.script(Reply(tool_call=("lookup_order", '{"order_id": "A1"}')))
    tools = [
        {
            "type": "function",
            "function": {"name": "lookup_order", "parameters": {"type": "object"}},
        }
    ]
    image = [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        },
    ]
    schema = {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": {"type": "object"}},
    }

    response = llm.chat(
        [{"role": "user", "content": image}],
        tools=tools,
        tool_choice="auto",
        response_format=schema,
        extra={"user": "u-1", "logprobs": False},
    )

    body = server.requests[0].body
    assert body["messages"][0]["content"] == image
    assert body["tools"] == tools
    assert body["tool_choice"] == "auto"
    assert body["response_format"] == schema
    assert body["user"] == "u-1"
    assert body["logprobs"] is False
    (call,) = response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "call_1",
        "lookup_order",
        {"order_id": "A1"},
    )
    assert response.finish_reason == "tool_calls"


def test_stream(llm: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """Chunks joined equal the final text; usage comes from the last chunk."""
    server.script(Reply(text="Once upon a time there was a model."))

    with llm.stream("tell me a story") as stream:
        pieces = [chunk.text for chunk in stream]

    assert "".join(pieces) == "Once upon a time there was a model."
    assert stream.response is not None
    assert stream.response.text == "".join(pieces)
    assert stream.response.usage.output_tokens == 8
    assert not stream.response.usage.estimated
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.request.stream"] is True
    assert attrs["gen_ai.usage.output_tokens"] == 8
    assert attrs["aisys.stream.ttft_ms"] >= 0
    assert "aisys.stream.closed_early" not in attrs
    assert len(seen.logs) == 1


def test_stream_without_usage_is_estimated(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """When the server ignores include_usage, tokens are counted and marked estimated."""
    server.script(Reply(text="alpha beta gamma", include_usage=False))

    stream = llm.stream([{"role": "user", "content": "abc"}])
    text = "".join(chunk.text for chunk in stream)

    assert stream.response.usage.estimated
    assert stream.response.usage.output_tokens == aisys.count_tokens(
        text, "gpt-4o-mini"
    )
    assert stream.response.usage.input_tokens == aisys.count_tokens(
        [{"role": "user", "content": "abc"}], "gpt-4o-mini"
    )
    assert seen.span("chat gpt-4o-mini").attributes["aisys.usage.estimated"] is True


def test_stream_tool_call_deltas(llm: aisys.LLM, server: WireServer) -> None:
    """Tool-call argument fragments are joined into one ToolCall."""
    server.script(Reply(tool_call=("get_weather", '{"city": "Paris", "unit": "C"}')))

    stream = llm.stream(
        "weather?", tools=[{"type": "function", "function": {"name": "get_weather"}}]
    )
    list(stream)

    (call,) = stream.response.tool_calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "C"}
    assert stream.response.finish_reason == "tool_calls"


def test_stream_stopped_early(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """Leaving the with-block early closes the response and ends the span once."""
    server.script(Reply(text="one two three four five six"))

    with llm.stream("count") as stream:
        first = next(stream)

    assert first.text == "one"
    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.stream.closed_early"] is True
    assert span.attributes["aisys.stream.chunks"] == 1
    assert len(seen.logs) == 1
    assert list(stream) == []


def test_nothing_is_sent_before_iteration(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """stream() is lazy: no request, no span until iteration starts."""
    stream = llm.stream("hi")
    assert server.requests == []
    assert seen.spans == ()
    stream.close()


async def test_achat_and_astream(
    allm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """The async twins give the same answers and spans."""
    server.script(Reply(text="async answer"), Reply(text="async stream"))

    response = await allm.achat("hi")
    pieces = [chunk.text async for chunk in allm.astream("hi")]

    assert response.text == "async answer"
    assert "".join(pieces) == "async stream"
    spans = [s for s in seen.spans if s.name == "chat gpt-4o-mini"]
    assert len(spans) == 2
    assert spans[1].attributes["gen_ai.usage.output_tokens"] == 2


async def test_astream_context_manager_stops_early(
    allm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """`async with` closes an async stream that was not exhausted."""
    server.script(Reply(text="a b c d"))

    async with allm.astream("x") as stream:
        async for _ in stream:
            break

    assert seen.span("chat gpt-4o-mini").attributes["aisys.stream.closed_early"] is True


def test_embed(server: WireServer, seen: Captured) -> None:
    """embed() returns vectors in order with the provider's token count."""
    with aisys.LLM(
        "openai:text-embedding-3-small", base_url=server.base_url, api_key=KEY
    ) as llm:
        result = llm.embed(["first text", "second"])

    assert len(result.vectors) == 2
    assert result.vectors[0][0] == pytest.approx(0.1)
    assert result.usage.input_tokens == 3
    assert server.requests[0].path == "/v1/embeddings"
    attrs = seen.span("embeddings text-embedding-3-small").attributes
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == 3


async def test_aembed(server: WireServer) -> None:
    """The async embed twin."""
    async with aisys.LLM(
        "openai:text-embedding-3-small", base_url=server.base_url
    ) as llm:
        result = await llm.aembed("one text")
    assert len(result.vectors) == 1


def test_environment_variables(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OPENAI_BASE_URL and OPENAI_API_KEY are used when no argument is given."""
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-aisys-test-key-from-env")
    with aisys.LLM("openai:gpt-4o-mini") as llm:
        llm.chat("hi")
    assert (
        server.requests[0].headers["authorization"]
        == "Bearer sk-aisys-test-key-from-env"
    )


def test_no_key_sends_no_authorization(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Local servers (llama.cpp, Ollama) need no key: no Authorization header is sent."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with aisys.LLM("openai:smollm2", base_url=server.base_url) as llm:
        llm.chat("hi")
    assert "authorization" not in server.requests[0].headers


def test_abandoned_stream_still_ends_its_span(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """A stream dropped after one chunk, never closed, still ends in one span."""
    import gc

    server.script(Reply(text="a b c d"))
    stream = llm.stream("x")
    next(stream)
    del stream
    gc.collect()

    assert seen.span("chat gpt-4o-mini").attributes["aisys.stream.closed_early"] is True
    assert len(seen.logs) == 1


def test_cached_and_reasoning_tokens(
    llm: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """Cached input and reasoning output tokens reported by the provider are kept."""
    server.script(
        Reply(
            usage={
                "prompt_tokens": 100,
                "completion_tokens": 30,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 12},
            }
        )
    )

    usage = llm.chat("think").usage

    assert (usage.input_tokens, usage.cache_read_input_tokens) == (100, 64)
    assert (usage.output_tokens, usage.reasoning_output_tokens) == (30, 12)
    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 64
    assert attrs["gen_ai.usage.input_tokens"] == 100


def test_shutdown_closes_connection_pools(server: WireServer) -> None:
    """aisys.shutdown() closes the sync pools of LLMs still open."""
    llm = aisys.LLM("openai:gpt-4o-mini", base_url=server.base_url)
    llm.chat("hi")
    client = llm.client
    aisys.shutdown(1.0)
    assert client.is_closed
    assert llm.chat("again").text  # a new pool is made on next use
    llm.close()
