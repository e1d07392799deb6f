"""OTLP export that loses nothing: the SDK's exporters, with the spool around them.

Batches are encoded by OpenTelemetry's own encoders and sent by the OTLP exporter's own
HTTP client (its compression, headers, TLS and retries). What the collector cannot take
within a small retry budget goes to the `Spool`, and while anything is spooled new
batches queue behind it, so the collector receives them in order. A background thread
replays the spool when the collector answers again; at the next start it replays what
an earlier run left. The caller never waits on any of this: export runs on the batch
processor's and the metric reader's threads, and while the collector is known to be
down a batch goes to disk without a request.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from aisys.telemetry.spool import Batch, Spool, spool_of

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricExportResult, MetricsData

    from aisys.settings import Settings

__all__ = ["Delivery", "SpoolingSpanExporter", "build_delivery", "metric_exporter"]

_log = logging.getLogger("aisys")

LIVE_TIMEOUT_S = 0.5
"""Seconds a new batch may take to reach the collector (one try, and the OTLP client's
immediate reconnect) before it is spooled: the exporter thread never waits out a
collector that is down, so the span queue does not overflow behind it."""
REPLAY_TIMEOUT_S = 5.0
"""Seconds one replayed batch may spend in the OTLP client's own retries and backoff
(``OTEL_EXPORTER_OTLP_TIMEOUT`` or the per-signal variable, when set, decides instead)."""
PROBE_MAX_S = 30.0
"""Longest wait between two tries of a collector that is down (1 s, doubling)."""

_SENDING = threading.local()


class _Quiet(logging.Filter):
    """Mutes the OTLP client's per-retry log lines while aisys sends; aisys says it once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_SENDING, "active", False)


_QUIET = _Quiet()


class Sent:
    """The outcome of one send: ``ok``, or why not and whether trying again can help."""

    __slots__ = ("ok", "permanent", "reason")

    def __init__(self, ok: bool, reason: str = "", permanent: bool = False) -> None:
        self.ok = ok
        self.reason = reason
        self.permanent = permanent


def _client_sender(exporter: Any) -> Callable[[bytes], Sent]:
    """Send bytes with the SDK exporter's own client (retries within its timeout)."""
    client = exporter._client
    logger = getattr(client, "_logger", None)
    if isinstance(logger, logging.Logger) and _QUIET not in logger.filters:
        logger.addFilter(_QUIET)

    def send(body: bytes) -> Sent:
        _SENDING.active = True
        try:
            result = client.export(body)
        except Exception as exc:  # a client that raises is a failed send, never a crash
            return Sent(False, f"{type(exc).__name__}: {exc}")
        finally:
            _SENDING.active = False
        if result.success:
            return Sent(True)
        status = result.status_code
        reason = (
            f"HTTP {status} {result.reason or ''}".strip()
            if status
            else _said(result.error)
        )
        permanent = (
            status is not None and 400 <= status < 500 and status not in (408, 429)
        )
        return Sent(False, reason, permanent)

    return send


