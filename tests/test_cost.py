"""Cost truth: prices from genai-prices, overrides, unknown never $0, cost on every call."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

import aisys
from aisys.metering.prices import clear_overrides
from aisys.testing import Captured, Fault, ScriptedTransport
from tests.wire_server import Reply, WireServer

M = Decimal(1_000_000)

# Published prices, USD per million tokens: (input, output, cache read, cache write).
# Written here by hand from the providers' price pages, not read from genai-prices.
PUBLISHED = {
    "openai:gpt-4o-mini": ("0.15", "0.60", "0.075", None),
    "openai:gpt-4o": ("2.50", "10.00", "1.25", None),
    "openai:gpt-4.1": ("2.00", "8.00", "0.50", None),
    "openai:gpt-4.1-mini": ("0.40", "1.60", "0.10", None),
    "openai:gpt-4.1-nano": ("0.10", "0.40", "0.025", None),
    "openai:o3-mini": ("1.10", "4.40", "0.55", None),
    "openai:o4-mini": ("1.10", "4.40", "0.275", None),
    "openai:gpt-3.5-turbo": ("0.50", "1.50", None, None),
    "anthropic:claude-3-5-haiku-latest": ("0.80", "4.00", "0.08", "1.00"),
    "anthropic:claude-3-5-sonnet-20241022": ("3.00", "15.00", "0.30", "3.75"),
    "anthropic:claude-3-opus-20240229": ("15.00", "75.00", "1.50", "18.75"),
    "anthropic:claude-3-haiku-20240307": ("0.25", "1.25", "0.03", "0.30"),
    "anthropic:claude-sonnet-4-20250514": ("3.00", "15.00", "0.30", "3.75"),
}


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    clear_overrides()
    yield
    clear_overrides()


def _by_hand(
    model: str, fresh: int, read: int, write: int, output: int
) -> tuple[Decimal, Decimal]:
    price_in, price_out, price_read, price_write = PUBLISHED[model]
    usd_in = (
        fresh * Decimal(price_in)
        + read * Decimal(price_read or price_in)
        + write * Decimal(price_write or price_in)
    ) / M
    return usd_in, output * Decimal(price_out) / M


@pytest.mark.parametrize("model", sorted(PUBLISHED))
def test_estimate_cost_matches_published_prices(model: str) -> None:
    """Cached reads at their price, writes at theirs, reasoning once as output."""
    usage = aisys.Usage(
        input_tokens=12_000,  # includes the cached tokens, as the conventions say
        output_tokens=3_000,  # includes the reasoning tokens
        cache_read_input_tokens=5_000,
        cache_write_input_tokens=2_000 if model.startswith("anthropic") else 0,
        reasoning_output_tokens=1_200,
    )
    cost = aisys.estimate_cost(model, usage)
    fresh = 12_000 - 5_000 - usage.cache_write_input_tokens
    usd_in, usd_out = _by_hand(
        model, fresh, 5_000, usage.cache_write_input_tokens, 3_000
    )
    assert cost.status == "priced"
    assert cost.input_usd == usd_in
    assert cost.output_usd == usd_out
    assert cost.usd == usd_in + usd_out
    assert cost.price_table is not None
    assert cost.price_table.startswith("genai-prices ")


@pytest.mark.parametrize(
    ("dated", "model"),
    [
        ("gpt-4o-mini-2024-07-18", "openai:gpt-4o-mini"),
        ("claude-3-5-haiku-20241022", "anthropic:claude-3-5-haiku-latest"),
    ],
)
def test_dated_snapshots_resolve_to_their_model(dated: str, model: str) -> None:
    usage = {"input_tokens": 1000, "output_tokens": 100}
    assert (
        aisys.estimate_cost(dated, usage).usd == aisys.estimate_cost(model, usage).usd
    )


def test_provider_given_apart_and_dict_usage() -> None:
    cost = aisys.estimate_cost(
        "gpt-4o", {"input_tokens": 1_000_000, "output_tokens": 0}, provider="openai"
    )
    assert cost.usd == Decimal("2.5")


def test_counted_usage_is_estimated() -> None:
    usage = aisys.Usage(input_tokens=10, output_tokens=10, estimated=True)
    assert aisys.estimate_cost("openai:gpt-4o", usage).status == "estimated"


def test_unknown_model_is_none_never_zero_and_warns_once() -> None:
    """An unpriced model: usd None, status unknown, one AisysWarning per model."""
    usage = {"input_tokens": 10, "output_tokens": 5}
    with pytest.warns(aisys.AisysWarning, match="no price known for acme:brain-9"):
        cost = aisys.estimate_cost("acme:brain-9", usage)
    assert cost.usd is None
    assert cost.status == "unknown"
    assert cost.input_usd is None
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert aisys.estimate_cost("acme:brain-9", usage).usd is None  # no 2nd warning


def test_a_call_without_a_model_says_how_to_name_one(seen: Captured) -> None:
    @aisys.traced_llm
    def answer(question: str) -> str:
        return "a plain string names no model"

    with pytest.warns(
        aisys.AisysWarning, match="names no model.*model= to @traced_llm"
    ):
        answer("hi")
    (span,) = seen.spans
    assert span.attributes["aisys.cost.status"] == "unknown"


def test_register_price_wins_and_matches_dated_names() -> None:
    aisys.register_price("openai:gpt-4o-mini", input=1, output=2, cache_read="0.5")
    cost = aisys.estimate_cost(
        "openai:gpt-4o-mini-2024-07-18",
        {
            "input_tokens": 3_000_000,
            "cache_read_input_tokens": 1_000_000,
            "output_tokens": 1_000_000,
        },
    )
    assert (cost.usd, cost.price_table) == (Decimal("4.5"), "override")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("prices.json", json.dumps({"acme:brain-9": {"input": 1, "output": 3}})),
        ("prices.toml", '["acme:brain-9"]\ninput = 1\noutput = 3\n'),
        ("prices.yaml", "acme:brain-9:\n  input: 1\n  output: 3\n"),
    ],
)
def test_price_file_overrides(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    aisys.configure(prices_path=path)
    cost = aisys.estimate_cost(
        "acme:brain-9", {"input_tokens": 1_000_000, "output_tokens": 1_000_000}
    )
    assert (cost.usd, cost.status, cost.price_table) == (
        Decimal(4),
        "priced",
        "override",
    )


def test_bad_price_file_says_what_is_wrong(tmp_path: Path) -> None:
    """configure() refuses it, naming the file and the entry."""
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"acme:brain-9": {"input": 1, "outptu": 3}}))
    with pytest.raises(aisys.ConfigError, match=r"prices\.json.*'acme:brain-9'.*output"):
        aisys.configure(prices_path=path)


@given(
    fresh=st.integers(0, 10**7),
    read=st.integers(0, 10**7),
    write=st.integers(0, 10**7),
    output=st.integers(0, 10**7),
)
def test_cost_is_additive_and_never_negative(
    fresh: int, read: int, write: int, output: int
) -> None:
    """Each token priced once: the parts add up, and more tokens never cost less."""
    usage = {
        "input_tokens": fresh + read + write,
        "cache_read_input_tokens": read,
        "cache_write_input_tokens": write,
        "output_tokens": output,
    }
    cost = aisys.estimate_cost("anthropic:claude-3-5-haiku-latest", usage)
    assert cost.usd is not None
    assert cost.usd >= 0
    assert cost.usd == cost.input_usd + cost.output_usd  # type: ignore[operator]
    more = aisys.estimate_cost(
        "anthropic:claude-3-5-haiku-latest", {**usage, "output_tokens": output + 1}
    )
    assert more.usd is not None
    assert more.usd > cost.usd


# -- cost on calls ------------------------------------------------------------------------


def _completion(usage: dict[str, Any], model: str = "gpt-4o-mini-2024-07-18") -> Fault:
    """A 200 answer with exactly this usage (a Fault with status 200 sends its body)."""
    return Fault(
        200,
        body={
            "id": "c-1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "hi"},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        },
    )


async def test_llm_response_and_span_carry_the_cost(seen: Captured) -> None:
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "prompt_tokens_details": {"cached_tokens": 1000},
        "completion_tokens_details": {"reasoning_tokens": 200},
    }
    script = ScriptedTransport([_completion(usage)])
    async with aisys.LLM(
        "openai:gpt-4o-mini", transport=script, api_key="sk-aisys-test-key-k"
    ) as llm:
        response = await llm.achat("hi")
    usd_in, usd_out = _by_hand("openai:gpt-4o-mini", 1000, 1000, 0, 500)
    assert response.cost.usd == usd_in + usd_out
    assert response.cost.status == "priced"
    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.cost.usd"] == pytest.approx(float(usd_in + usd_out))
    assert span.attributes["aisys.cost.status"] == "priced"
    assert span.attributes["aisys.price_table"].startswith("genai-prices")
    (event,) = seen.logs
    assert event["aisys.cost.usd"] == pytest.approx(float(usd_in + usd_out))
    (point,) = seen.metric_points("aisys.cost.usd")
    assert point.value == pytest.approx(float(usd_in + usd_out))
    assert point.attributes["gen_ai.request.model"] == "gpt-4o-mini"


def test_endpoint_of_a_known_provider_is_priced_as_that_provider() -> None:
    """An OpenAI-compatible endpoint of Groq is priced at Groq's prices."""
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000}
    script = ScriptedTransport([_completion(usage, model="llama-3.1-8b-instant")])
    with aisys.LLM(
        "openai:llama-3.1-8b-instant",
        base_url="https://api.groq.com/openai/v1",
        transport=script,
        api_key="sk-aisys-test-key-k",
    ) as llm:
        cost = llm.chat("hi").cost
    assert cost.usd == Decimal("0.05") + Decimal("0.08")  # Groq: $0.05 in, $0.08 out


