"""Telemetry: the tracer, meter and event log one runtime writes a call's facts to.

aisys never sets the global tracer provider. When the host has set an SDK provider,
spans go there; otherwise, if exporters are configured, aisys builds a private provider
from its settings; with neither, spans go to the OTel API's proxy (no-op until a host
provider appears).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, MutableSequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from aisys._version import __version__
from aisys.call import Call
from aisys.names import split_model
from aisys.settings import Settings
from aisys.telemetry import attributes as A
from aisys.telemetry.logs import EventLog
from aisys.telemetry.metrics import Instruments
from aisys.telemetry.recorder import Recorder
from aisys.telemetry.spans import (
    attempt_attributes,
    attempts_summary,
    end_attributes,
    error_type,
    start_attributes,
)

__all__ = ["Telemetry", "current_trace_id"]

_log = logging.getLogger("aisys")
_KINDS = {
    "llm": SpanKind.CLIENT,
    "retrieval": SpanKind.CLIENT,
    "step": SpanKind.INTERNAL,
    "trace": SpanKind.INTERNAL,
}
_LATEST_OPT_IN = "gen_ai_latest_experimental"
_UNSET: Any = object()


class Telemetry:
    """Where one runtime's spans, metrics and log events go."""

    def __init__(
        self,
        settings: Settings,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
        log_sink: MutableSequence[dict[str, Any]] | None = None,
        redactor: Any = None,
    ) -> None:
        self.settings = settings
        self.redactor = redactor
        """Set when ``capture_content="redacted"``: content passes through it first."""
        opt_in = os.environ.get("OTEL_SEMCONV_STABILITY_OPT_IN", "")
        self.latest = _LATEST_OPT_IN in {part.strip() for part in opt_in.split(",")}
        self.capture = settings.capture_content != "off"
        self._processors: list[Any] = []
        self._flushables: list[Any] = []
        self._own_providers: list[Any] = []
        provider = tracer_provider or self._choose_tracer_provider(settings)
        self.tracer = trace.get_tracer("aisys", __version__, tracer_provider=provider)
        meter_provider = meter_provider or self._choose_meter_provider(settings)
        meter = metrics.get_meter("aisys", __version__, meter_provider=meter_provider)
        self.instruments = Instruments(meter, latest=self.latest)
        if "otlp" in settings.exporters and not tracer_provider:
            from aisys.telemetry.otlp import count_drops

            count_drops(settings, self.instruments.spool_dropped.add)
        self.events = EventLog(settings.log_format, log_sink)
        self.recorder: Recorder | None = None
        """Records metrics and log events off the caller's path (not when capturing)."""
        if settings.record_in_background and log_sink is None:
            self.recorder = Recorder(
                self._record,
                max_pending=settings.max_queue_size,
                timeout=settings.flush_timeout,
            )
        self._closed = False
        self._eval_logger: Any = _UNSET
        self._eval_lock = threading.Lock()
        self._reported_drops = 0
        self._reported_failures = 0
        if self._own_providers or self._processors:
            atexit.register(self.shutdown)

    def _choose_tracer_provider(
        self, settings: Settings
    ) -> trace.TracerProvider | None:
        host = trace.get_tracer_provider()
        if not isinstance(host, trace.ProxyTracerProvider):
            self._flushables.append(host)
            if settings.attach_to_host and settings.exporters:
                add = getattr(host, "add_span_processor", None)
                if add is not None:
                    self._processors = _build_processors(settings)
                    for processor in self._processors:
                        add(processor)
            return host
        if not settings.exporters:
            return None  # the global proxy: no-op until the host sets a provider
        from opentelemetry.sdk.trace import TracerProvider

        resource = _resource(settings)
        own = TracerProvider(resource=resource, shutdown_on_exit=False)
        self._processors = _build_processors(settings)
        for processor in self._processors:
            own.add_span_processor(processor)
        self._own_providers.append(own)
        return own

    def _choose_meter_provider(
        self, settings: Settings
    ) -> metrics.MeterProvider | None:
        host = metrics.get_meter_provider()
        host_is_set = type(host).__name__ != "_ProxyMeterProvider"
        if host_is_set or "otlp" not in settings.exporters:
            return None
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from aisys.telemetry.otlp import otlp_metric_exporter

        resource = _resource(settings)
        own = MeterProvider(
            metric_readers=[
                PeriodicExportingMetricReader(otlp_metric_exporter(settings))
            ],
            resource=resource,
            shutdown_on_exit=False,
        )
        self._own_providers.append(own)
        return own

    # -- per call -------------------------------------------------------------------

    def start(
        self,
        call: Call,
        context: otel_context.Context | None = None,
        fixed: tuple[str, Mapping[str, Any]] | None = None,
    ) -> Span:
        """Open the call's span (not made current).

        ``fixed``: the span name and start attributes all calls of a function or an
        `LLM` share (`fixed_start`); not used for a call inside an `aisys.trace` block.
        """
        attributes: Mapping[str, Any]
        if fixed is None or call.scope is not None:
            call.started_as = call.span_name()
            attributes = start_attributes(call)
        else:
            call.started_as, attributes = fixed
        call.started_with = (call.operation, call.provider)
        try:
            return self.tracer.start_span(
                call.started_as,
                context=context,
                kind=_KINDS[call.kind],
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            )
        except Exception:  # a failing sampler or processor must not stop the call
            _log.warning("aisys could not start a span", exc_info=True)
            return trace.INVALID_SPAN

    # -- evaluation results ------------------------------------------------------------

    def jsonl_exporters(self) -> list[Any]:
        """The JSONL exporters of aisys's own processors (evaluation lines go there too)."""
        from aisys.telemetry.exporters import JsonlSpanExporter

        exporters = (
            getattr(getattr(p, "_counted", None), "exporter", None)
            for p in self._processors
        )
        return [e for e in exporters if isinstance(e, JsonlSpanExporter)]

    def evaluation_logger(self) -> Any:
        """The OTel logger evaluation records go to: the host's, aisys's own, or None."""
        if self._eval_logger is not _UNSET:
            return self._eval_logger
        with self._eval_lock:
            if self._eval_logger is _UNSET:
                from opentelemetry import _logs

                provider: Any = _logs.get_logger_provider()
                if type(provider).__name__ in (
                    "ProxyLoggerProvider",
                    "NoOpLoggerProvider",
                ):
                    provider = self._own_logger_provider()
                self._eval_logger = (
                    provider.get_logger("aisys", __version__) if provider else None
                )
        return self._eval_logger

    def _own_logger_provider(self) -> Any:
        if "otlp" not in self.settings.exporters or self._closed:
            return None
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        from aisys.telemetry.otlp import otlp_log_exporter

        settings = self.settings
        resource = _resource(settings)
        own = LoggerProvider(resource=resource, shutdown_on_exit=False)
        own.add_log_record_processor(
            BatchLogRecordProcessor(otlp_log_exporter(settings))
        )
        self._own_providers.append(own)
        return own

    @staticmethod
    def ids_of(span: Span) -> tuple[str | None, str | None]:
        """``span``'s trace and span ids in hex; ``(None, None)`` for a no-op span."""
        context = span.get_span_context()
        if not context.is_valid:
            return None, None
        return f"{context.trace_id:032x}", f"{context.span_id:016x}"

    def context_of(self, span: Span) -> otel_context.Context:
        """The context in which ``span`` is current (made once, attached many times)."""
        return trace.set_span_in_context(span)

    def attach(self, context: otel_context.Context) -> object:
        """Make ``context`` current; returns the token `deactivate` needs."""
        return otel_context.attach(context)

    def deactivate(self, token: object) -> None:
        """Restore the context that was current before `attach`."""
        otel_context.detach(token)  # type: ignore[arg-type]

    def end(self, call: Call, span: Span, started: float) -> None:
        """Close the span, record metrics and emit the call's one log event.

        Never raises: a telemetry failure must not break the user's call, and the span
        is ended even if describing it failed.
        """
        duration = time.perf_counter() - started
        listening = False
        attrs: dict[str, Any] = {}
        try:
            recording = span.is_recording()
            listening = self.events.listening()
            if recording or listening:
                attrs = end_attributes(
                    call,
                    latest=self.latest,
                    capture=self.capture,
                    redact=self._redact_for(span) if self.redactor else None,
                    max_chars=self.settings.capture_max_chars,
                )
            if recording:
                self._describe(call, span, attrs)
        except Exception:  # telemetry must never break the call it observes
            _log.debug("aisys could not describe a call", exc_info=True)
        try:
            span.end()
            if not listening and not self.instruments.live:
                return  # no meter and no log: nothing else to record
            if self.recorder is None:
                self._record(call, span, attrs, duration, listening)
            elif listening:  # what only the caller's thread knows goes along
                self.recorder.submit(
                    call, span, attrs, duration, True, _bound_context(), time.time()
                )
            else:
                self.recorder.submit(call, span, attrs, duration, False)
        except Exception:
            _log.warning("aisys could not record a call", exc_info=True)

    def _record(
        self,
        call: Call,
        span: Span,
        attrs: dict[str, Any],
        duration: float,
        listening: bool,
        bound: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        """The call's metric points and log event (on the recorder's thread, or here)."""
        try:
            if self.instruments.live:
                self.instruments.record(call, duration)
            if listening:
                self._emit(call, span, attrs, duration, bound, at)
        except Exception:
            _log.debug("aisys could not record a call", exc_info=True)

    def _redact_for(self, span: Span) -> Any:
        """Redaction numbered per trace: the span's trace id scopes the placeholders."""
        ctx = span.get_span_context()
        scope = f"{ctx.trace_id:032x}" if ctx.is_valid else ""
        redactor = self.redactor

        def redact(value: Any) -> Any:
            return redactor.redact_value(value, scope)

        return redact

    def _describe(self, call: Call, span: Span, attrs: dict[str, Any]) -> None:
        """Name, attributes, status and attempt children of a recording span."""
        if len(call.attempts) > 1:
            self._attempt_spans(call, span)
        name = call.span_name()
        if name != call.started_as:
            span.update_name(name)
        if attrs:
            span.set_attributes(attrs)
        if call.error is not None:
            span.record_exception(call.error)
            span.set_status(_error_status(call.error))

    def _attempt_spans(self, call: Call, parent: Span) -> None:
        """One child span per attempt, stamped with the attempt's own times."""
        context = trace.set_span_in_context(parent)
        for attempt in call.attempts:
            child = self.tracer.start_span(
                f"{call.operation} {split_model(attempt.target)[1]}",
                context=context,
                kind=SpanKind.CLIENT,
                attributes=attempt_attributes(call, attempt),
                start_time=attempt.started_ns,
            )
            if attempt.error is not None:
                child.set_status(_error_status(attempt.error))
            child.end(end_time=max(attempt.ended_ns, attempt.started_ns))

    def _emit(
        self,
        call: Call,
        span: Span,
        attrs: dict[str, Any],
        duration: float,
        bound: dict[str, Any] | None = None,
        at: float | None = None,
    ) -> None:
        ctx = span.get_span_context()
        fields: dict[str, Any] = {
            **(bound or {}),
            "span_name": call.span_name(),
            "trace_id": trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None,
            "span_id": trace.format_span_id(ctx.span_id) if ctx.is_valid else None,
            "duration_s": round(duration, 6),
            "status": "error" if call.error is not None else "ok",
            **start_attributes(call),
            **attrs,
        }
        if len(call.attempts) > 1:
            fields[A.AISYS_ATTEMPTS] = attempts_summary(call)
        event = A.LOG_EVENT_TRACE if call.kind == "trace" else A.LOG_EVENT_CALL
        self.events.emit(event, fields, failed=call.error is not None, at=at)

    # -- lifecycle --------------------------------------------------------------------

    @property
    def dropped_spans(self) -> int:
        """Spans dropped because an export queue was full, since start."""
        return sum(getattr(p, "dropped", 0) for p in self._processors)

    def flush(self, timeout: float) -> bool:
        """Record and export what is queued; gives up after ``timeout`` seconds.

        False when the time ran out, or when an exporter failed since the last flush
        (its spans were not delivered).
        """
        deadline = time.monotonic() + timeout
        recorded = self.recorder.flush(timeout) if self.recorder is not None else True
        remaining = max(0.0, deadline - time.monotonic())
        targets = [*self._processors, *self._own_providers, *self._flushables]
        ok = _bounded(
            lambda: all([t.force_flush() for t in targets]), remaining
        )  # each
        self._report_drops()
        failures = sum(getattr(p, "failed_exports", 0) for p in self._processors)
        delivered = failures == self._reported_failures
        self._reported_failures = failures
        return ok and recorded and delivered

    def shutdown(self, timeout: float | None = None) -> bool:
        """Flush and close aisys's own exporters (never the host's provider)."""
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self.shutdown)
        limit = self.settings.flush_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        ok = self.flush(limit)
        if self.recorder is not None:
            ok = self.recorder.close(max(0.0, deadline - time.monotonic())) and ok
        for owned in [*self._own_providers, *self._processors]:
            remaining = max(0.0, deadline - time.monotonic())
            ok = _bounded(owned.shutdown, remaining) is not False and ok
        return ok

    def _report_drops(self) -> None:
        dropped = self.dropped_spans - self._reported_drops
        if dropped:
            self._reported_drops += dropped
            self.events.emit(
                "aisys.spans.dropped",
                {"count": dropped, "max_queue_size": self.settings.max_queue_size},
                failed=True,
            )


