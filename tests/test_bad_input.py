"""Bad input gets a clear error at the call that made it, naming the argument (#24).

Each reproduction below used to be accepted and to fail later, deep inside, as an
`AttributeError` (or to do something else than asked); now the constructor refuses it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aisys
from aisys import guards
from tests.wire_server import WireServer


@pytest.mark.parametrize(
    ("make", "names"),
    [
        (lambda: aisys.LLM(42), r"LLM\(model=\) takes 'provider:model'"),  # type: ignore[arg-type]
        (
            lambda: aisys.LLM("openai:x", fallbacks="openai:y"),  # type: ignore[arg-type]
            r"fallbacks=\).*did you mean fallbacks=\['openai:y'\]",
        ),
        (
            lambda: aisys.LLM("openai:x", guards=["pii"]),  # type: ignore[list-item]
            r"guards=\) takes aisys.guards objects.*'pii'.*aisys.guards.PII\(\)",
        ),
        (
            lambda: aisys.Cache(3600),  # type: ignore[arg-type]
            r"Cache\(store=\).*got 3600; for entries that expire, pass ttl=3600",
        ),
        (
            lambda: aisys.LLM("openai:x", timeout="10"),  # type: ignore[arg-type]
            r"LLM\(timeout=\) takes positive seconds.*pass timeout=10",
        ),
        (
            lambda: aisys.trace("t", tags="support"),  # type: ignore[arg-type]
            r"trace\(tags=\) takes a list of strings.*did you mean \['support'\]",
        ),
        (
            lambda: aisys.Budget(1, per="day", store="postgres://x"),
            r"Budget\(store=\) takes None.*'postgres://x'",
        ),
        (
            lambda: aisys.LLM("openai:x", retry=3),  # type: ignore[arg-type]
            r"LLM\(retry=\).*pass retry=aisys.Retry\(max_attempts=3\)",
        ),
        (
            lambda: aisys.traced_llm(retry=3),  # type: ignore[arg-type]
            r"traced_llm\(retry=\).*aisys.Retry\(max_attempts=3\)",
        ),
        (
            lambda: aisys.traced_llm(fallbacks=["openai:y"]),  # type: ignore[list-item]
            r"traced_llm\(fallbacks=\).*aisys.LLM\(fallbacks=",
        ),
        (
            lambda: aisys.Budget(1, scope=7),  # type: ignore[arg-type]
            r"Budget\(scope=\)",
        ),
    ],
)
def test_a_wrong_argument_is_refused_where_it_is_given(
    make: Callable[[], Any], names: str
) -> None:
    with pytest.raises(aisys.ConfigError, match=names):
        make()


def test_one_guard_may_be_given_without_a_list(server: WireServer) -> None:
    """`guards=aisys.guards.PII()` is one guard: it applies (like `budget=` takes one)."""
    with aisys.LLM(
        "openai:x",
        base_url=server.base_url,
        api_key="sk-aisys-test-key-k",
        guards=guards.PII(),
    ) as llm, pytest.raises(aisys.GuardError):
        llm.chat("mail me at ana@example.com")
    assert server.requests == []


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"temperature": "hot"}, r"chat\(temperature=\) takes a number from 0 to 2"),
        ({"max_tokens": -1}, r"chat\(max_tokens=\) takes a whole number >= 1"),
        ({"top_p": 1.5}, r"chat\(top_p=\)"),
        ({"stop": 5}, r"chat\(stop=\)"),
        ({"tools": "search"}, r"chat\(tools=\)"),
    ],
)
def test_malformed_parameters_never_leave_the_process(
    server: WireServer, params: dict[str, Any], names: str
) -> None:
    with aisys.LLM(
        "openai:x", base_url=server.base_url, api_key="sk-aisys-test-key-k"
    ) as llm:
        with pytest.raises(aisys.ConfigError, match=names):
            llm.chat("hi", **params)
        with pytest.raises(ValueError, match=r"messages\[0\]\['role'\].*'usr'"):
            llm.chat([{"role": "usr", "content": "hi"}])
    assert server.requests == []


def test_stream_says_structured_output_is_chats() -> None:
    import pydantic

    class Answer(pydantic.BaseModel):
        text: str

    llm = aisys.LLM("scripted:x")
    with pytest.raises(TypeError, match=r"response_model=.*chat\(\) and achat\(\)") as raised:
        llm.stream("hi", response_model=Answer)
    assert "extra=" not in str(raised.value)  # the old, wrong advice


# -- every public constructor, thrown wrong types --------------------------------------

WRONG = st.one_of(
    st.integers(-5, 5),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(object()),
)

CONSTRUCTORS: dict[str, tuple[Callable[..., Any], tuple[str, ...]]] = {
    "LLM": (
        lambda **kw: aisys.LLM(kw.pop("model", "scripted:x"), **kw),
        ("model", "timeout", "fallbacks", "retry", "deadline", "guards", "base_url"),
    ),
    "Budget": (
        lambda **kw: aisys.Budget(kw.pop("usd", 1), **kw),
        ("usd", "per", "scope", "on_exceed", "store", "on_store_error", "name"),
    ),
    "Cache": (aisys.Cache, ("store", "ttl", "namespace", "mode", "store_truncated")),
    "Retry": (aisys.Retry, ("max_attempts", "initial", "max_delay", "jitter")),
    "CircuitBreaker": (aisys.CircuitBreaker, ("failure_threshold", "reset_timeout")),
    "trace": (
        lambda **kw: aisys.trace(kw.pop("name", "t"), **kw),
        ("name", "user_id", "session_id", "tags", "metadata"),
    ),
    "traced_llm": (
        aisys.traced_llm,
        ("name", "provider", "model", "operation", "retry", "fallbacks", "deadline", "guards"),
    ),
}


def _accepted(name: str, argument: str, value: Any) -> bool:
    """Values a careful caller may give and that are right (the property skips them)."""
    if argument in ("store",) and value in (None, "memory"):
        return True
    if argument == "usd" and isinstance(value, str):  # Budget("0.50") is documented
        from decimal import Decimal, InvalidOperation

        try:
            return Decimal(value).is_finite() and Decimal(value) >= 0
        except InvalidOperation:
            return False
    if isinstance(value, bool):
        return argument in ("jitter", "store_truncated")
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return argument in (
            "timeout", "deadline", "ttl", "usd", "initial", "max_delay", "reset_timeout",
        ) or (isinstance(value, int) and argument in ("max_attempts", "failure_threshold"))  # fmt: skip
    if isinstance(value, int | float) and value == 0:
        return argument in ("usd", "initial", "max_delay")
    if isinstance(value, str) and value:
        return argument in (
            "name", "user_id", "session_id", "provider", "model", "operation",
            "namespace", "base_url",
        ) and not (argument == "model" and name == "LLM")  # fmt: skip
    if isinstance(value, list | dict) and not value:
        return argument in ("fallbacks", "guards", "tags", "metadata")
    if isinstance(value, dict):
        return argument == "metadata" and all(isinstance(k, str) for k in value)
    return False


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(sorted(CONSTRUCTORS)),
    pick=st.integers(0, 100),
    value=WRONG,
)
def test_wrong_types_get_a_named_error_never_an_attribute_error(
    name: str, pick: int, value: Any
) -> None:
    make, arguments = CONSTRUCTORS[name]
    argument = arguments[pick % len(arguments)]
    if _accepted(name, argument, value):
        return
    # A ConfigError (or Python's own TypeError/ValueError, where Python would), naming
    # the argument; never an AttributeError, and never accepted to fail later.
    with pytest.raises((TypeError, ValueError)) as raised:
        make(**{argument: value})
    error = raised.value
    assert argument in str(error) or getattr(error, "field", None) == argument, str(
        error
    )
