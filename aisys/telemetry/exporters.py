"""The exporters aisys builds from settings: console tree, JSONL file, OTLP.

Needs the OTel SDK (the ``otel`` extra); imported only when aisys builds its own
provider. Each exporter sits behind a bounded batch processor that counts what it drops.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import format_span_id, format_trace_id

from aisys.settings import Settings
from aisys.telemetry import attributes as A

_log = logging.getLogger("aisys")

__all__ = [
    "BoundedBatchSpanProcessor",
    "ConsoleTreeExporter",
    "JsonlSpanExporter",
    "build_processors",
    "span_to_dict",
]


class _Counted(SpanExporter):
    """An exporter whose failed exports are counted (and never raise into the SDK)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.failures = 0
        self._warned = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export; a failure or an exception is counted and warned about once."""
        try:
            result = self.exporter.export(spans)
        except Exception as exc:
            result = SpanExportResult.FAILURE
            self._warn(f"{type(exc).__name__}: {exc}")
        else:
            if result is not SpanExportResult.SUCCESS:
                self._warn("the exporter reported a failure")
        if result is not SpanExportResult.SUCCESS:
            self.failures += 1
        return result

    def _warn(self, reason: str) -> None:
        if not self._warned:
            self._warned = True
            _log.warning(
                "aisys could not export %s spans (%s); aisys.flush() returns False "
                "while exports fail",
                type(self.exporter).__name__,
                reason,
            )

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush the wrapped exporter."""
        return self.exporter.force_flush(timeout_millis)


class BoundedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it drops when its queue is full.

    It also counts the batches its exporter failed to export (`failed_exports`), so
    `aisys.flush` can say that spans were lost.
    """

    def __init__(self, exporter: SpanExporter, max_queue_size: int) -> None:
        self._counted = _Counted(exporter)
        super().__init__(
            self._counted,
            max_queue_size=max_queue_size,
            max_export_batch_size=min(512, max_queue_size),
        )
        self.max_queue_size = max_queue_size
        self.dropped = 0

    @property
    def failed_exports(self) -> int:
        """Batches the exporter could not export, since start."""
        return self._counted.failures

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export what is queued, then let the exporter flush (the spool sends its own)."""
        exported = super().force_flush(timeout_millis)
        flushed = self._counted.exporter.force_flush(timeout_millis or 30000)
        return exported and flushed is not False

    def on_end(self, span: ReadableSpan) -> None:
        """Queue the span; when the queue is full the oldest span is dropped, and counted."""
        # The SDK's deque has a maxlen and drops silently but for one log line; the
        # count is what lets aisys report the loss.
        if len(self._batch_processor._queue) >= self.max_queue_size:
            self.dropped += 1
        super().on_end(span)


def span_to_dict(span: ReadableSpan) -> dict[str, Any]:
    """One finished span as the JSONL record DESIGN.md fixes."""
    ctx = span.get_span_context()
    parent = span.parent
    assert ctx is not None  # noqa: S101 - finished SDK spans always have a context
    return {
        "name": span.name,
        "trace_id": format_trace_id(ctx.trace_id),
        "span_id": format_span_id(ctx.span_id),
        "parent_span_id": format_span_id(parent.span_id) if parent else None,
        "kind": span.kind.name,
        "start_time_unix_nano": span.start_time,
        "end_time_unix_nano": span.end_time,
        "status": {
            "code": span.status.status_code.name,
            "description": span.status.description,
        },
        "attributes": dict(span.attributes or {}),
        "events": [
            {
                "name": event.name,
                "time_unix_nano": event.timestamp,
                "attributes": dict(event.attributes or {}),
            }
            for event in span.events
        ],
        "resource": dict(span.resource.attributes),
    }


