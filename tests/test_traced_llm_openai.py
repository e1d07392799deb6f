"""`@traced_llm` around the official openai client talking to a real loopback server."""

from __future__ import annotations

import inspect

import openai
import pytest

import aisys
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer

MESSAGES = [{"role": "user", "content": "What is the refund policy?"}]


def test_returns_the_sdk_object_and_reads_its_usage(
    client: openai.OpenAI, seen: Captured
) -> None:
    """The function returns the very ChatCompletion; the span carries its facts."""
    returned = []

    @aisys.traced_llm
    def answer() -> openai.types.chat.ChatCompletion:
        completion = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0.2
        )
        returned.append(completion)
        return completion

    result = answer()

    assert result is returned[0]
    span = seen.span("chat gpt-4o-mini-2024-07-18")
    attrs = span.attributes
    assert span.kind.name == "CLIENT"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"
    assert attrs["gen_ai.response.id"] == "chatcmpl-wire-1"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert attrs["gen_ai.usage.input_tokens"] == result.usage.prompt_tokens
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.completion_tokens
    assert "aisys.usage.estimated" not in attrs
    assert "gen_ai.system" not in attrs


def test_model_comes_from_the_decorator_first(
    client: openai.OpenAI, seen: Captured
) -> None:
    """`model=` on the decorator names the span and the request model."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    answer()

    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.response.model"] == "gpt-4o-mini-2024-07-18"


def test_model_keyword_of_the_call_is_the_request_model(
    client: openai.OpenAI, seen: Captured
) -> None:
    """Without a decorator model, the function's own `model=` argument is used."""

    @aisys.traced_llm
    def answer(question: str, model: str = "gpt-4o") -> object:
        return client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}]
        )

    answer("hi", model="gpt-4.1-nano")
    answer("hi")

    assert (
        seen.span("chat gpt-4.1-nano").attributes["gen_ai.request.model"]
        == "gpt-4.1-nano"
    )
    # A default the caller did not pass is the model asked for, as Python binds it.
    assert seen.span("chat gpt-4o").attributes["gen_ai.request.model"] == "gpt-4o"


def test_a_dict_response_reads_the_same(client: openai.OpenAI, seen: Captured) -> None:
    """The raw JSON of a completion gives the same attributes as the SDK object."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> dict[str, object]:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        ).model_dump()

    result = answer()

    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.usage.input_tokens"] == result["usage"]["prompt_tokens"]
    assert attrs["gen_ai.response.id"] == "chatcmpl-wire-1"
    assert attrs["gen_ai.provider.name"] == "openai"


def test_request_parameters_of_the_call_are_recorded(
    client: openai.OpenAI, seen: Captured
) -> None:
    """temperature / max_tokens passed to the decorated function become request attributes."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(question: str, temperature: float = 1.0, max_tokens: int = 64) -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            temperature=temperature,
            max_tokens=max_tokens,
        )

    answer("q", temperature=0.0, max_tokens=32)

    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.request.temperature"] == 0.0
    assert attrs["gen_ai.request.max_tokens"] == 32


async def test_async_function_with_the_async_client(
    aclient: openai.AsyncOpenAI, seen: Captured
) -> None:
    """Coroutines are awaited inside the span and return their result unchanged."""

    @aisys.traced_llm(model="gpt-4o-mini")
    async def answer() -> object:
        return await aclient.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES
        )

    result = await answer()

    assert inspect.iscoroutinefunction(answer)
    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.usage.output_tokens"] == result.usage.completion_tokens


def test_stream_usage_from_the_final_chunk(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    """A returned stream is passed through; the span ends with it and carries its usage."""
    server.script(Reply(text="one two three four"))

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )

    stream = answer()
    assert seen.spans == ()  # still open while the caller reads
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == "one two three four"
    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["gen_ai.usage.output_tokens"] == 4
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert "aisys.usage.estimated" not in attrs
    assert len(seen.logs) == 1


def test_stream_without_usage_is_counted_and_marked(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    """A server that ignores include_usage (llama.cpp) still gives token counts, estimated."""
    server.script(Reply(text="alpha beta gamma", include_usage=False))

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(messages: list[dict[str, str]]) -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )

    with answer(MESSAGES) as stream:
        for _ in stream:
            pass

    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["aisys.usage.estimated"] is True
    assert attrs["gen_ai.usage.output_tokens"] == aisys.count_tokens(
        "alpha beta gamma", "gpt-4o-mini"
    )
    assert attrs["gen_ai.usage.input_tokens"] == aisys.count_tokens(
        MESSAGES, "gpt-4o-mini"
    )


def test_stream_closed_early_ends_the_span(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    """Breaking out and closing the stream ends the span once, marked closed early."""
    server.script(Reply(text="a b c d e f"))

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )

    stream = answer()
    next(iter(stream))
    stream.close()
    stream.close()

    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.stream.closed_early"] is True
    assert span.status.status_code.name == "UNSET"
    assert len(seen.logs) == 1


async def test_async_stream(
    aclient: openai.AsyncOpenAI, server: WireServer, seen: Captured
) -> None:
    """Async streams are wrapped the same way."""
    server.script(Reply(text="x y z"))

    @aisys.traced_llm(model="gpt-4o-mini")
    async def answer() -> object:
        return await aclient.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )

    stream = await answer()
    pieces = [
        c.choices[0].delta.content
        async for c in stream
        if c.choices and c.choices[0].delta.content
    ]

    assert "".join(pieces) == "x y z"
    assert seen.span("chat gpt-4o-mini").attributes["gen_ai.usage.output_tokens"] == 3


def test_provider_error_propagates_unchanged(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    """The SDK's own exception reaches the caller; the span records it as an error."""
    server.script(Reply(status=503))

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with pytest.raises(openai.InternalServerError) as raised:
        answer()

    span = seen.span("chat gpt-4o-mini")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "openai.InternalServerError"
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes["exception.type"].endswith("InternalServerError")
    assert raised.value.status_code == 503
    (event,) = seen.logs
    assert event["status"] == "error"
    assert event["log_level"] == "warning"


def test_embeddings_response_sets_the_operation(
    client: openai.OpenAI, seen: Captured
) -> None:
    """An embeddings result is recognised as such."""

    @aisys.traced_llm(model="text-embedding-3-small")
    def embed(texts: list[str]) -> object:
        return client.embeddings.create(model="text-embedding-3-small", input=texts)

    embed(["a b", "c"])

    attrs = seen.span("embeddings text-embedding-3-small").attributes
    assert attrs["gen_ai.operation.name"] == "embeddings"
    assert attrs["gen_ai.usage.input_tokens"] == 3


def test_operation_can_be_declared(client: openai.OpenAI, seen: Captured) -> None:
    """`operation="embeddings"` names the span as the conventions want."""

    @aisys.traced_llm(model="text-embedding-3-small", operation="embeddings")
    def embed(texts: list[str]) -> object:
        return client.embeddings.create(model="text-embedding-3-small", input=texts)

    embed(["a"])

    assert (
        seen.span("embeddings text-embedding-3-small").attributes[
            "gen_ai.operation.name"
        ]
        == "embeddings"
    )
