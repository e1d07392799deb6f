"""Settings: one pydantic-settings model, read from arguments, then ``AISYS_*``, then defaults.

Standard variables keep their meaning: ``OTEL_SERVICE_NAME`` and ``OTEL_EXPORTER_OTLP_*``
are read by the OTel SDK itself, and ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
sets ``capture_content`` unless ``AISYS_CAPTURE_CONTENT`` is given.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aisys.errors import ConfigError

__all__ = ["CaptureContent", "ExporterName", "LogFormat", "Settings"]

ExporterName = Literal["console", "jsonl", "otlp"]
CaptureContent = Literal["off", "redacted", "full"]
ReviewContent = Literal["redacted", "full"]
LogFormat = Literal["json", "console"]

_ENV_PREFIX = "AISYS_"
_OTEL_CAPTURE_VAR = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
# opentelemetry-util-genai's values, plus the older true/false form.
_OTEL_CAPTURE_VALUES = {
    "no_content": "off",
    "false": "off",
    "span_only": "full",
    "event_only": "full",
    "span_and_event": "full",
    "true": "full",
}


class Settings(BaseSettings):
    """Everything aisys can be told, with the defaults it uses when told nothing.

    Build it with `aisys.configure(**fields)`, or directly to pass an isolated runtime.
    A bad value raises `aisys.ConfigError` naming the field, the value and what is allowed.

    Added in 0.1.
    """

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX, frozen=True, extra="forbid", validate_default=True
    )

    service_name: str | None = None
    """Service name on every span; ``None`` lets ``OTEL_SERVICE_NAME`` decide."""
    exporters: Annotated[tuple[ExporterName, ...], NoDecode] = ()
    """Where aisys's own spans go: ``console``, ``jsonl``, ``otlp``; empty or ``none`` = nowhere."""
    jsonl_path: Path = Path("aisys-traces.jsonl")
    """File the ``jsonl`` exporter appends one JSON object per finished span to."""
    capture_content: CaptureContent = "off"
    """Whether prompts, completions and documents reach telemetry: off, redacted or full."""
    redact_patterns: dict[str, str] = Field(default_factory=dict)
    """Extra kinds to redact: ``{"EMPLOYEE_ID": r"E-\\d{6}"}`` (placeholder ``[EMPLOYEE_ID_1]``)."""
    redactor: Any = None
    """A function of the text, run after the built-in detectors (e.g. a PII model)."""
    review_content: ReviewContent = "redacted"
    """What review items keep of inputs and outputs: ``redacted`` (secrets and personal
    data masked) or ``full`` (secrets are masked whatever this says)."""
    capture_max_chars: int = Field(default=8000, gt=0)
    """Longest captured content field; longer ones are cut, keeping valid JSON."""
    cache_dir: Path = Path(".aisys-cache")
    """Directory of the embedded (diskcache) cache."""
    spool_dir: Path | None = None
    """Where OTLP batches the collector could not take wait (default ``cache_dir/spool``)."""
    spool_max_mb: float = Field(default=256, gt=0)
    """The spool's bound in MiB; past it the oldest batches are dropped, counted, warned."""
    prices_path: Path | None = None
    """Your own prices (JSON, TOML or YAML; USD per million tokens); they win over
    genai-prices' table."""
    price_updates: bool = False
    """Let genai-prices refresh its table from the network in the background (off: the
    table shipped with the installed genai-prices is used, offline)."""
    log_format: LogFormat = "json"
    """How aisys renders its log events when the host has not configured structlog."""
    attach_to_host: bool = False
    """Also add aisys's exporters to the host application's own TracerProvider."""
    max_queue_size: int = Field(default=2048, gt=0)
    """Finished spans waiting for export (beyond it spans are dropped and counted), and
    calls waiting for the recorder (beyond it the caller records them itself)."""
    record_in_background: bool = True
    """Record metrics and log events on one background thread, off the caller's path
    (`aisys.testing.capture` always records in place, so tests see them at once)."""
    flush_timeout: float = Field(default=5.0, gt=0)
    """Seconds `aisys.flush()` and `aisys.shutdown()` wait at most, also at exit."""
    prompts_dir: Path = Path("prompts")
    """Where the application's ``.prompty`` files, their versions and lock file live."""
    require_approval: bool = False
    """Refuse a protected label (``production``) unless it points to an approved version
    whose released copy still matches its hash."""
    circuit_failure_threshold: int = Field(default=5, gt=0)
    """Consecutive failed requests that open a target's circuit breaker."""
    circuit_reset_timeout: float = Field(default=30.0, gt=0)
    """Seconds an open breaker waits before letting one trial request through."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc, given=values.keys()) from None

    @property
    def spool_path(self) -> Path:
        """The spool folder: ``spool_dir``, else ``cache_dir/spool``."""
        return (
            self.spool_dir if self.spool_dir is not None else self.cache_dir / "spool"
        )

    @field_validator("redact_patterns", mode="after")
    @classmethod
    def _compile_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for kind, pattern in value.items():
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", kind):
                msg = f"redact_patterns: {kind!r} must be a name like EMPLOYEE_ID"
                raise ValueError(msg)
            try:
                re.compile(pattern)
            except re.error as exc:
                msg = f"redact_patterns[{kind!r}] is not a valid regular expression: {exc}"
                raise ValueError(msg) from None
        return value

    @field_validator("redactor", mode="after")
    @classmethod
    def _callable_redactor(cls, value: Any) -> Any:
        if value is not None and not callable(value):
            msg = "redactor must be a function of the text, returning the text to keep"
            raise ValueError(msg)
        return value

    @field_validator("exporters", mode="before")
    @classmethod
    def _split_exporters(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple) and "none" in value:
            if len(value) > 1:
                msg = "'none' cannot be combined with other exporters"
                raise ValueError(msg)
            return ()
        return value

    @field_validator("exporters", mode="after")
    @classmethod
    def _dedupe_exporters(
        cls, value: tuple[ExporterName, ...]
    ) -> tuple[ExporterName, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="before")
    @classmethod
    def _otel_capture_variable(cls, data: Any) -> Any:
        if isinstance(data, dict) and "capture_content" not in data:
            raw = os.environ.get(_OTEL_CAPTURE_VAR)
            if raw is not None:
                mapped = _OTEL_CAPTURE_VALUES.get(raw.strip().lower())
                if mapped is None:
                    msg = (
                        f"{_OTEL_CAPTURE_VAR} must be one of NO_CONTENT, SPAN_ONLY, "
                        f"EVENT_ONLY, SPAN_AND_EVENT, true, false; got {raw!r}"
                    )
                    raise ValueError(msg)
                data = {**data, "capture_content": mapped}
        return data


def _config_error(exc: ValidationError, given: Collection[str] = ()) -> ConfigError:
    """Turn pydantic's report into one line per bad field, naming field, source and value.

    The source is "argument" for a field in ``given``, else its ``AISYS_*`` variable.
    """
    lines = []
    field = None
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        field = loc[0] if loc else None
        if not field:
            where = "settings"
        elif field in given:
            where = f"{field} (argument)"
        else:
            where = f"{field} (env {_ENV_PREFIX}{field.upper()})"
        got = error.get("input")
        reason = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            allowed = ", ".join(Settings.model_fields)
            lines.append(f"unknown setting {field!r}; known settings: {allowed}")
        else:
            lines.append(f"{where} got {got!r}: {reason}")
    return ConfigError("invalid aisys settings: " + "; ".join(lines), field=field)
