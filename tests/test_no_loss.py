"""Money and data are never lost to a mistake: prices files, budgets, hits, reports, export.

Each test reproduces a way a new user lost money or data (issue #22) and fails on the
code before its fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisys
from aisys import guards
from aisys.cli.report import summarise
from aisys.metering.prices import clear_overrides
from aisys.testing import Captured, capture
from tests.wire_server import Reply, WireServer

KEY = "sk-proj-" + "q1W2e3R4t5Y6u7I8o9P0a1S2d3F4"


@pytest.fixture(autouse=True)
def _no_overrides() -> Iterator[None]:
    clear_overrides()
    yield
    clear_overrides()


def _llm(
    server: WireServer, model: str = "openai:gpt-file", **kwargs: Any
) -> aisys.LLM:
    return aisys.LLM(
        model,
        base_url=server.base_url,
        api_key="sk-aisys-test-key-k",
        retry=None,
        **kwargs,
    )


def _prices(tmp_path: Path, entries: dict[str, Any], name: str = "prices.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(entries))
    return path


# -- 1. a bad prices file ------------------------------------------------------------


def test_bad_prices_file_is_refused_by_configure_and_earlier_settings_stay(
    tmp_path: Path, server: WireServer
) -> None:
    """The file and entry are named; the settings and prices in force stay."""
    good = _prices(
        tmp_path, {"openai:gpt-file": {"input": 1, "output": 2}}, "good.json"
    )
    bad = _prices(tmp_path, {"openai:gpt-file": {"input": -1, "output": 2}}, "neg.json")
    aisys.configure(prices_path=good, service_name="before")
    with pytest.raises(aisys.ConfigError, match=r"neg\.json.*openai:gpt-file input"):
        aisys.configure(prices_path=bad, service_name="after")
    assert aisys._DEFAULT.settings.service_name == "before"
    with _llm(server) as llm:
        answer = llm.chat("hi")  # answered and priced from the good file
    assert answer.text == "Hello from the wire."
    assert (answer.cost.status, answer.cost.price_table) == ("priced", "override")


def test_bad_prices_file_from_the_environment_fails_before_sending(
    tmp_path: Path, server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On first use: nothing is sent (or billed), and the error names the file."""
    bad = _prices(tmp_path, {"openai:gpt-file": {"input": "free", "output": 2}})
    monkeypatch.setenv("AISYS_PRICES_PATH", str(bad))
    aisys._DEFAULT._settings = None
    with _llm(server) as llm, pytest.raises(aisys.ConfigError, match=r"prices\.json"):
        llm.chat("hi")

    @aisys.traced_llm
    def answer(question: str) -> str:
        raise AssertionError("never called")  # pragma: no cover

    with pytest.raises(aisys.ConfigError, match=r"prices\.json"):
        answer("hi")
    assert server.requests == []


# -- 2. the first call of a process is under its budget ---------------------------------


def test_first_call_of_a_process_is_counted_by_a_daily_budget(
    tmp_path: Path, server: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Prices from AISYS_PRICES_PATH are in force before the first estimate."""
    path = _prices(tmp_path, {"openai:gpt-file": {"input": 1000, "output": 1000}})
    monkeypatch.setenv("AISYS_PRICES_PATH", str(path))
    aisys._DEFAULT._settings = None
    # One call's estimate is (input + 16 output) tokens at $1000/M: about $0.02.
    budget = aisys.Budget("0.03", per="day", store="memory")
    with _llm(server, budget=budget) as llm:
        llm.chat("hi", max_tokens=16)
        with pytest.raises(aisys.BudgetExceededError):
            llm.chat("hi", max_tokens=16)
    assert len(server.requests) == 1


# -- 3. a decorator budget with the model as a parameter's default ----------------------


def test_decorator_budget_applies_to_a_default_model(client: openai.OpenAI) -> None:
    """docs/cost.md's example: `model="gpt-4o"` as a default is what the budget prices."""
    calls = []

    @aisys.traced_llm(budget=aisys.Budget("0.001"))
    def answer(question: str, model: str = "gpt-4o") -> object:
        calls.append(model)
        return client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}]
        )

    # 512 output tokens at gpt-4o's $10 per million is $0.005: over $0.001.
    with pytest.raises(aisys.BudgetExceededError, match=r"\$0\.001"):
        answer("hi")
    assert calls == []


