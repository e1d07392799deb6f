"""Settings: explicit arguments, AISYS_* variables, standard variables, clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import aisys


def test_defaults() -> None:
    """No exporter, no content, JSON logs, the documented JSONL path."""
    settings = aisys.Settings()
    assert settings.exporters == ()
    assert settings.capture_content == "off"
    assert settings.log_format == "json"
    assert settings.jsonl_path == Path("aisys-traces.jsonl")


def test_configure_returns_settings_and_accepts_lists() -> None:
    """configure() takes a list or a comma string and returns what is in force."""
    settings = aisys.configure(exporters=["console", "jsonl", "console"])
    assert settings.exporters == ("console", "jsonl")
    assert aisys.configure(exporters="console, jsonl").exporters == ("console", "jsonl")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"capture_content": "ful"},
            [
                "capture_content (argument)",
                "'ful'",
                "'off', 'redacted' or 'full'",
            ],
        ),
        (
            {"exporters": "console,zipkin"},
            ["exporters", "'zipkin'", "'console', 'jsonl' or 'otlp'"],
        ),
        ({"exporters": "none,jsonl"}, ["'none' cannot be combined"]),
        ({"log_format": "xml"}, ["log_format", "'xml'", "'json' or 'console'"]),
        ({"max_queue_size": 0}, ["max_queue_size", "greater than 0"]),
        ({"exporter": "console"}, ["unknown setting 'exporter'", "exporters"]),
    ],
)
def test_bad_values_name_field_value_and_allowed(
    fields: dict[str, object], expected: list[str]
) -> None:
    """A ConfigError says which field, what value, and what is allowed."""
    with pytest.raises(aisys.ConfigError) as raised:
        aisys.configure(**fields)
    for fragment in expected:
        assert fragment in str(raised.value)
    assert isinstance(raised.value, ValueError)


def test_a_bad_value_says_where_it_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """An argument is named as one; a value read from the environment names its variable."""
    with pytest.raises(aisys.ConfigError) as raised:
        aisys.configure(capture_content="yes")
    assert "capture_content (argument) got 'yes'" in str(raised.value)
    assert "AISYS_CAPTURE_CONTENT" not in str(raised.value)

    monkeypatch.setenv("AISYS_CAPTURE_CONTENT", "yes")
    with pytest.raises(aisys.ConfigError) as raised:
        aisys.configure(log_format="json")
    assert "capture_content (env AISYS_CAPTURE_CONTENT) got 'yes'" in str(raised.value)


def test_redacted_is_accepted_and_patterns_are_checked() -> None:
    """capture_content=redacted works; a bad custom pattern names itself."""
    assert aisys.configure(capture_content="redacted").capture_content == "redacted"
    with pytest.raises(aisys.ConfigError, match="redact_patterns"):
        aisys.configure(redact_patterns={"EMPLOYEE_ID": "E-(\\d"})


def test_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """AISYS_* variables are read when configure() does not give the field."""
    monkeypatch.setenv("AISYS_EXPORTERS", "jsonl")
    monkeypatch.setenv("AISYS_CAPTURE_CONTENT", "full")
    monkeypatch.setenv("AISYS_FLUSH_TIMEOUT", "2.5")
    settings = aisys.configure()
    assert settings.exporters == ("jsonl",)
    assert settings.capture_content == "full"
    assert settings.flush_timeout == 2.5
    assert aisys.configure(capture_content="off").capture_content == "off"


@pytest.mark.parametrize(
    ("value", "mode"),
    [("NO_CONTENT", "off"), ("span_only", "full"), ("true", "full"), ("false", "off")],
)
def test_otel_capture_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, mode: str
) -> None:
    """OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT is honoured."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", value)
    assert aisys.Settings().capture_content == mode


def test_aisys_variable_wins_over_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit AISYS_CAPTURE_CONTENT beats the OTel variable."""
    monkeypatch.setenv(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY"
    )
    monkeypatch.setenv("AISYS_CAPTURE_CONTENT", "off")
    assert aisys.Settings().capture_content == "off"


def test_bad_env_value_fails_on_first_use_not_import(tmp_path: Path) -> None:
    """A bad AISYS_* value lets `import aisys` succeed and fails the first call, clearly."""
    script = textwrap.dedent(
        """
        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "x"

        print("imported")
        try:
            answer()
        except aisys.ConfigError as exc:
            print("ConfigError:", exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"AISYS_EXPORTERS": "kafka", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "imported"
    assert "AISYS_EXPORTERS" in lines[1]
    assert "'kafka'" in lines[1]


@given(
    st.text(max_size=20).filter(
        lambda v: v.strip().lower() not in {"off", "redacted", "full"}
    )
)
def test_any_other_capture_value_is_rejected(value: str) -> None:
    """Only off, redacted and full are accepted."""
    with pytest.raises(aisys.ConfigError):
        aisys.Settings(capture_content=value)
