"""Metrics and log events recorded off the caller's path: complete, in order, bounded."""

from __future__ import annotations

import datetime
import json
import textwrap
import threading

from aisys.telemetry.recorder import Recorder
from tests.test_host_provider import _run

_LOGGED = """
import logging, sys
import aisys

logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")

@aisys.traced_llm(model="m")
def answer():
    return "ok"
"""


def _logged(body: str) -> str:
    """Run ``body`` after a prelude: JSON events to stdout, `answer()` decorated."""
    return _run(_LOGGED + textwrap.dedent(body))


def test_events_keep_the_callers_context_and_order() -> None:
    """Written by the recorder thread, with the caller's contextvars, ids and end time."""
    out = _run(
        """
        import threading, time
        import structlog
        seen = []

        def keep(logger, method, event_dict):
            seen.append((threading.current_thread().name, dict(event_dict)))
            raise structlog.DropEvent

        structlog.configure(processors=[structlog.contextvars.merge_contextvars, keep])
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
        import aisys

        @aisys.traced_llm(model="m")
        def answer(n):
            return "ok"

        for n in range(5):
            with structlog.contextvars.bound_contextvars(request_id=f"r{n}"):
                answer(n)
        assert seen == []  # nothing written on the caller's path
        aisys.flush()
        print([(thread, e["request_id"], len(e["trace_id"])) for thread, e in seen])
        """
    )
    assert out.strip() == str([("aisys-recorder", f"r{n}", 32) for n in range(5)])


def test_own_json_events_carry_the_time_the_call_ended() -> None:
    out = _logged(
        """
        import time

        answer()
        ended = time.time()
        time.sleep(0.3)  # the event is written later; its time is the call's
        aisys.flush()
        print("ended", ended)
        """
    )
    (line,) = [x for x in out.splitlines() if x.startswith("{")]
    ended = float(out.split("ended ")[1])
    event = json.loads(line)
    assert event["event"] == "gen_ai.call"
    stamped = datetime.datetime.strptime(event["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    at = stamped.replace(tzinfo=datetime.UTC).timestamp()
    assert ended - 0.25 < at <= ended  # not when it was written, 0.3 s later


def test_a_recorder_that_falls_behind_makes_the_caller_record_nothing_is_lost() -> None:
    """Past max_queue_size waiting calls the caller records them itself, in order."""
    out = _run(
        """
        import threading
        import structlog
        seen = []

        def keep(logger, method, event_dict):
            seen.append((threading.current_thread().name, event_dict.get("n")))
            raise structlog.DropEvent

        structlog.configure(processors=[structlog.contextvars.merge_contextvars, keep])
        import aisys
        aisys.configure(max_queue_size=8)

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        for n in range(300):  # far faster than one round of the recorder (50 ms)
            with structlog.contextvars.bound_contextvars(n=n):
                answer()
        aisys.flush()
        print([n for _, n in seen] == list(range(300)))
        print(sorted({thread for thread, _ in seen}))
        """
    )
    in_order, threads = out.strip().splitlines()
    assert in_order == "True"
    assert "MainThread" in threads  # the caller helped: the queue stayed bounded


def test_recorder_flush_waits_for_everything_handed_over() -> None:
    done: list[int] = []
    gate = threading.Event()

    def record(n: int) -> None:
        gate.wait(5)
        done.append(n)

    recorder = Recorder(record, max_pending=100, timeout=5)
    for n in range(10):
        recorder.submit(n)
    assert done == []
    gate.set()
    assert recorder.flush()
    assert done == list(range(10))
    assert recorder.close()
    assert recorder.flush()  # closed: nothing waiting, nothing to wait for
    recorder.submit(10)  # a later call starts the thread again
    assert recorder.flush()
    assert done == list(range(11))
    assert recorder.close()
    assert recorder.helped == 0


def test_a_caller_that_helps_records_in_order() -> None:
    done: list[int] = []
    recorder = Recorder(done.append, max_pending=3, timeout=5)
    for n in range(10):
        recorder.submit(n)  # every third hand-over finds the queue full
    assert recorder.helped >= 3
    assert recorder.flush()
    assert done == list(range(10))
    assert recorder.close()


def test_a_forked_child_records_with_its_own_thread() -> None:
    out = _logged(
        """
        import os

        answer()
        aisys.flush()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            answer()
            aisys.flush()
            sys.stdout.flush()
            os._exit(0)
        os.waitpid(pid, 0)
        """
    )
    assert out.count('"event": "gen_ai.call"') == 2  # the parent's, then the child's


def test_no_meter_and_no_log_start_nothing_until_the_host_sets_a_provider() -> None:
    """With nothing listening aisys records nothing (no thread); a provider set later counts."""
    out = _run(
        """
        import threading
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        import aisys

        @aisys.traced_llm(model="m")
        def answer():
            return "ok"

        for _ in range(3):
            answer()
        print(sorted(t.name for t in threading.enumerate()))
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        for _ in range(2):
            answer()
        aisys.flush()
        print(sum(
            point.count
            for resource in reader.get_metrics_data().resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "gen_ai.client.operation.duration"
            for point in metric.data.data_points
        ))
        """
    )
    threads, counted = out.strip().splitlines()
    assert "aisys-recorder" not in threads
    assert counted == "2"  # the calls after the provider was set, each once
