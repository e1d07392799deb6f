"""Exporters from settings: JSONL file, console tree, OTLP to a real receiver; bounded export."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import aisys
from aisys.telemetry.exporters import BoundedBatchSpanProcessor


@aisys.traced_llm(model="gpt-4o-mini")
def answer(question: str) -> str:
    return "It takes five days."


def test_jsonl_has_one_object_per_span(tmp_path: Path) -> None:
    """Each finished span is one JSON line with the fields DESIGN.md fixes."""
    path = tmp_path / "traces.jsonl"
    aisys.configure(exporters="jsonl", jsonl_path=path, service_name="support-bot")

    with aisys.trace("ticket", user_id="u"):
        answer("How long do refunds take?")
    assert aisys.flush(5.0)

    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["name"] for r in records] == ["chat gpt-4o-mini", "ticket"]
    call, root = records
    assert set(call) == {
        "name", "trace_id", "span_id", "parent_span_id", "kind", "start_time_unix_nano",
        "end_time_unix_nano", "status", "attributes", "events", "resource",
    }  # fmt: skip
    assert len(call["trace_id"]) == 32
    assert len(call["span_id"]) == 16
    assert call["parent_span_id"] == root["span_id"]
    assert root["parent_span_id"] is None
    assert call["kind"] == "CLIENT"
    assert call["status"] == {"code": "UNSET", "description": None}
    assert call["attributes"]["gen_ai.usage.output_tokens"] > 0
    assert call["resource"]["service.name"] == "support-bot"
    assert call["end_time_unix_nano"] >= call["start_time_unix_nano"]
    text = path.read_text()
    assert "How long do refunds take?" not in text
    assert "five days" not in text


def test_console_prints_a_tree_per_trace(capfd: pytest.CaptureFixture[str]) -> None:
    """The console exporter prints names, durations, tokens and status as a tree."""
    aisys.configure(exporters=["console"])

    @aisys.traced_retrieval(data_source="faq")
    def search(query: str) -> list[str]:
        return ["a", "b"]

    @aisys.traced_llm(model="m")
    def broken() -> str:
        raise TimeoutError("the model took longer than 30 s")

    with aisys.trace("ticket"):
        search("q")
        answer("q")
        with pytest.raises(TimeoutError):
            broken()
    aisys.flush(5.0)

    err = capfd.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0].startswith("trace ")
    assert lines[1].startswith("└─ ticket ")
    assert "├─ retrieval faq" in lines[2]
    assert "docs=2" in lines[2]
    assert "chat gpt-4o-mini" in lines[3]
    assert "tokens in=" in lines[3]
    assert "(estimated)" in lines[3]
    # The error's message, not only its type: what happened is in the tree.
    assert "ERROR TimeoutError: the model took longer than 30 s" in lines[4]
    assert " ms " in lines[3]


def test_none_means_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """exporters=none writes no file and prints nothing."""
    monkeypatch.chdir(tmp_path)
    aisys.configure(exporters="none")
    answer("q")
    aisys.flush(1.0)
    assert list(tmp_path.iterdir()) == []


class _SlowExporter(SpanExporter):
    """Blocks every export until released: a collector that stopped answering."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(30)
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_full_queue_drops_and_counts() -> None:
    """With a stuck exporter, memory stays bounded: extra spans are dropped and counted."""
    from opentelemetry.sdk.trace import TracerProvider

    exporter = _SlowExporter()
    processor = BoundedBatchSpanProcessor(exporter, max_queue_size=8)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    runtime = aisys.Runtime(aisys.Settings(), tracer_provider=provider)

    @runtime.traced_llm(model="m")
    def call() -> str:
        return "x"

    for _ in range(200):
        call()

    queued = len(processor._batch_processor._queue)
    assert queued <= 8
    assert (
        processor.dropped >= 200 - 8 - 8
    )  # at most one batch can be in the exporter's hands
    exporter.release.set()
    provider.shutdown()


def test_flush_and_shutdown_never_hang(tmp_path: Path) -> None:
    """flush(timeout) gives up and says so when the exporter does not answer."""
    runtime = aisys.Runtime(
        aisys.Settings(exporters=["jsonl"], jsonl_path=tmp_path / "t.jsonl")
    )
    telemetry = runtime.telemetry
    exporter = _SlowExporter()
    processor = BoundedBatchSpanProcessor(exporter, 16)
    telemetry._own_providers[0].add_span_processor(processor)
    telemetry._processors.append(processor)

    @runtime.traced_llm(model="m")
    def call() -> str:
        return "x"

    call()
    started = time.monotonic()
    assert runtime.flush(0.3) is False
    runtime.shutdown(0.3)
    elapsed = time.monotonic() - started
    exporter.release.set()
    assert (
        elapsed < 20
    )  # bounded, not a timing assertion on speed: it would otherwise hang for 30 s


def test_spans_are_flushed_at_exit(tmp_path: Path) -> None:
    """A short script that never calls flush loses no span."""
    script = textwrap.dedent(
        """
        import aisys
        aisys.configure(exporters="jsonl", jsonl_path="out.jsonl")

        @aisys.traced_llm(model="m")
        def answer():
            return "bye"

        for _ in range(3):
            answer()
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, check=True, timeout=60)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 3


def test_environment_configures_exporters(tmp_path: Path) -> None:
    """AISYS_* variables configure a process that never calls configure()."""
    script = textwrap.dedent(
        """
        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "x"

        answer()
        """
    )
    env = {
        "AISYS_EXPORTERS": "jsonl",
        "AISYS_JSONL_PATH": "env.jsonl",
        "OTEL_SERVICE_NAME": "from-env",
        "PATH": "",
    }
    subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, check=True, timeout=60
    )
    (record,) = [
        json.loads(line) for line in (tmp_path / "env.jsonl").read_text().splitlines()
    ]
    assert record["resource"]["service.name"] == "from-env"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_otlp_reaches_a_real_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    """exporters=otlp sends spans and metrics over OTLP/HTTP to the standard endpoint variable."""
    from oteltap import OtelTapHttpProtobufReceiver, OtelTapHttpProtobufReceiverSettings

    port = _free_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    async with OtelTapHttpProtobufReceiver(
        OtelTapHttpProtobufReceiverSettings(http_port=port)
    ) as receiver:
        # The receiver hands over only what arrives while someone waits: wait first.
        span_arrives = asyncio.ensure_future(
            receiver.await_trace(lambda s: s.name == "chat gpt-4o-mini", timeout=20)
        )
        metric_arrives = asyncio.ensure_future(
            receiver.await_metric(
                lambda m: m.name == "gen_ai.client.token.usage", timeout=20
            )
        )
        await asyncio.sleep(0)
        aisys.configure(exporters="otlp", service_name="otlp-test")
        answer("q")
        assert await asyncio.to_thread(aisys.flush, 10.0)

        span = await span_arrives
        attrs = {kv.key: kv.value for kv in span.attributes}
        assert attrs["gen_ai.request.model"].string_value == "gpt-4o-mini"
        assert attrs["gen_ai.usage.output_tokens"].int_value > 0
        metric = await metric_arrives
        assert metric.histogram.data_points
        await asyncio.to_thread(aisys.shutdown, 5.0)
