"""The Anthropic messages API: aisys's adapter and the official client against the wire server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import pytest

import aisys
from aisys.providers.anthropic import DEFAULT_MAX_TOKENS
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer

KEY = "sk-ant-aisys-test-key-9"


@pytest.fixture(name="claude")
def fixture_claude(server: WireServer) -> Iterator[aisys.LLM]:
    with aisys.LLM(
        "anthropic:claude-3-5-haiku-latest",
        base_url=server.root_url,
        api_key=KEY,
        retry=None,
    ) as llm:
        yield llm


@pytest.fixture(name="official")
def fixture_official(server: WireServer) -> Iterator[anthropic.Anthropic]:
    client = anthropic.Anthropic(api_key=KEY, base_url=server.root_url, max_retries=0)
    yield client
    client.close()


def test_chat_request_and_response(
    claude: aisys.LLM, server: WireServer, seen: Captured
) -> None:
    """System prompt apart, default max_tokens, version header; normalised answer and usage."""
    server.script(
        Reply(
            text="Five days.",
            usage={
                "input_tokens": 20,
                "output_tokens": 3,
                "cache_read_input_tokens": 10,
            },
        )
    )

    response = claude.chat(
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Refunds?"},
        ],
        temperature=0.3,
        stop="END",
    )

    (request,) = server.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Refunds?"}],
        "system": "Be brief.",
        "temperature": 0.3,
        "stop_sequences": ["END"],
    }
    assert response.text == "Five days."
    assert response.finish_reason == "stop"
    assert response.provider == "anthropic"
    assert response.id == "msg_wire_1"
    # The conventions' input tokens include cached ones; Anthropic reports them apart.
    assert response.usage.input_tokens == 30
    assert response.usage.cache_read_input_tokens == 10
    assert response.usage.output_tokens == 3
    attrs = seen.span("chat claude-3-5-haiku-latest").attributes
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.input_tokens"] == 30
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 10
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert KEY not in repr(dict(attrs)) + repr(seen.logs) + repr(claude)


def test_tools_images_and_tool_results_are_translated(
    claude: aisys.LLM, server: WireServer
) -> None:
    """OpenAI-style tools, image parts and tool messages become messages-API blocks."""
    server.script(Reply(tool_call=("lookup_order", '{"order_id": "A1"}')))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order",
                "parameters": {"type": "object"},
            },
        }
    ]
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Where is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "t1",
                    "type": "function",
                    "function": {
                        "name": "lookup_order",
                        "arguments": '{"order_id": "A0"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "shipped"},
    ]

    response = claude.chat(messages, tools=tools, tool_choice="required", max_tokens=99)

    body = server.requests[0].body
    assert body["max_tokens"] == 99
    assert body["tools"] == [
        {
            "name": "lookup_order",
            "input_schema": {"type": "object"},
            "description": "Find an order",
        }
    ]
    assert body["tool_choice"] == {"type": "any"}
    image = body["messages"][0]["content"][1]
    assert image == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }
    assert body["messages"][1]["content"] == [
        {
            "type": "tool_use",
            "id": "t1",
            "name": "lookup_order",
            "input": {"order_id": "A0"},
        }
    ]
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "shipped"}],
    }
    (call,) = response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (
        "toolu_1",
        "lookup_order",
        {"order_id": "A1"},
    )
    assert response.finish_reason == "tool_calls"


def test_stream(claude: aisys.LLM, server: WireServer, seen: Captured) -> None:
    """message_start / content_block_delta / message_delta become chunks and usage."""
    server.script(Reply(text="It was a dark and stormy night."))

    stream = claude.stream("story")
    text = "".join(chunk.text for chunk in stream)

    assert text == "It was a dark and stormy night."
    assert stream.response.finish_reason == "stop"
    assert stream.response.usage.output_tokens == 7
    assert stream.response.usage.input_tokens == 1
    assert server.requests[0].body["stream"] is True
    attrs = seen.span("chat claude-3-5-haiku-latest").attributes
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["aisys.stream.chunks"] >= 7


async def test_astream_tool_use(server: WireServer) -> None:
    """Streamed tool input (input_json_delta) is joined into one ToolCall."""
    server.script(Reply(tool_call=("get_weather", '{"city": "Oslo"}')))
    async with aisys.LLM(
        "anthropic:claude-3-5-haiku-latest", base_url=server.root_url
    ) as claude:
        stream = claude.astream(
            "weather", tools=[{"type": "function", "function": {"name": "get_weather"}}]
        )
        async for _ in stream:
            pass
    (call,) = stream.response.tool_calls
    assert json.loads(call.arguments) == {"city": "Oslo"}


def test_stream_cut(claude: aisys.LLM, server: WireServer) -> None:
    """A messages stream without message_stop is reported as cut."""
    server.script(Reply(text="a b c d", cut_after=2))
    with pytest.raises(aisys.ProviderConnectionError, match="after 2 chunks"):
        list(claude.stream("x"))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (529, aisys.ServerError),
        (429, aisys.RateLimitError),
        (401, aisys.AuthenticationError),
    ],
)
def test_errors(
    claude: aisys.LLM, server: WireServer, status: int, error: type[Exception]
) -> None:
    """Anthropic's error bodies and statuses map like OpenAI's."""
    server.script(
        Reply(
            status=status,
            body={
                "type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"},
            },
        )
    )
    with pytest.raises(error, match="Overloaded"):
        claude.chat("hi")


def test_unsupported_features_say_so(claude: aisys.LLM) -> None:
    """response_format and embeddings are refused with a way forward."""
    with pytest.raises(ValueError, match="no response_format"):
        claude.chat("hi", response_format={"type": "json_object"})
    with pytest.raises(ValueError, match="no embeddings API"):
        claude.embed(["x"])


def test_environment_variables(
    server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY are used when no argument is given."""
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.root_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-aisys-test-key-env")
    with aisys.LLM("anthropic:claude-3-5-haiku-latest") as claude:
        claude.chat("hi")
    assert server.requests[0].headers["x-api-key"] == "sk-ant-aisys-test-key-env"


