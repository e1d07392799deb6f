"""Edge paths users hit less often: empty and failing generators, thrown-in errors,
async streams closed early, and the scripted provider's streams and embeddings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

import aisys
from aisys.testing import Captured, Fault, ScriptedTransport
from tests.wire_server import Reply, WireServer


def test_empty_generator_ends_its_span(seen: Captured) -> None:
    """A generator that yields nothing still makes one span, ending at once."""

    @aisys.traced(name="nothing")
    def nothing() -> Iterator[str]:
        return
        yield  # pragma: no cover - makes this a generator function

    assert list(nothing()) == []
    assert seen.span("nothing").status.status_code.name == "UNSET"
    assert len(seen.logs) == 1


def test_generator_failing_before_its_first_item(seen: Captured) -> None:
    """An error before the first yield propagates and marks the span."""

    @aisys.traced(name="broken")
    def broken() -> Iterator[str]:
        raise ValueError("no data")
        yield  # pragma: no cover

    with pytest.raises(ValueError, match="no data"):
        next(broken())
    assert seen.span("broken").attributes["error.type"] == "ValueError"


def test_error_thrown_into_a_generator_it_handles(seen: Captured) -> None:
    """gen.throw() reaches the user's generator, which may recover and go on."""

    @aisys.traced(name="resilient")
    def resilient() -> Iterator[str]:
        try:
            yield "first"
        except KeyError:
            yield "recovered"

    gen = resilient()
    assert next(gen) == "first"
    assert gen.throw(KeyError("x")) == "recovered"
    assert list(gen) == []
    assert seen.span("resilient").status.status_code.name == "UNSET"


async def test_error_thrown_into_an_async_generator(seen: Captured) -> None:
    """athrow() reaches the user's async generator; an unhandled one marks the span."""

    @aisys.traced(name="agen")
    async def agen() -> AsyncIterator[str]:
        try:
            yield "first"
        except KeyError:
            yield "recovered"
        yield "last"

    gen = agen()
    assert await gen.__anext__() == "first"
    assert await gen.athrow(KeyError("x")) == "recovered"
    with pytest.raises(RuntimeError):
        await gen.athrow(RuntimeError("stop"))
    assert seen.span("agen").attributes["error.type"] == "RuntimeError"


async def test_async_sdk_stream_closed_early(
    aclient: openai.AsyncOpenAI, server: WireServer, seen: Captured
) -> None:
    """`async with` around a returned AsyncStream closes it and ends the span once."""
    server.script(Reply(text="a b c d e"))

    @aisys.traced_llm(model="gpt-4o-mini")
    async def ask() -> object:
        return await aclient.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
        )

    async with await ask() as stream:
        async for _ in stream:
            break

    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.stream.closed_early"] is True
    assert len(seen.logs) == 1


def test_sdk_stream_cut_short(
    client: openai.OpenAI, server: WireServer, seen: Captured
) -> None:
    """A returned SDK stream the server cuts short still ends its span, with what came."""
    server.script(Reply(text="one two three", cut_after=1))

    @aisys.traced_llm(model="gpt-4o-mini")
    def ask() -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "x"}],
            stream=True,
        )

    stream = ask()
    received = [chunk for chunk in stream]  # the SDK ends quietly without [DONE]
    assert received
    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.stream.chunks"] == len(received)
    assert "gen_ai.response.finish_reasons" not in span.attributes  # no finish arrived


def test_scripted_streams_faults_and_embeddings(seen: Captured) -> None:
    """The scripted provider streams, cuts streams on a Fault, and embeds, offline."""
    script = ScriptedTransport(["a streamed answer", Fault(cut_after=2, text="x y z")])
    with aisys.LLM("scripted:s", transport=script, retry=None) as llm:
        assert "".join(c.text for c in llm.stream("hi")) == "a streamed answer"
        with pytest.raises(aisys.ProviderConnectionError, match="after 2 chunks"):
            list(llm.stream("hi"))
        vectors = llm.embed(["one", "two two"]).vectors
    assert len(vectors) == 2
    assert vectors[0] != vectors[1]
    assert script.requests[0]["stream_options"] == {"include_usage": True}


def test_scripted_replies_from_a_function() -> None:
    """A script may be a function of the request body."""
    script = ScriptedTransport(lambda body: f"{len(body['messages'])} messages")
    with aisys.LLM("scripted:s", transport=script) as llm:
        assert (
            llm.chat(
                [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
            ).text
            == "2 messages"
        )