def test_local_server_is_unknown_never_zero(server: WireServer, seen: Captured) -> None:
    """gpt-4o-mini served by a local OpenAI-compatible server has no known price."""
    with (
        pytest.warns(aisys.AisysWarning),
        aisys.LLM(
            "openai:gpt-4o-mini",
            base_url=server.base_url,
            api_key="sk-aisys-test-key-k",
        ) as llm,
    ):
        response = llm.chat("hi")
    assert response.cost.usd is None
    assert response.cost.status == "unknown"
    span = seen.span("chat gpt-4o-mini")
    assert span.attributes["aisys.cost.status"] == "unknown"
    assert "aisys.cost.usd" not in span.attributes
    assert "aisys.cost.usd" not in seen.logs[0]
    assert seen.metric_points("aisys.cost.usd") == []


async def test_billed_failed_attempts_add_to_the_cost(
    server: WireServer, seen: Captured
) -> None:
    """An Anthropic stream failing after message_start was billed its input tokens."""
    aisys.register_price("anthropic:claude-3-5-haiku-latest", input=1, output=10)
    server.script(
        Reply(error_event=True, usage={"input_tokens": 20, "output_tokens": 0}),
        Reply(text="fine now", usage={"input_tokens": 20, "output_tokens": 2}),
    )
    async with aisys.LLM(
        "anthropic:claude-3-5-haiku-latest",
        base_url=server.root_url,
        retry=aisys.Retry(max_attempts=2, initial=0, jitter=False),
    ) as llm:
        stream = llm.astream("hi")
        text = "".join([chunk.text async for chunk in stream])
    assert text == "fine now"
    assert stream.response is not None
    # message_start reports output_tokens=1, as Anthropic does: the failed attempt was
    # billed 20 in + 1 out, the answer 20 in + 2 out; $1/M in, $10/M out.
    assert stream.response.cost.usd == (Decimal(40) + Decimal(30)) / M
    (root,) = [s for s in seen.spans if s.parent is None]
    assert root.attributes["aisys.cost.usd"] == pytest.approx(70 / 1e6)
    assert root.attributes["gen_ai.usage.input_tokens"] == 40
    failed = [
        s for s in seen.spans if s.attributes.get("aisys.attempt.outcome") == "error"
    ]
    assert failed[0].attributes["aisys.attempt.cost.usd"] == pytest.approx(30 / 1e6)