class JsonlSpanExporter(SpanExporter):
    """Appends one JSON object per finished span to a file; opens it on first export."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write the spans, one line each, and flush so a crash loses nothing written."""
        self._append(
            "".join(
                json.dumps(span_to_dict(span), default=str) + "\n" for span in spans
            )
        )
        return SpanExportResult.SUCCESS

    def write_record(self, record: dict[str, Any]) -> None:
        """Append one non-span record (an evaluation result) as its own line."""
        self._append(json.dumps(record, default=str) + "\n")

    def _append(self, lines: str) -> None:
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(lines)
            self._file.flush()

    def shutdown(self) -> None:
        """Close the file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ConsoleTreeExporter(SpanExporter):
    """Prints a readable tree per trace (names, durations, tokens, status) to stderr.

    Spans wait until their trace's root span ends; traces whose root never comes (its
    parent lives in another process) are printed when too many wait, or at shutdown.
    """

    def __init__(self, stream: IO[str] | None = None, max_pending: int = 256) -> None:
        self._stream = stream
        self._max_pending = max_pending
        self._pending: OrderedDict[int, list[ReadableSpan]] = OrderedDict()
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Collect spans per trace; print each trace whose root has ended."""
        ready = []
        with self._lock:
            for span in spans:
                ctx = span.get_span_context()
                if ctx is None:
                    continue
                self._pending.setdefault(ctx.trace_id, []).append(span)
                if span.parent is None or span.parent.is_remote:
                    ready.append(self._pending.pop(ctx.trace_id))
            while len(self._pending) > self._max_pending:
                ready.append(self._pending.popitem(last=False)[1])
        for trace_spans in ready:
            self._write(render_tree(trace_spans))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Print what is still waiting."""
        with self._lock:
            left = list(self._pending.values())
            self._pending.clear()
        for trace_spans in left:
            self._write(render_tree(trace_spans))

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stderr
        stream.write(text)
        stream.flush()


def render_tree(spans: Sequence[ReadableSpan]) -> str:
    """One trace as an indented tree, children in start order."""
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in spans:
        parent = span.parent.span_id if span.parent is not None else None
        children.setdefault(parent if parent in by_id else None, []).append(span)
    for group in children.values():
        group.sort(key=lambda s: s.start_time or 0)
    first = spans[0].get_span_context()
    trace_id = format_trace_id(first.trace_id) if first is not None else "?"
    lines = [f"trace {trace_id}"]

    def walk(parent: int | None, prefix: str) -> None:
        group = children.get(parent, [])
        for index, span in enumerate(group):
            last = index == len(group) - 1
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{_describe(span)}")
            if span.context is not None:
                walk(span.context.span_id, prefix + ("   " if last else "│  "))

    walk(None, "")
    return "\n".join(lines) + "\n"


def _describe(span: ReadableSpan) -> str:
    attrs = span.attributes or {}
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    parts = [span.name, f"{duration_ms:.1f} ms"]
    if A.GEN_AI_USAGE_INPUT_TOKENS in attrs or A.GEN_AI_USAGE_OUTPUT_TOKENS in attrs:
        tokens = "tokens " + " ".join(
            f"{label}={attrs[key]!s}"
            for label, key in (
                ("in", A.GEN_AI_USAGE_INPUT_TOKENS),
                ("out", A.GEN_AI_USAGE_OUTPUT_TOKENS),
            )
            if key in attrs
        )
        if attrs.get(A.AISYS_USAGE_ESTIMATED):
            tokens += " (estimated)"
        parts.append(tokens)
    if attrs.get(A.AISYS_CACHE_HIT):
        saved = attrs.get(A.AISYS_CACHE_SAVED_USD)
        parts.append(
            "cache hit" + (f", saved ${float(saved):.6f}" if saved is not None else "")  # type: ignore[arg-type]
        )
    elif A.AISYS_COST_USD in attrs:
        parts.append(f"${float(attrs[A.AISYS_COST_USD]):.6f}")  # type: ignore[arg-type]
    elif attrs.get(A.AISYS_COST_STATUS) == "unknown":
        parts.append("cost unknown")
    if A.AISYS_RETRIEVAL_DOCUMENTS_COUNT in attrs:
        parts.append(f"docs={attrs[A.AISYS_RETRIEVAL_DOCUMENTS_COUNT]!s}")
    status = span.status.status_code.name
    if status == "ERROR":
        # "ERROR aisys.GuardError: guard 'secrets' blocked the answer …" (cut short)
        said = span.status.description or str(attrs.get(A.ERROR_TYPE, ""))
        parts.append(f"ERROR {said[:160]}".rstrip())
    else:
        parts.append("ok")
    return "  ".join(parts)


def build_processors(settings: Settings) -> list[BoundedBatchSpanProcessor]:
    """One bounded batch processor per configured exporter."""
    processors = []
    for name in settings.exporters:
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleTreeExporter()
        elif name == "jsonl":
            exporter = JsonlSpanExporter(settings.jsonl_path)
        else:
            from aisys.telemetry.otlp import span_exporter

            exporter = span_exporter(settings)
        processors.append(BoundedBatchSpanProcessor(exporter, settings.max_queue_size))
    return processors