# -- 4. a cache hit of an unpriced call ------------------------------------------------


def test_hit_of_an_unpriced_call_is_unknown_and_saves_an_unknown_amount(
    server: WireServer, seen: Captured, tmp_path: Path
) -> None:
    path = tmp_path / "traces.jsonl"
    with _llm(server, "openai:mystery", cache=aisys.Cache("memory")) as llm:
        with pytest.warns(aisys.AisysWarning, match="no price known"):
            first = llm.chat("hi")
        hit = llm.chat("hi")
    assert hit.cached
    assert (first.cost.status, first.cost.usd) == ("unknown", None)
    assert (hit.cost.status, hit.cost.usd) == ("unknown", None)
    span = seen.spans[-1].attributes or {}
    assert span["aisys.cache.hit"] is True
    assert span["aisys.cost.status"] == "unknown"
    assert "aisys.cost.usd" not in span
    assert "aisys.cache.saved_usd" not in span
    lines = [
        {"attributes": dict(s.attributes or {}), "start_time_unix_nano": s.start_time}
        for s in seen.spans
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (row,) = summarise(lines, "model")
    assert row.as_dict()["cost_usd"] is None  # never $0 for calls it could not price
    assert row.as_dict()["saved_usd"] is None
    assert row.unpriced_calls == 2


def test_estimate_cost_refuses_keys_that_are_not_usage_fields() -> None:
    with pytest.raises(aisys.ConfigError, match=r"'?input'?.*known: .*input_tokens"):
        aisys.estimate_cost("openai:gpt-4o-mini", {"input": 10})
    with pytest.raises(aisys.ConfigError, match="usage"):
        aisys.estimate_cost("openai:gpt-4o-mini", {"input_tokens": -5})
    total = aisys.estimate_cost(
        "openai:gpt-4o-mini", {"input_tokens": 10, "total_tokens": 10}
    )
    assert total.status == "priced"  # total_tokens, as Usage shows it, is accepted


# -- 5. the report charges the model that answered ---------------------------------------


def _span(
    span_id: str,
    attrs: dict[str, Any],
    parent: str | None = None,
) -> dict[str, Any]:
    return {
        "span_id": span_id,
        "parent_span_id": parent,
        "start_time_unix_nano": 1,
        "end_time_unix_nano": 1_000_001,
        "status": {"code": "OK"},
        "attributes": {"gen_ai.operation.name": "chat", **attrs},
    }


@pytest.mark.parametrize("attempt_first", [True, False])
def test_report_charges_a_billed_failed_attempt_to_its_own_model(
    attempt_first: bool,
) -> None:
    """The call and its answer's cost go to the backup; the billed failure to its model."""
    call = _span(
        "c1",
        {
            "gen_ai.request.model": "primary",
            "gen_ai.response.model": "backup-2025",
            "aisys.target": "anthropic:backup",
            "aisys.retry.attempts": 2,
            "aisys.fallback.index": 1,
            "aisys.cost.usd": 0.5,  # 0.2 billed by the failed attempt + 0.3 answered
            "aisys.cost.status": "priced",
        },
    )
    attempt = _span(
        "a1",
        {
            "gen_ai.request.model": "primary",
            "gen_ai.provider.name": "anthropic",
            "aisys.attempt.number": 1,
            "aisys.attempt.cost.usd": 0.2,
        },
        parent="c1",
    )
    rows = summarise([attempt, call] if attempt_first else [call, attempt], "model")
    by_group = {row.group: row.as_dict() for row in rows}
    assert by_group["backup"]["calls"] == 1
    assert by_group["backup"]["cost_usd"] == pytest.approx(0.3)
    assert by_group["primary"]["calls"] == 0
    assert by_group["primary"]["cost_usd"] == pytest.approx(0.2)
    (day,) = summarise([attempt, call], "day")  # other groupings count it once
    assert day.as_dict()["cost_usd"] == pytest.approx(0.5)


# -- 6. a guard's fallback reports the target that answered -------------------------------


def test_guard_fallback_reports_the_target_that_answered(
    server: WireServer, seen: Captured
) -> None:
    with WireServer() as backup:
        server.script(Reply(text=f"the key is {KEY}"))
        fallback = aisys.LLM(
            "openai:b", base_url=backup.base_url, api_key="sk-aisys-test-key-k"
        )
        with _llm(
            server,
            "openai:m",
            guards=[guards.Secrets(action="fallback")],
            fallbacks=[fallback],
        ) as llm:
            answer = llm.chat("hi")
    assert answer.text == "Hello from the wire."
    assert (answer.fallback_index, answer.attempts) == (1, 2)
    (call, *attempts) = sorted(
        (dict(s.attributes or {}) for s in seen.spans),
        key=lambda attrs: "aisys.attempt.number" in attrs,
    )
    assert call["aisys.fallback.index"] == 1
    assert call["aisys.target"] == "openai:b"
    assert [a["aisys.fallback.index"] for a in attempts] == [0, 1]


# -- 7. a JSONL file in a folder that does not exist ----------------------------------


def test_jsonl_folder_is_created(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "sub" / "traces.jsonl"
    aisys.configure(exporters=["jsonl"], jsonl_path=path)
    aisys.LLM("scripted:m").chat("hi")
    assert aisys.flush() is True
    (line,) = path.read_text().splitlines()
    assert json.loads(line)["name"] == "chat m"


def test_flush_says_false_when_an_exporter_failed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """A path that cannot be written: one warning, no traceback, flush() is False."""
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be")
    aisys.configure(exporters=["jsonl"], jsonl_path=blocker / "traces.jsonl")
    with caplog.at_level(logging.WARNING, logger="aisys"):
        aisys.LLM("scripted:m").chat("hi")
        assert aisys.flush() is False
        aisys.LLM("scripted:m").chat("again")
        assert aisys.flush() is False
        aisys.shutdown()
    warned = [r for r in caplog.records if "could not export" in r.getMessage()]
    assert len(warned) == 1
    assert "Traceback" not in capfd.readouterr().err


# -- 8. gateways: price_as ---------------------------------------------------------------


def test_an_unknown_endpoint_warns_at_the_users_line_and_names_price_as(
    server: WireServer,
) -> None:
    with (
        _llm(server, "openai:gpt-4o-mini") as llm,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        answer = llm.chat("hi")
    assert answer.cost.status == "unknown"
    (warning,) = [w for w in caught if issubclass(w.category, aisys.AisysWarning)]
    assert server.base_url in str(warning.message)
    assert "price_as='openai'" in str(warning.message)
    assert warning.filename == __file__


def test_price_as_prices_a_gateway_and_its_string_fallbacks(server: WireServer) -> None:
    server.script(Reply(status=503))
    with _llm(
        server,
        "openai:gpt-4o",
        price_as="openai",
        fallbacks=["openai:gpt-4o-mini"],
    ) as llm:
        answer = llm.chat("hi")
    assert answer.fallback_index == 1
    usage = answer.usage
    expected = aisys.estimate_cost("openai:gpt-4o-mini", usage)
    assert answer.cost.status == "priced"
    assert answer.cost.usd == expected.usd


def test_price_as_on_a_decorated_function(client: openai.OpenAI) -> None:
    """An OpenAI SDK object for an Anthropic model (a proxy) priced from Anthropic's table."""

    @aisys.traced_llm(price_as="anthropic")
    def answer() -> object:
        return client.chat.completions.create(
            model="claude-3-5-haiku-latest",
            messages=[{"role": "user", "content": "hi"}],
        )

    with capture() as seen:
        answer()
    attrs = seen.spans[-1].attributes or {}
    assert attrs["aisys.cost.status"] == "priced"
    assert attrs["aisys.cost.usd"] > 0


def test_price_as_must_name_a_known_table() -> None:
    with pytest.raises(aisys.ConfigError, match=r"price_as.*'opnai'"):
        aisys.LLM("openai:gpt-4o", price_as="opnai")
    with pytest.raises(aisys.ConfigError, match="price_as"):
        aisys.traced_llm(price_as="opnai")(lambda: None)


# -- 9. a registered provider:model is what the bare name finds ----------------------------


def test_registered_provider_model_is_what_the_bare_name_finds() -> None:
    aisys.register_price("openai:gpt-4o-mini", input=1, output=2)
    for model in ("gpt-4o-mini", "openai:gpt-4o-mini", "gpt-4o-mini-2024-07-18"):
        cost = aisys.estimate_cost(model, {"input_tokens": 1_000_000})
        assert (cost.usd, cost.price_table) == (Decimal(1), "override"), model


# -- metering, pricing and telemetry never fail a call that succeeded --------------------


def _answer_body(model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {
        "id": "x",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello from the wire."},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1},
    }


def _broken(*_: Any, **__: Any) -> Any:
    raise RuntimeError("injected failure")


# Where metering, pricing and telemetry can fail, each named by what it patches.
FAULTS = {
    "price lookup": "aisys.metering.cost.find_price",
    "price table": "aisys.metering.prices._from_database",
    "token counting": "aisys.metering.tokens.count_tokens",
    "span attributes": "aisys.telemetry.writer.end_attributes",
    "span start": "opentelemetry.sdk.trace.Tracer.start_span",
    "span end": "opentelemetry.sdk.trace.Span.end",
    "metrics": "aisys.telemetry.metrics.Instruments.record",
    "log event": "aisys.telemetry.logs.EventLog.emit",
    "budget settle": "aisys.stores.memory.MemoryStore.add",
    "public cost": "aisys.metering.cost.CallCost.to_cost",
}


def _entry(kind: str, server: WireServer, stack: contextlib.ExitStack) -> Any:
    """A call that succeeds, through one of aisys's entry points; returns its text."""
    budget = aisys.Budget(100, per="day", store="memory")
    if kind.startswith("llm"):
        llm = _llm(server, "openai:gpt-4o-mini", budget=budget, price_as="openai")
        stack.callback(llm.close)
        if kind == "llm.chat":
            return lambda: llm.chat("hi").text
        if kind == "llm.achat":

            async def achat() -> str:
                async with llm:
                    return (await llm.achat("hi")).text

            return achat
        return lambda: "".join(chunk.text for chunk in llm.stream("hi"))

    if kind == "decorated":

        @aisys.traced_llm(budget=budget)
        def answer(question: str, model: str = "gpt-4o-mini") -> Any:
            return _answer_body(model)

        return lambda: answer("hi")["choices"][0]["message"]["content"]

    @aisys.traced_llm(budget=budget, model="gpt-4o-mini")
    async def aanswer(question: str) -> str:
        return "Hello from the wire."

    return lambda: aanswer("hi")


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(["llm.chat", "llm.achat", "llm.stream", "decorated", "async"]),
    faults=st.sets(st.sampled_from(sorted(FAULTS)), min_size=1, max_size=3),
)
def test_no_failure_inside_metering_or_telemetry_reaches_a_caller_that_succeeded(
    server: WireServer, kind: str, faults: set[str]
) -> None:
    aisys.testing.reset()
    with capture(), warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        for fault in faults:
            stack.enter_context(mock.patch(FAULTS[fault], _broken))
        call = _entry(kind, server, stack)
        result = call()
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
    assert result == "Hello from the wire."
