"""The decorators on every kind of callable: what the caller sees stays the same."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aisys
from aisys.testing import Captured, ScriptedModel, capture, scripted
from tests.strategies import JSON_SCALARS, nested


def test_bare_and_called_forms_keep_metadata() -> None:
    """functools.wraps and the signature survive both decorator forms."""

    def answer(question: str, *, model: str = "m") -> str:
        """Answer a question."""
        return question

    for wrapped in (aisys.traced_llm(answer), aisys.traced_llm(model="gpt-4o")(answer)):
        assert wrapped.__name__ == "answer"
        assert wrapped.__doc__ == "Answer a question."
        assert inspect.signature(wrapped) == inspect.signature(answer)
        assert wrapped.__wrapped__ is answer


def test_function_kinds_are_preserved() -> None:
    """Generator and async functions stay what they were, for inspect and frameworks."""

    def gen() -> Iterator[str]:
        yield "a"

    async def agen() -> AsyncIterator[str]:
        yield "a"

    async def coro() -> str:
        return "a"

    assert inspect.isgeneratorfunction(aisys.traced_llm(gen))
    assert inspect.isasyncgenfunction(aisys.traced_llm(agen))
    assert inspect.iscoroutinefunction(aisys.traced_llm(coro))


def test_chat_response_is_read(seen: Captured) -> None:
    """An aisys ChatResponse gives provider, model, id and exact usage."""
    bot = ScriptedModel(["Refunds take five days."], model="scripted-1")

    @aisys.traced_llm
    def answer(question: str) -> aisys.ChatResponse:
        return bot.chat(question)

    response = answer("How long do refunds take?")

    attrs = seen.span("chat scripted-1").attributes
    assert attrs["gen_ai.provider.name"] == "scripted"
    assert attrs["gen_ai.usage.output_tokens"] == response.usage.output_tokens
    assert attrs["gen_ai.usage.input_tokens"] == response.usage.input_tokens > 0
    assert attrs["gen_ai.response.id"] == "scripted-1"


def _assert_counted(attrs: Any, prompt: str, text: str) -> None:
    """Usage on the span is tiktoken's count of the prompt and the text, marked estimated."""
    assert attrs["aisys.usage.estimated"] is True
    assert attrs["gen_ai.usage.input_tokens"] == aisys.count_tokens(
        prompt, "gpt-4o-mini"
    )
    assert attrs["gen_ai.usage.output_tokens"] == aisys.count_tokens(
        text, "gpt-4o-mini"
    )


def test_plain_string_is_counted_with_tiktoken(seen: Captured) -> None:
    """A str result gets tiktoken counts for its prompt argument and itself, marked estimated."""

    @aisys.traced_llm(model="gpt-4o-mini", provider="openai")
    def answer(prompt: str) -> str:
        return "It takes five business days."

    assert answer("How long do refunds take?") == "It takes five business days."

    attrs = seen.span("chat gpt-4o-mini").attributes
    _assert_counted(attrs, "How long do refunds take?", "It takes five business days.")
    assert attrs["gen_ai.provider.name"] == "openai"


