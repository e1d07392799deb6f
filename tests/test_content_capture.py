"""Prompts and completions stay out of telemetry unless capture_content=full."""

from __future__ import annotations

import json
from pathlib import Path

import openai

import aisys
from aisys.testing import capture
from tests.wire_server import Reply, WireServer

SECRET_PROMPT = "my card is 4111 1111 1111 1111, why was I charged twice?"
SECRET_ANSWER = "You were charged twice because of a retry."


def test_off_by_default_everywhere(
    client: openai.OpenAI, server: WireServer, tmp_path: Path
) -> None:
    """No prompt or completion text in spans, log events or the JSONL file."""
    server.script(Reply(text=SECRET_ANSWER))
    path = tmp_path / "t.jsonl"
    aisys.configure(exporters="jsonl", jsonl_path=path)

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(messages: list[dict[str, str]]) -> object:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    with capture() as seen:
        answer([{"role": "user", "content": SECRET_PROMPT}])
    answer([{"role": "user", "content": SECRET_PROMPT}])
    aisys.flush(5)

    dumped = (
        repr([dict(s.attributes) for s in seen.spans])
        + repr(seen.logs)
        + path.read_text()
    )
    assert (
        "4111 1111" not in dumped
    )  # the card number (bare digits may occur in timestamps)
    assert "charged twice" not in dumped
    assert "gen_ai.input.messages" not in dumped


def test_full_captures_messages_in_convention_shape() -> None:
    """`full` records input and output messages as the conventions describe them."""

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(messages: list[dict[str, str]]) -> str:
        return SECRET_ANSWER

    with capture(capture_content="full") as seen:
        answer(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": SECRET_PROMPT},
            ]
        )

    attrs = seen.span("chat gpt-4o-mini").attributes
    inputs = json.loads(attrs["gen_ai.input.messages"])
    outputs = json.loads(attrs["gen_ai.output.messages"])
    assert inputs == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": SECRET_PROMPT}]},
    ]
    assert outputs == [
        {"role": "assistant", "parts": [{"type": "text", "content": SECRET_ANSWER}]}
    ]
    assert seen.logs[0]["gen_ai.output.messages"] == attrs["gen_ai.output.messages"]


def test_full_with_a_string_prompt_and_a_stream(
    client: openai.OpenAI, server: WireServer
) -> None:
    """A str prompt becomes one user message; a stream's text is the output."""
    server.script(Reply(text="streamed answer"))

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(prompt: str) -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )

    with capture(capture_content="full") as seen:
        for _ in answer("hello?"):
            pass

    attrs = seen.span("chat gpt-4o-mini").attributes
    assert (
        json.loads(attrs["gen_ai.input.messages"])[0]["parts"][0]["content"] == "hello?"
    )
    output = json.loads(attrs["gen_ai.output.messages"])[0]
    assert output["parts"][0]["content"] == "streamed answer"
    assert output["finish_reason"] == "stop"


def test_api_key_never_reaches_telemetry(client: openai.OpenAI, tmp_path: Path) -> None:
    """The client's API key appears in no span, event or file, even with full capture."""
    path = tmp_path / "t.jsonl"
    aisys.configure(exporters="jsonl", jsonl_path=path, capture_content="full")

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer() -> object:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )

    with capture(capture_content="full") as seen:
        answer()
    answer()
    aisys.flush(5)

    dumped = (
        repr([dict(s.attributes) for s in seen.spans])
        + repr(seen.logs)
        + path.read_text()
    )
    assert "sk-aisys-test-key-client" not in dumped


def test_llm_calls_follow_the_same_rules(server: WireServer) -> None:
    """aisys.LLM keeps prompts out by default and records them with full capture."""
    server.script(Reply(text=SECRET_ANSWER), Reply(text=SECRET_ANSWER))
    with aisys.LLM(
        "openai:gpt-4o-mini",
        base_url=server.base_url,
        api_key="sk-aisys-test-key-client",
    ) as llm:
        with capture() as off:
            llm.chat(SECRET_PROMPT)
        with capture(capture_content="full") as full:
            llm.chat(SECRET_PROMPT)

    assert "charged twice" not in repr([dict(s.attributes) for s in off.spans]) + repr(
        off.logs
    )
    attrs = full.span("chat gpt-4o-mini").attributes
    assert SECRET_PROMPT in attrs["gen_ai.input.messages"]
    assert SECRET_ANSWER in attrs["gen_ai.output.messages"]
    assert "sk-aisys-test-key-client" not in repr(dict(attrs)) + repr(full.logs)
