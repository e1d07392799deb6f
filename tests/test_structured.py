"""Structured output: validated answers, re-asked with the errors, usage added up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

import aisys
from aisys.metering.prices import clear_overrides
from aisys.testing import Captured
from tests.wire_server import Reply, WireServer


class Invoice(pydantic.BaseModel):
    number: str
    total: float


@pytest.fixture(autouse=True)
def _price() -> Iterator[None]:
    clear_overrides()
    aisys.register_price("openai:m", input=1000, output=1000)
    aisys.register_price("anthropic:claude-3-5-haiku-latest", input=1000, output=1000)
    yield
    clear_overrides()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_wrong_then_right_is_re_asked(
    server: WireServer, seen: Captured, mode: str
) -> None:
    server.script(
        Reply(text='{"number": "A1"}'), Reply(text='{"number": "A1", "total": 12.5}')
    )
    async with aisys.LLM(
        "openai:m", base_url=server.base_url, api_key="sk-aisys-test-key-k"
    ) as llm:
        if mode == "sync":
            answer = llm.chat("the invoice?", response_model=Invoice, max_retries=2)
        else:
            answer = await llm.achat("the invoice?", response_model=Invoice)
    assert answer.parsed == Invoice(number="A1", total=12.5)
    first, second = (r.body for r in server.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["title"] == "Invoice"
    assert second["messages"][-2] == {
        "role": "assistant",
        "content": '{"number": "A1"}',
    }
    assert "total" in second["messages"][-1]["content"]  # the validation errors
    # usage and cost add up both answers (the wire server counts words)
    assert answer.usage.output_tokens == 2 + 4
    assert answer.cost.usd is not None
    assert float(answer.cost.usd) == pytest.approx(
        (answer.usage.input_tokens + answer.usage.output_tokens) / 1000
    )
    root = next(s for s in seen.spans if s.parent is None)
    children = [s for s in seen.spans if s.parent is not None]
    assert len(children) == 2  # one child span per attempt
    assert root.attributes["gen_ai.usage.output_tokens"] == 6


def test_giving_up_raises_with_the_raw_text(server: WireServer, seen: Captured) -> None:
    server.script(Reply(text="not json"), Reply(text="still not"))
    with (
        aisys.LLM(
            "openai:m", base_url=server.base_url, api_key="sk-aisys-test-key-k"
        ) as llm,
        pytest.raises(aisys.OutputValidationError) as raised,
    ):
        llm.chat("the invoice?", response_model=Invoice, max_retries=1)
    error = raised.value
    assert error.attempts == 2
    assert error.raw_text == "still not"
    assert error.errors
    assert len(server.requests) == 2
    root = next(s for s in seen.spans if s.parent is None)
    assert root.attributes["error.type"] == "aisys.OutputValidationError"
    # Neither answer was delivered, but both were billed: the call's cost says so.
    tokens = root.attributes["gen_ai.usage.output_tokens"]
    assert tokens == 2 + 2  # the wire server counts words
    assert root.attributes["aisys.cost.usd"] == pytest.approx(
        (root.attributes["gen_ai.usage.input_tokens"] + tokens) / 1000
    )


def test_anthropic_gets_the_schema_in_a_system_message(server: WireServer) -> None:
    server.script(Reply(text='{"number": "B2", "total": 3}'))
    with aisys.LLM(
        "anthropic:claude-3-5-haiku-latest",
        base_url=server.root_url,
        api_key="sk-aisys-test-key-k",
    ) as llm:
        answer = llm.chat("the invoice?", response_model=Invoice)
    assert answer.parsed == Invoice(number="B2", total=3)
    body: dict[str, Any] = server.requests[0].body
    assert "JSON schema" in body["system"]
    assert "response_format" not in body


def test_bad_arguments() -> None:
    with aisys.LLM("openai:m", api_key="sk-aisys-test-key-k") as llm:
        with pytest.raises(TypeError, match="response_model"):
            llm.chat("hi", response_model=dict)
        with pytest.raises(TypeError, match="max_retries"):
            llm.chat("hi", response_model=Invoice, max_retries=-1)


def test_servers_without_json_schema_get_json_object_then_a_system_message(
    server: WireServer,
) -> None:
    """llama.cpp refuses json_schema: aisys asks again with json_object + schema, and
    then with the schema in a system message."""
    refused = {
        "error": {"message": "response_format: Input should be 'text' or 'json_object'"}
    }
    server.script(
        Reply(status=400, body=refused),
        Reply(status=400, body=refused),
        Reply(text='{"number": "C3", "total": 1}'),
    )
    with aisys.LLM(
        "openai:m", base_url=server.base_url, api_key="sk-aisys-test-key-k"
    ) as llm:
        answer = llm.chat("the invoice?", response_model=Invoice)
    assert answer.parsed == Invoice(number="C3", total=1)
    first, second, third = (r.body for r in server.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert second["response_format"]["type"] == "json_object"
    assert second["response_format"]["schema"]["title"] == "Invoice"
    assert "response_format" not in third
    assert "JSON schema" in third["messages"][0]["content"]