def test_decorator_prices_what_the_sdk_returned(
    client: openai.OpenAI, seen: Captured
) -> None:
    @aisys.traced_llm
    def ask(question: str) -> Any:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": question}]
        )

    result = ask("How long do refunds take?")
    usage = result.usage
    assert usage is not None
    expected = (
        usage.prompt_tokens * Decimal("0.15") + usage.completion_tokens * Decimal("0.6")
    ) / M
    (span,) = seen.spans
    assert span.attributes["aisys.cost.usd"] == pytest.approx(float(expected))
    assert span.attributes["aisys.cost.status"] == "priced"


def test_decorator_prices_counted_tokens_as_estimated(seen: Captured) -> None:
    @aisys.traced_llm(model="gpt-4o", provider="openai")
    def ask(question: str) -> str:
        return "Five days."

    ask("How long do refunds take?")
    span = seen.span("chat gpt-4o")
    assert span.attributes["aisys.cost.status"] == "estimated"
    assert span.attributes["aisys.cost.usd"] > 0


@given(
    a=st.tuples(*[st.integers(0, 10**6)] * 5, st.booleans()),
    b=st.tuples(*[st.integers(0, 10**6)] * 5, st.booleans()),
)
def test_usage_adds_like_bills(
    a: tuple[int, int, int, int, int, bool], b: tuple[int, int, int, int, int, bool]
) -> None:
    """`Usage + Usage` adds every count; the sum is priced as the two apart."""
    fields = (
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_write_input_tokens",
        "reasoning_output_tokens",
    )

    def usage(values: tuple[int, int, int, int, int, bool]) -> aisys.Usage:
        counts = dict(zip(fields, values[:5], strict=True))
        counts["input_tokens"] += counts["cache_read_input_tokens"]  # includes cached
        return aisys.Usage(**counts, estimated=values[5])

    first, second = usage(a), usage(b)
    total = first + second
    for name in fields:
        assert getattr(total, name) == getattr(first, name) + getattr(second, name)
    assert total.estimated == (first.estimated or second.estimated)
    model = "openai:gpt-4o-mini"
    together = aisys.estimate_cost(model, total).usd
    apart = aisys.estimate_cost(model, first).usd + aisys.estimate_cost(model, second).usd  # type: ignore[operator]
    assert together == apart
