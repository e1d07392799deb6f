"""A host application that set up OpenTelemetry itself keeps it, and gets aisys's spans."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_host_provider_receives_aisys_spans() -> None:
    """aisys writes into the host's TracerProvider and never replaces it."""
    out = _run(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        host = TracerProvider()
        host.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(host)

        import aisys
        aisys.configure(exporters="console")   # ignored for spans: the host decides

        @aisys.traced_llm(model="gpt-4o-mini")
        def answer():
            return "ok"

        with trace.get_tracer("host").start_as_current_span("http request"):
            answer()

        assert trace.get_tracer_provider() is host
        names = [s.name for s in exporter.get_finished_spans()]
        print(names)
        call = exporter.get_finished_spans()[0]
        print(call.parent.span_id == exporter.get_finished_spans()[1].context.span_id)
        """
    )
    assert out.splitlines() == ["['chat gpt-4o-mini', 'http request']", "True"]


def test_host_set_after_import_still_gets_spans() -> None:
    """With no aisys exporter, spans follow the global proxy: a later host provider gets them."""
    out = _run(
        """
        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        answer()   # no provider yet: a no-op span

        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        answer()
        print([s.name for s in exporter.get_finished_spans()])
        """
    )
    assert out.strip() == "['chat m']"


def test_attach_to_host_adds_aisys_exporters(tmp_path: object) -> None:
    """attach_to_host=True adds aisys's JSONL exporter to the host provider."""
    out = _run(
        f"""
        import json
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        trace.set_tracer_provider(TracerProvider())
        import aisys
        aisys.configure(exporters="jsonl", jsonl_path=r"{tmp_path}/host.jsonl", attach_to_host=True)

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        answer()
        aisys.flush(5)
        print([json.loads(l)["name"] for l in open(r"{tmp_path}/host.jsonl")])
        """
    )
    assert out.strip() == "['chat m']"


def test_host_structlog_configuration_is_used_not_changed() -> None:
    """When the host configured structlog, aisys events go through its processors."""
    out = _run(
        """
        import structlog
        seen = []

        def keep(logger, method, event_dict):
            seen.append(dict(event_dict))
            raise structlog.DropEvent

        structlog.configure(processors=[keep])
        before = structlog.get_config()
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())

        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        answer()
        aisys.flush()  # the event is written off the caller's path
        assert structlog.get_config() == before
        print(seen[0]["event"], seen[0]["gen_ai.request.model"], len(seen[0]["trace_id"]))
        """
    )
    assert out.strip() == "gen_ai.call m 32"


def test_stdlib_logging_gets_json_events_when_enabled() -> None:
    """Without structlog set up, events render as JSON to the `aisys` logger, once logging is on."""
    out = _run(
        """
        import logging, sys, json
        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        answer()   # logging not configured: silent
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
        answer()
        """
    )
    (line,) = out.strip().splitlines()
    name, payload = line.split(" ", 1)
    import json

    event = json.loads(payload)
    assert name == "aisys"
    assert event["event"] == "gen_ai.call"
    assert event["level"] == "info"
    assert event["aisys.usage.estimated"] is True
    assert (
        event["trace_id"] is None
    )  # no provider anywhere: no trace, the event still comes