# The official client against the same server: proves the server speaks the protocol,
# and that decorator mode reads the SDK's own objects and streams.


def test_official_client_and_decorator(
    official: anthropic.Anthropic, server: WireServer, seen: Captured
) -> None:
    """A traced function returning an anthropic Message gets its usage and stop reason."""
    server.script(
        Reply(
            text="Hello!",
            usage={
                "input_tokens": 12,
                "output_tokens": 2,
                "cache_creation_input_tokens": 5,
            },
        )
    )

    @aisys.traced_llm
    def ask() -> anthropic.types.Message:
        return official.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )

    message = ask()

    assert message.content[0].text == "Hello!"
    attrs = seen.span("chat claude-3-5-haiku-latest").attributes
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.usage.input_tokens"] == 17
    assert attrs["gen_ai.usage.output_tokens"] == 2
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == 5
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.response.id"] == "msg_wire_1"


def test_official_stream_through_decorator(
    official: anthropic.Anthropic, server: WireServer, seen: Captured
) -> None:
    """An anthropic stream returned by a traced function is passed through and measured."""
    server.script(Reply(text="one two three"))

    @aisys.traced_llm(model="claude-3-5-haiku-latest")
    def ask() -> object:
        return official.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )

    kinds = [event.type for event in ask()]

    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    attrs = seen.span("chat claude-3-5-haiku-latest").attributes
    assert attrs["gen_ai.usage.output_tokens"] == 3
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "aisys.usage.estimated" not in attrs


async def test_official_async_client(server: WireServer, seen: Captured) -> None:
    """The async anthropic client's objects are read the same way."""
    server.script(Reply(text="async hello"))
    client = anthropic.AsyncAnthropic(
        api_key=KEY, base_url=server.root_url, max_retries=0
    )

    @aisys.traced_llm
    async def ask() -> object:
        return await client.messages.create(
            model="claude-3-5-haiku-latest",
            max_tokens=64,
            messages=[{"role": "user", "content": "hi"}],
        )

    await ask()
    await client.close()
    assert (
        seen.span("chat claude-3-5-haiku-latest").attributes[
            "gen_ai.usage.output_tokens"
        ]
        == 2
    )
