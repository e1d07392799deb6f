"""Redaction: secrets and personal data never survive; ordinary text is left alone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aisys
from aisys.safety.redact import Redactor
from aisys.testing import capture

# Valid by construction or from the issuers' published test values.
CARDS = [
    "4111 1111 1111 1111",
    "5500-0000-0000-0004",
    "340000000000009",
    "6011000000000004",
]
IBANS = [
    "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000",
    "FR1420041010050500013M02606",
]
SECRETS = [
    "sk-proj-" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4",
    "sk-ant-api03-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2",
    "AKIA" + "IOSFODNN7EXAMPLE",
    "ghp_" + "A" * 36,
    "xoxb-" + "123456789012-abcdefghijkl",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "AIza" + "SyA-1234567890abcdefghijklmnopqrstu",
]
EMAILS = ["ana.lopez@example.com", "bob+support@mail.example.org"]
PHONES = ["+1 415 555 2671", "(415) 555-2671", "+44 20 7946 0958"]
IPS = ["10.0.0.12", "192.168.1.20", "2001:db8::1"]
SENSITIVE = CARDS + IBANS + SECRETS + EMAILS + PHONES + IPS

# Ordinary support conversation text: nothing here may be redacted.
ORDINARY = [
    "Your order #88231 shipped on 2024-05-01 and costs $49.99 including VAT.",
    "Refunds take 5 to 7 business days; version 2.3.1 fixed the bug in build 20240501.",
    "Call us between 8:00 and 20:00 CET, Monday to Friday. Ticket 123456 is closed.",
    "def total(items): return sum(i.price * i.qty for i in items)  # O(n)",
    "The parcel weighs 1.25 kg and measures 30 x 20 x 10 cm; tracking ID ZX123456789.",
    "We moved from plan A to plan B on 12/05/2024; your balance is 1,234.56 EUR.",
    "Error 404 at /api/v1/orders/88231?page=2 — retry in 30 seconds.",
    "Invoice INV-2024-0042: 3 items, subtotal 120.00, discount 10%, total 108.00.",
    # Code that assigns to secret-sounding names is not a secret.
    "token = jwt.encode({'user': user_id}, key)",
    "    token = request.headers.get('Authorization')",
    "password = getpass.getpass(prompt)",
]


@settings(max_examples=300)
@given(
    st.sampled_from(SENSITIVE),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40),
)
def test_sensitive_values_never_survive(value: str, before: str, after: str) -> None:
    text = f"{before} {value} {after}"
    assert value not in Redactor().redact(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_placeholders_are_typed_and_numbered_per_scope() -> None:
    redactor = Redactor()
    first = redactor.redact(
        "mail ana.lopez@example.com or bob+support@mail.example.org", "t1"
    )
    again = redactor.redact("ana.lopez@example.com wrote back", "t1")
    other = redactor.redact("bob+support@mail.example.org", "t2")
    assert first == "mail [EMAIL_1] or [EMAIL_2]"
    assert again == "[EMAIL_1] wrote back"  # the same value, the same placeholder
    assert other == "[EMAIL_1]"  # another trace numbers afresh
    kinds = Redactor().redact(
        f"{CARDS[0]} {IBANS[0]} {SECRETS[0]} {PHONES[0]} {IPS[0]}"
    )
    assert kinds == "[CARD_1] [IBAN_1] [SECRET_1] [PHONE_1] [IP_1]"


def test_custom_patterns_and_redactor() -> None:
    redactor = Redactor(
        {"EMPLOYEE_ID": r"E-\d{6}"}, redactor=lambda text: text.replace("Ana", "[NAME]")
    )
    assert (
        redactor.redact("Ana (E-123456) approved")
        == "[NAME] ([EMPLOYEE_ID_1]) approved"
    )


def test_redacted_capture_reaches_spans_logs_and_jsonl_masked(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    aisys.configure(
        capture_content="redacted",
        exporters=["jsonl"],
        jsonl_path=path,
        redact_patterns={"EMPLOYEE_ID": r"E-\d{6}"},
    )
    secret = SECRETS[0]

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(messages: list[dict[str, str]]) -> str:
        return f"I emailed ana.lopez@example.com about card {CARDS[0]}."

    with aisys.trace("ticket"):
        answer(
            [
                {"role": "system", "content": f"Use key {secret}. Staff E-123456."},
                {
                    "role": "user",
                    "content": f"I'm ana.lopez@example.com, card {CARDS[0]}",
                },
            ]
        )
        inside = aisys.redact("ana.lopez@example.com again")
    aisys.flush()
    written = path.read_text()
    for raw in (secret, "ana.lopez@example.com", CARDS[0], "E-123456"):
        assert raw not in written
    record = next(
        json.loads(line) for line in written.splitlines() if "gpt-4o-mini" in line
    )
    inputs = json.loads(record["attributes"]["gen_ai.input.messages"])
    outputs = json.loads(record["attributes"]["gen_ai.output.messages"])
    system = json.loads(record["attributes"]["gen_ai.system_instructions"])
    assert inputs[1]["parts"][0]["content"] == "I'm [EMAIL_1], card [CARD_1]"
    assert (
        outputs[0]["parts"][0]["content"] == "I emailed [EMAIL_1] about card [CARD_1]."
    )
    assert system[0]["content"] == "Use key [SECRET_1]. Staff [EMPLOYEE_ID_1]."
    assert inside == "[EMAIL_1] again"  # aisys.redact numbers like the trace


def test_logs_carry_the_same_masked_content() -> None:
    with capture(capture_content="redacted") as seen:

        @aisys.traced_llm(model="gpt-4o-mini")
        def answer(question: str) -> str:
            return "ok"

        answer(f"my key is {SECRETS[2]}")
    dumped = json.dumps(seen.logs)
    assert SECRETS[2] not in dumped
    assert "[SECRET_1]" in dumped


def test_size_limit_keeps_valid_json() -> None:
    with capture(capture_content="full", capture_max_chars=500) as seen:

        @aisys.traced_llm(model="gpt-4o-mini")
        def answer(question: str) -> str:
            return "x" * 5000

        answer("y" * 5000)
    attrs: dict[str, Any] = dict(seen.spans[0].attributes or {})
    for key in ("gen_ai.input.messages", "gen_ai.output.messages"):
        assert len(attrs[key]) <= 500
        parsed = json.loads(attrs[key])  # still valid JSON
        assert "chars cut" in json.dumps(parsed)


def test_nothing_is_redacted_or_captured_when_capture_is_off() -> None:
    with capture() as seen:

        @aisys.traced_llm(model="gpt-4o-mini")
        def answer(question: str) -> str:
            return "ok"

        answer(f"card {CARDS[0]}")
        assert aisys._DEFAULT.telemetry.redactor is None  # no redaction work at all
    attrs = dict(seen.spans[0].attributes or {})
    assert not any(key.startswith("gen_ai.input") for key in attrs)


@pytest.mark.parametrize(
    ("text", "survives"),
    [
        ("password=hunter2", "hunter2"),
        ("secret: hunter2", "hunter2"),
        ("my pwd: abc", "abc"),
        ("api_key='k1'", "k1"),
        ("Authorization: Bearer 9f8e7d6c5b4a", "9f8e7d6c5b4a"),
        ("Authorization: Basic dXNlcjpw", "dXNlcjpw"),
        ("curl -H 'Bearer 4f5e6d7c'", "4f5e6d7c"),
    ],
)
def test_a_value_after_a_secret_keyword_is_a_secret_whatever_its_length(
    text: str, survives: str
) -> None:
    redacted = Redactor().redact(text)
    assert survives not in redacted
    assert "[SECRET_1]" in redacted


@pytest.mark.parametrize(
    "text",
    ["the bearer of bad news", "token = jwt.encode(payload)", "bearer bonds"],
)
def test_keywords_in_prose_and_code_are_left_alone(text: str) -> None:
    assert Redactor().redact(text) == text


def test_user_data_on_a_trace_is_redacted_too() -> None:
    """With capture_content="redacted", user, session, tags and metadata are masked."""
    aisys.configure(capture_content="redacted")

    @aisys.traced_llm(model="gpt-4o-mini")
    def answer(question: str) -> str:
        return "fine"

    with capture() as seen, aisys.trace(
        "ticket",
        user_id="ana.lopez@example.com",
        session_id="ana.lopez@example.com",
        tags=["vip", "ana.lopez@example.com"],
        metadata={"email": "ana.lopez@example.com", "plan": "pro"},
    ):
        answer("hi")
    for span in seen.spans:
        attrs = dict(span.attributes or {})
        assert "ana.lopez@example.com" not in repr(attrs)
        assert attrs["user.id"] == "[EMAIL_1]"  # numbered per trace, like content
        assert attrs["aisys.metadata.plan"] == "pro"
    assert "ana.lopez@example.com" not in repr(seen.logs)


def test_a_keyword_ending_its_line_does_not_take_the_next_line() -> None:
    """`if not token:` then `return ...` on the next line is code, not a secret."""
    code = "if not token:\n    return jsonify({'error': 'Token is missing'}), 401"
    assert Redactor().redact(code) == code
