"""Evaluation results as the GenAI conventions record them: ``gen_ai.evaluation.result``.

One score is a span event while the evaluated span is open (and current), else an OTel
log record carrying that span's ids (the host's `LoggerProvider`, or aisys's own OTLP one
with ``exporters=otlp``); always one line in the JSONL file and one structlog event.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace

if TYPE_CHECKING:
    from aisys.telemetry.writer import Telemetry

__all__ = ["EVENT", "attributes", "record", "target_ids"]

EVENT = "gen_ai.evaluation.result"
_log = logging.getLogger("aisys")


def attributes(
    name: str,
    value: float | None,
    label: str | None,
    explanation: str | None,
    *,
    error_type: str | None = None,
    response_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event's attributes, the conventions' names (only those that are set)."""
    attrs: dict[str, Any] = {"gen_ai.evaluation.name": name}
    if value is not None:
        attrs["gen_ai.evaluation.score.value"] = float(value)
    if label is not None:
        attrs["gen_ai.evaluation.score.label"] = label
    if explanation is not None:
        attrs["gen_ai.evaluation.explanation"] = explanation
    if error_type is not None:
        attrs["error.type"] = error_type
    if response_id is not None:
        attrs["gen_ai.response.id"] = response_id
    if extra:
        attrs.update(extra)
    return attrs


def record(
    tel: Telemetry, trace_id: str | None, span_id: str | None, attrs: dict[str, Any]
) -> str:
    """Record one result for the span ``trace_id``/``span_id``; says where it went.

    ``"span"`` (an event on the open span) or ``"log"`` (a log record with its ids);
    the JSONL line and the structlog event are written either way.
    """
    at = time.time_ns()
    where = "log"
    current = trace.get_current_span()
    context = current.get_span_context()
    if (
        span_id is not None
        and context.is_valid
        and f"{context.span_id:016x}" == span_id
        and current.is_recording()
    ):
        current.add_event(EVENT, attrs, timestamp=at)
        where = "span"
    elif trace_id is not None:
        _emit_log_record(tel, trace_id, span_id, attrs, at)
    else:
        where = "event"  # the call recorded no span: the log event is all there is
    line = {
        "event": EVENT,
        "trace_id": trace_id,
        "span_id": span_id,
        "time_unix_nano": at,
        "attributes": attrs,
    }
    for exporter in tel.jsonl_exporters():
        try:
            exporter.write_record(line)
        except Exception:
            _log.warning("aisys could not write an evaluation record", exc_info=True)
    tel.events.emit(
        EVENT,
        {"trace_id": trace_id, "span_id": span_id, **attrs},
        failed=False,
    )
    return where


def _emit_log_record(
    tel: Telemetry, trace_id: str, span_id: str | None, attrs: dict[str, Any], at: int
) -> None:
    logger = _logger_of(tel)
    if logger is None:
        return
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    evaluated = SpanContext(
        int(trace_id, 16),
        int(span_id, 16) if span_id else 0,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    try:
        logger.emit(
            LogRecord(
                timestamp=at,
                context=trace.set_span_in_context(NonRecordingSpan(evaluated)),
                severity_number=SeverityNumber.INFO,
                event_name=EVENT,
                attributes=attrs,
            )
        )
    except Exception:  # telemetry never fails the caller
        _log.warning("aisys could not emit an evaluation log record", exc_info=True)


def _logger_of(tel: Telemetry) -> Any:
    """The OTel logger evaluation records go to: the host's, aisys's own, or none."""
    return tel.evaluation_logger()


_HEX = frozenset("0123456789abcdef")


def _hex_id(value: Any, digits: int, argument: str) -> str:
    from aisys.errors import ConfigError

    if (
        not isinstance(value, str)
        or len(value) != digits
        or not set(value.lower()) <= _HEX
        or int(value, 16) == 0
    ):
        msg = f"score({argument}=) takes {digits} hex digits (as a response's .{argument}), got {value!r}"
        raise ConfigError(msg, field=argument)
    return value.lower()


def target_ids(
    response: Any, trace_id: Any, span_id: Any
) -> tuple[str | None, str | None, str | None]:
    """The evaluated span's (trace id, span id, response id).

    From ``response``, the ids given, or the current span; ``(None, None, …)`` when the
    call recorded no span.
    """
    from aisys.errors import ConfigError

    if response is not None:
        if isinstance(response, str):
            return _hex_id(response, 32, "trace_id"), None, None
        if not hasattr(response, "trace_id"):
            msg = (
                "score(response=) takes the ChatResponse of the call it scores (or its "
                f"trace id), got {type(response).__name__}"
            )
            raise ConfigError(msg, field="response")
        return (
            response.trace_id,
            getattr(response, "span_id", None),
            getattr(response, "id", None),
        )
    if trace_id is not None:
        span = _hex_id(span_id, 16, "span_id") if span_id is not None else None
        return _hex_id(trace_id, 32, "trace_id"), span, None
    if span_id is not None:
        msg = "score(span_id=) needs trace_id= too"
        raise ConfigError(msg, field="span_id")
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        msg = (
            "score() needs the call it scores: pass response= (a ChatResponse), "
            "trace_id= (and span_id=), or call it inside a traced function or "
            "aisys.trace block"
        )
        raise ConfigError(msg, field="response")
    return f"{context.trace_id:032x}", f"{context.span_id:016x}", None
