"""OTel metrics per call: token usage, duration, errors; the newer names behind the opt-in."""

from __future__ import annotations

import pytest

import aisys
from aisys.testing import Captured, capture


@aisys.traced_llm(model="gpt-4o-mini", provider="openai")
def answer(prompt: str) -> str:
    return "three word answer"


@aisys.traced_llm(model="gpt-4o-mini", provider="openai")
def fail(prompt: str) -> str:
    raise ConnectionError


def test_token_usage_and_duration(seen: Captured) -> None:
    """gen_ai.client.token.usage per token type, gen_ai.client.operation.duration in seconds."""
    answer("hello")

    usage = {
        p.attributes["gen_ai.token.type"]: p
        for p in seen.metric_points("gen_ai.client.token.usage")
    }
    assert usage["output"].sum == aisys.count_tokens("three word answer", "gpt-4o-mini")
    assert usage["input"].sum == aisys.count_tokens("hello", "gpt-4o-mini")
    assert usage["input"].attributes["gen_ai.provider.name"] == "openai"
    assert usage["input"].attributes["gen_ai.request.model"] == "gpt-4o-mini"
    (duration,) = seen.metric_points("gen_ai.client.operation.duration")
    assert duration.count == 1
    assert duration.explicit_bounds[0] == 0.01


def test_errors_are_counted_with_their_type(seen: Captured) -> None:
    """aisys.errors counts failures; the duration carries error.type."""
    with pytest.raises(ConnectionError):
        fail("x")

    (errors,) = seen.metric_points("aisys.errors")
    assert errors.value == 1
    assert errors.attributes["error.type"] == "ConnectionError"
    (duration,) = seen.metric_points("gen_ai.client.operation.duration")
    assert duration.attributes["error.type"] == "ConnectionError"


def test_latest_conventions_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """gen_ai_latest_experimental switches to the genai repository's inference metrics and names."""
    monkeypatch.setenv(
        "OTEL_SEMCONV_STABILITY_OPT_IN", "http,gen_ai_latest_experimental"
    )
    with capture() as seen:
        answer("hello")

    assert seen.metric_points("gen_ai.client.token.usage") == []
    assert seen.metric_points("gen_ai.client.operation.duration") == []
    (duration,) = seen.metric_points("gen_ai.client.inference.duration")
    assert duration.count == 1
    (counted,) = seen.metric_points("gen_ai.client.inference.usage.output_tokens")
    assert counted.value == aisys.count_tokens("three word answer", "gpt-4o-mini")
    assert counted.attributes["gen_ai.token.modality"] == "unknown"
    assert (
        seen.metric_points("gen_ai.client.inference.operation.input_tokens")[0].sum > 0
    )


def test_cache_write_name_follows_the_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache writes are cache_creation by default and cache_write under the opt-in."""
    from aisys.testing import scripted
    from aisys.types import Usage

    response = scripted("x").model_copy(
        update={
            "usage": Usage(
                input_tokens=10,
                output_tokens=1,
                cache_write_input_tokens=4,
                reasoning_output_tokens=1,
            )
        }
    )

    @aisys.traced_llm
    def cached() -> aisys.ChatResponse:
        return response

    with capture() as old:
        cached()
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    with capture() as new:
        cached()

    old_attrs = old.spans[0].attributes
    new_attrs = new.spans[0].attributes
    assert old_attrs["gen_ai.usage.cache_creation.input_tokens"] == 4
    assert "gen_ai.usage.reasoning.output_tokens" not in old_attrs
    assert new_attrs["gen_ai.usage.cache_write.input_tokens"] == 4
    assert new_attrs["gen_ai.usage.reasoning.output_tokens"] == 1