def test_nonsense_token_counts_are_not_taken(seen: Captured) -> None:
    """Negative or boolean counts in a returned completion are not taken: aisys counts."""

    @aisys.traced_llm(model="gpt-4o-mini", provider="openai")
    def answer(prompt: str) -> dict[str, object]:
        return {
            "id": "c1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [
                {"message": {"content": "Five days."}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": -40, "completion_tokens": True},
        }

    answer("How long do refunds take?")
    attrs = seen.span("chat gpt-4o-mini").attributes
    _assert_counted(attrs, "How long do refunds take?", "Five days.")
    assert attrs["aisys.cost.status"] == "estimated"
    assert attrs["aisys.cost.usd"] > 0


def test_methods_sync_and_async(seen: Captured) -> None:
    """Decorated methods receive self and are traced like functions."""

    class Bot:
        def __init__(self) -> None:
            self.model = ScriptedModel(["ok"])

        @aisys.traced_llm
        def ask(self, question: str) -> aisys.ChatResponse:
            return self.model.chat(question)

        @aisys.traced_llm(name="bot.aask")
        async def aask(self, question: str) -> str:
            return "async ok"

    bot = Bot()
    assert bot.ask("q").text == "ok"
    assert asyncio.run(bot.aask("q")) == "async ok"

    assert (
        seen.span("chat scripted-model").attributes["gen_ai.usage.output_tokens"] == 1
    )
    assert seen.span("bot.aask").attributes["aisys.usage.estimated"] is True


def test_generator_span_ends_when_iteration_ends(seen: Captured) -> None:
    """A generator's span covers the whole iteration and counts what it yielded."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def story(prompt: str) -> Iterator[str]:
        yield "Once "
        yield "upon "
        yield "a time."

    gen = story("tell me a story")
    assert seen.spans == ()
    assert "".join(gen) == "Once upon a time."

    attrs = seen.span("chat gpt-4o-mini").attributes
    assert attrs["aisys.stream.chunks"] == 3
    assert attrs["gen_ai.usage.output_tokens"] == aisys.count_tokens(
        "Once upon a time.", "gpt-4o-mini"
    )


def test_generator_closed_early(seen: Captured) -> None:
    """Closing a generator early ends its span once, marked closed early."""
    finished = []

    @aisys.traced_llm(model="m")
    def story() -> Iterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            finished.append(True)

    gen = story()
    assert next(gen) == "a"
    gen.close()

    assert finished == [True]
    assert seen.span("chat m").attributes["aisys.stream.closed_early"] is True
    assert len(seen.logs) == 1


def test_generator_send_and_return_value(seen: Captured) -> None:
    """Values sent into the generator and its return value pass through."""

    @aisys.traced(name="echo")
    def echo() -> Iterator[str]:
        received = yield "ready"
        yield f"got {received}"
        return "done"

    gen = echo()
    assert next(gen) == "ready"
    assert gen.send("ping") == "got ping"
    with pytest.raises(StopIteration) as stop:
        next(gen)
    assert stop.value.value == "done"
    assert seen.span("echo").status.status_code.name == "UNSET"


def test_generator_error_is_recorded(seen: Captured) -> None:
    """An exception raised mid-iteration propagates and marks the span."""
    boom = RuntimeError("stream broke")

    @aisys.traced_llm(model="m")
    def story() -> Iterator[str]:
        yield "a"
        raise boom

    with pytest.raises(RuntimeError) as raised:
        list(story())

    assert raised.value is boom
    span = seen.span("chat m")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "RuntimeError"


async def test_async_generator(seen: Captured) -> None:
    """Async generators are traced over their whole iteration."""

    @aisys.traced_llm(model="m")
    async def story() -> AsyncIterator[str]:
        for piece in ("x", "y"):
            await asyncio.sleep(0)
            yield piece

    assert [p async for p in story()] == ["x", "y"]
    assert seen.span("chat m").attributes["aisys.stream.chunks"] == 2


async def test_async_generator_closed_early(seen: Captured) -> None:
    """aclose() ends the async generator's span once."""

    @aisys.traced_llm(model="m")
    async def story() -> AsyncIterator[str]:
        yield "x"
        yield "y"

    gen = story()
    assert await gen.__anext__() == "x"
    await gen.aclose()

    assert seen.span("chat m").attributes["aisys.stream.closed_early"] is True


def test_exception_propagates_unchanged(seen: Captured) -> None:
    """The caller gets the very exception; one error span and one warning event."""
    error = ValueError("bad input")

    @aisys.traced_llm(model="m")
    def answer() -> str:
        raise error

    with pytest.raises(ValueError) as raised:
        answer()

    assert raised.value is error
    span = seen.span("chat m")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "ValueError"
    assert span.events[0].name == "exception"
    (event,) = seen.logs
    assert event["event"] == "gen_ai.call"
    assert event["error.type"] == "ValueError"


def test_log_event_matches_its_span(seen: Captured) -> None:
    """Each call's log event names its trace and span ids."""

    @aisys.traced_llm(model="m")
    def answer() -> str:
        return "x"

    answer()

    span = seen.span("chat m")
    (event,) = seen.logs
    assert event["trace_id"] == f"{span.context.trace_id:032x}"
    assert event["span_id"] == f"{span.context.span_id:016x}"
    assert (
        event["gen_ai.usage.output_tokens"]
        == span.attributes["gen_ai.usage.output_tokens"]
    )


def test_nested_calls_are_children() -> None:
    """A traced call inside another traced function is its child span."""

    @aisys.traced_llm(model="m")
    def inner() -> str:
        return "x"

    @aisys.traced(name="pipeline")
    def outer() -> str:
        return inner()

    with capture() as seen:
        outer()

    parent = seen.span("pipeline")
    child = seen.span("chat m")
    assert child.parent is not None
    assert child.parent.span_id == parent.context.span_id


def test_scripted_helper_counts_prompt() -> None:
    """scripted() fills usage from the prompt and the text."""
    response = scripted("four words right here", prompt="a prompt", model="gpt-4o")
    assert response.usage.output_tokens == aisys.count_tokens(
        "four words right here", "gpt-4o"
    )
    assert response.usage.input_tokens == aisys.count_tokens("a prompt", "gpt-4o")


def test_scripted_model_raises_scripted_errors() -> None:
    """An exception in the script is raised, and the request is still recorded."""
    model = ScriptedModel([aisys.RateLimitError("slow down", provider="scripted")])
    with pytest.raises(aisys.RateLimitError):
        model.chat("hi")
    assert model.requests == [[{"role": "user", "content": "hi"}]]


_odd_values = nested(
    JSON_SCALARS
    | st.floats(allow_nan=True)
    | st.text(max_size=30)
    | st.binary(max_size=10),
    st.sampled_from(
        [
            "usage",
            "model",
            "id",
            "choices",
            "object",
            "prompt_tokens",
            "completion_tokens",
            "x",
        ]
    ),
    max_size=5,
)


@settings(max_examples=150, deadline=None)
@given(value=_odd_values)
def test_any_return_value_is_returned_and_explained(value: object) -> None:
    """Whatever the function returns comes back unchanged, with one span that says what it read."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return value

    with capture() as seen:
        assert answer() is value

    (span,) = seen.spans
    assert len(seen.logs) == 1
    assert span.status.status_code.name == "UNSET"
    attrs = span.attributes
    if not isinstance(value, str | dict):
        assert "aisys.response.unread" in attrs
    if isinstance(value, str):
        assert attrs["aisys.usage.estimated"] is True