def _error_status(error: BaseException) -> Status:
    """ERROR status saying which error, briefly (the exception event has the rest)."""
    return Status(StatusCode.ERROR, f"{error_type(error)}: {error}"[:500])


def _build_processors(settings: Settings) -> list[Any]:
    from aisys.telemetry.exporters import build_processors

    return list(build_processors(settings))


def _bounded(fn: Callable[[], Any], timeout: float) -> bool:
    """Run ``fn`` in a helper thread and wait at most ``timeout`` seconds for it."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(fn())
        except Exception:
            _log.debug("aisys flush/shutdown step failed", exc_info=True)
            result.append(False)

    worker = threading.Thread(target=run, name="aisys-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    return bool(result) and result[0] is not False


def _bound_context() -> dict[str, Any] | None:
    """The caller's structlog context variables, when the host configured structlog."""
    import structlog

    if not structlog.is_configured():
        return None
    return structlog.contextvars.get_contextvars() or None


def current_trace_id() -> str:
    """The current span's trace id as 32 hex digits; ``""`` outside any trace."""
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else ""


def _resource(settings: Settings) -> Any:
    """The resource of aisys's own providers: ``service.name`` when the settings give one."""
    from opentelemetry.sdk.resources import Resource

    return Resource.create(
        {"service.name": settings.service_name} if settings.service_name else {}
    )