def _said(error: BaseException | None) -> str:
    """A transport error in a few words: "ConnectionError: Connection refused"."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return f"{type(error).__name__}: {found.group(1) if found else text[:200]}"


class Delivery:
    """Sends batches of every signal; spools what cannot be sent; replays in order.

    One per spool folder and process. ``senders`` maps a batch kind (``traces``,
    ``metrics``, ``logs``) to the function that replays its bytes (patient: the OTLP
    client's retries), ``live`` to the one that sends new batches (quick).
    """

    def __init__(self, spool: Spool, endpoint: str) -> None:
        self.spool = spool
        self.endpoint = endpoint
        self.senders: dict[str, Callable[[bytes], Sent]] = {}
        self.live: dict[str, Callable[[bytes], Sent]] = {}
        self._backlog = False
        self._down_until = 0.0
        self._backoff = 1.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_down = False
        self._warned_dropped = False
        self._warned_rejected = False
        self._failed_at = 0.0
        self._closed = False
        self.sent = 0
        """Batches the collector took (live and replayed), for tests and status."""
        self.count_dropped: Callable[[int], object] | None = None
        """Adds to the ``aisys.spool.dropped`` metric."""

    def add_sender(
        self,
        kind: str,
        live: Callable[[bytes], Sent],
        patient: Callable[[bytes], Sent],
    ) -> None:
        """Send new ``kind`` batches with ``live``, spooled ones with ``patient``.

        Starts replaying what an earlier run left.
        """
        self.live[kind] = live
        self.senders[kind] = patient
        try:
            self._backlog = self._backlog or self.spool.pending() > 0
        except Exception:  # an unreadable spool never stops the app
            _log.warning("aisys could not open the export spool", exc_info=True)
        if self._backlog:
            self._start_replay()

    # -- live ----------------------------------------------------------------------

    def deliver(self, kind: str, body: bytes, items: int) -> None:
        """Send one batch now, or spool it (behind any backlog, or when the send fails)."""
        error = None
        if not self._backlog and time.monotonic() >= self._down_until:
            sent = self.live[kind](body)
            if sent.ok:
                self._up()
                return
            if sent.permanent:
                self._rejected(sent.reason)
                return
            self._down(sent.reason)
            error = sent.reason
        self._to_spool(kind, body, items, error)

    def _to_spool(self, kind: str, body: bytes, items: int, error: str | None) -> None:
        try:
            dropped, dropped_items = self.spool.push(kind, body, items, error)
        except Exception:
            _log.warning(
                "aisys could not spool a batch of %d %s; it is lost",
                items,
                kind,
                exc_info=True,
            )
            return
        self._backlog = True
        if dropped and self.count_dropped is not None:
            try:
                self.count_dropped(dropped_items)
            except Exception:  # a metric never stops delivery
                _log.debug("aisys could not count dropped spool items", exc_info=True)
        if dropped and not self._warned_dropped:
            self._warned_dropped = True
            _log.warning(
                "aisys: the export spool %s is full (spool_max_mb); the oldest %d "
                "batches (%d items) were dropped to make room (counted in `aisys spool "
                "status`)",
                self.spool.directory,
                dropped,
                dropped_items,
            )
        self._start_replay()

    # -- collector state -----------------------------------------------------------

    def _up(self) -> None:
        self.sent += 1
        if self._backoff != 1.0 or self._down_until:
            with self._lock:
                self._backoff = 1.0
                self._down_until = 0.0

    def _down(self, reason: str) -> None:
        self._failed_at = time.monotonic()
        with self._lock:
            self._down_until = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, PROBE_MAX_S)
        if not self._warned_down:
            self._warned_down = True
            _log.warning(
                "aisys: the OTLP collector at %s did not take a batch (%s); spooling to "
                "%s and sending when it answers (`aisys spool status`)",
                self.endpoint,
                reason,
                self.spool.directory,
            )

    def _rejected(self, reason: str) -> None:
        if not self._warned_rejected:
            self._warned_rejected = True
            _log.warning(
                "aisys: the OTLP collector at %s refused a batch for good (%s); it was "
                "dropped, not spooled",
                self.endpoint,
                reason,
            )

    # -- replay --------------------------------------------------------------------

    def drain(
        self, timeout: float, senders: dict[str, Callable[[bytes], Sent]] | None = None
    ) -> bool:
        """Send spooled batches, oldest first, for up to ``timeout`` seconds.

        True when the spool is empty (of batches no other process is sending).
        """
        deadline = time.monotonic() + timeout
        senders = self.senders if senders is None else senders
        if not senders:
            return False
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                batch = self.spool.claim(tuple(senders))
            except Exception:
                _log.warning("aisys could not read the export spool", exc_info=True)
                return False
            if batch is None:
                self._backlog = False
                return True
            if not self._replay(batch, senders[batch.kind]):
                return False
        return not self._backlog

    def _replay(self, batch: Batch, send: Callable[[bytes], Sent]) -> bool:
        sent = send(batch.body)
        if sent.ok:
            self.spool.done(batch)
            self._up()
            return True
        if sent.permanent:  # a corrupt body: skip it, say so
            self.spool.reject(batch, sent.reason)
            _log.warning(
                "aisys: the OTLP collector refused spooled batch %d for good (%s); it "
                "was skipped and counted",
                batch.id,
                sent.reason,
            )
            return True
        self.spool.release(batch, sent.reason)
        self._down(sent.reason)
        return False

    def _start_replay(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._wake.set()
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._replay_loop, name="aisys-spool", daemon=True
            )
            self._thread.start()

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            wait = self._down_until - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            if self.drain(timeout=PROBE_MAX_S):
                self._wake.wait()  # until something is spooled again
                self._wake.clear()

    def flush(self, timeout: float) -> bool:
        """Try the collector now and send what waits, within ``timeout`` seconds."""
        if not self._backlog:
            return True
        if time.monotonic() - self._failed_at < 1.0:
            return False  # it just failed: a flush at exit does not wait on it again
        with self._lock:
            self._down_until = 0.0
        return self.drain(timeout, self.live)

    def shutdown(self) -> None:
        """Stop replaying; say once what is left for the next start."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if not self._backlog or self._warned_down:
            return  # nothing waits, or this run already said where it went: one line
        try:
            status = self.spool.status()
        except Exception:
            return
        if status.batches:
            _log.warning(
                "aisys: %d batches (%d items) wait in %s for the OTLP collector at %s; "
                "they are sent at the next start or by `aisys spool replay`",
                status.batches,
                status.items,
                self.spool.directory,
                self.endpoint,
            )


class SpoolingSpanExporter(SpanExporter):
    """The OTLP span exporter, with the spool: ``export`` never fails a batch it kept."""

    def __init__(self, live: Any, patient: Any, delivery: Delivery) -> None:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        self.exporters = (live, patient)
        self.delivery = delivery
        self._encode = encode_spans
        delivery.add_sender("traces", _client_sender(live), _client_sender(patient))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Encode the batch (OpenTelemetry's encoder) and deliver or spool it."""
        try:
            body = self._encode(spans).SerializePartialToString()
        except Exception:
            _log.warning(
                "aisys could not encode %d spans for OTLP", len(spans), exc_info=True
            )
            return SpanExportResult.FAILURE
        self.delivery.deliver("traces", body, len(spans))
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Try to send what the spool holds, within the timeout."""
        return self.delivery.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        """Stop replaying (say what is left) and close the OTLP clients."""
        self.delivery.shutdown()
        for exporter in self.exporters:
            exporter.shutdown()


def metric_exporter(exporter: Any, patient: Any, delivery: Delivery) -> Any:
    """The OTLP metric exporter, with the spool (a `MetricExporter`)."""
    from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    delivery.add_sender("metrics", _client_sender(exporter), _client_sender(patient))

    class SpoolingMetricExporter(MetricExporter):
        """Metrics ride the same path as spans: delivered in order, or spooled."""

        def __init__(self) -> None:
            super().__init__(
                preferred_temporality=exporter._preferred_temporality,
                preferred_aggregation=exporter._preferred_aggregation,
            )

        def export(
            self,
            metrics_data: MetricsData,
            timeout_millis: float = 10_000,
            **kwargs: Any,
        ) -> MetricExportResult:
            try:
                request = encode_metrics(metrics_data)
                body = request.SerializeToString()
            except Exception:
                _log.warning("aisys could not encode metrics for OTLP", exc_info=True)
                return MetricExportResult.FAILURE
            items = sum(
                len(scope.metrics)
                for resource in request.resource_metrics
                for scope in resource.scope_metrics
            )
            delivery.deliver("metrics", body, items)
            return MetricExportResult.SUCCESS

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return delivery.flush(timeout_millis / 1000)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            delivery.shutdown()
            exporter.shutdown()
            patient.shutdown()

    return SpoolingMetricExporter()


def _timeout(signal: str) -> float | None:
    """The replaying OTLP client's timeout: the environment's when set, else ours."""
    if os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_TIMEOUT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TIMEOUT"
    ):
        return None
    return REPLAY_TIMEOUT_S


_DELIVERIES: dict[Path, Delivery] = {}
_DELIVERIES_LOCK = threading.Lock()


def build_delivery(settings: Settings, endpoint: str) -> Delivery:
    """The process's delivery for the settings' spool folder (one per folder)."""
    directory = settings.spool_path.resolve()
    with _DELIVERIES_LOCK:
        delivery = _DELIVERIES.get(directory)
        if delivery is None or delivery._closed:
            delivery = _DELIVERIES[directory] = Delivery(spool_of(settings), endpoint)
        return delivery


def count_drops(settings: Settings, add: Callable[[int], object]) -> None:
    """Count what the settings' spool drops with ``add`` (the runtime's metric)."""
    with _DELIVERIES_LOCK:
        delivery = _DELIVERIES.get(settings.spool_path.resolve())
    if delivery is not None:
        delivery.count_dropped = add


def span_exporter(settings: Settings) -> SpoolingSpanExporter:
    """The OTLP span exporter aisys builds for ``exporters=otlp``."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    live = OTLPSpanExporter(timeout=LIVE_TIMEOUT_S)
    patient = OTLPSpanExporter(timeout=_timeout("TRACES"))
    return SpoolingSpanExporter(live, patient, build_delivery(settings, live._endpoint))


def otlp_metric_exporter(settings: Settings) -> Any:
    """The OTLP metric exporter aisys builds for ``exporters=otlp``."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter,
    )

    live = OTLPMetricExporter(timeout=LIVE_TIMEOUT_S)
    patient = OTLPMetricExporter(timeout=_timeout("METRICS"))
    return metric_exporter(live, patient, build_delivery(settings, live._endpoint))


def replay(settings: Settings, timeout: float) -> tuple[bool, Delivery]:
    """Send what the settings' spool holds to the collector the environment names.

    For ``aisys spool replay``: True when the spool is empty at the end.
    """
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter,
    )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = OTLPSpanExporter(timeout=_timeout("TRACES"))
    metrics = OTLPMetricExporter(timeout=_timeout("METRICS"))
    logs = OTLPLogExporter(timeout=_timeout("LOGS"))
    delivery = Delivery(spool_of(settings), spans._endpoint)
    delivery.senders["traces"] = _client_sender(spans)
    delivery.senders["metrics"] = _client_sender(metrics)
    delivery.senders["logs"] = _client_sender(logs)
    try:
        return delivery.drain(timeout), delivery
    finally:
        delivery._closed = True
        spans.shutdown()  # type: ignore[no-untyped-call]
        metrics.shutdown()
        logs.shutdown()  # type: ignore[no-untyped-call]


def log_exporter(live: Any, patient: Any, delivery: Delivery) -> Any:
    """The OTLP log exporter, with the spool (a `LogRecordExporter`)."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    delivery.add_sender("logs", _client_sender(live), _client_sender(patient))

    class SpoolingLogExporter(LogRecordExporter):
        """Log records (evaluation results) ride the same path as spans."""

        def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
            try:
                body = encode_logs(batch).SerializeToString()
            except Exception:
                _log.warning(
                    "aisys could not encode log records for OTLP", exc_info=True
                )
                return LogRecordExportResult.FAILURE
            delivery.deliver("logs", body, len(batch))
            return LogRecordExportResult.SUCCESS

        def force_flush(self, timeout_millis: int = 10_000) -> bool:
            return delivery.flush(timeout_millis / 1000)

        def shutdown(self) -> None:
            delivery.shutdown()
            live.shutdown()
            patient.shutdown()

    return SpoolingLogExporter()


def otlp_log_exporter(settings: Settings) -> Any:
    """The OTLP log exporter aisys builds for ``exporters=otlp``."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    live = OTLPLogExporter(timeout=LIVE_TIMEOUT_S)
    patient = OTLPLogExporter(timeout=_timeout("LOGS"))
    return log_exporter(live, patient, build_delivery(settings, live._endpoint))
