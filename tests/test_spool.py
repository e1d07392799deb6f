"""Export that loses nothing: a real OTLP collector (oteltap) goes down and comes back.

Spans the collector could not take wait in the spool (SQLite, OTLP protobuf bodies) and
reach it once, in order, when it answers: during the run, at the next start, or by
``aisys spool replay``; a process killed mid-spool leaves a readable spool; a full spool
drops its oldest batches and says so; a corrupt spool is set aside and reported; two
processes on one spool send each batch once.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import aisys
from aisys.telemetry.spool import Spool
from tests.collector import Collector

ROOT = Path(__file__).resolve().parent.parent

APP = """
import os, sys, time
import aisys

@aisys.traced_llm(model="gpt-4o-mini")
def answer(question):
    return "Five days."

n = int(sys.argv[1])
for i in range(n):
    with aisys.trace(f"ticket-{os.environ.get('RUN', 'a')}-{i}"):
        answer("How long do refunds take?")
    if os.environ.get("FLUSH_EACH"):
        aisys.flush(5.0)
        print(i, flush=True)
if os.environ.get("HANG"):
    time.sleep(600)
"""


@pytest.fixture(name="collector")
def fixture_collector(tmp_path: Path) -> Any:
    with Collector(tmp_path) as collector:
        yield collector


def _env(collector: Collector, spool: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AISYS_")}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
        AISYS_EXPORTERS="otlp",
        AISYS_SPOOL_DIR=str(spool),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _app(
    tmp_path: Path, collector: Collector, spool: Path, calls: int, **extra: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "app.py"
    script.write_text(APP)
    return subprocess.run(
        [sys.executable, str(script), str(calls)],
        env=_env(collector, spool, **extra),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _names(spans: list[dict[str, Any]]) -> Counter[str]:
    return Counter(s["name"] for s in spans if s["name"].startswith("ticket-"))


def _configure(
    collector: Collector, spool: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint)
    aisys.configure(exporters="otlp", spool_dir=spool, **kw)


@aisys.traced_llm(model="gpt-4o-mini")
def _answer(question: str) -> str:
    return "Five days."


def _calls(n: int, prefix: str) -> None:
    for i in range(n):
        with aisys.trace(f"ticket-{prefix}-{i}"):
            _answer("How long do refunds take?")


def test_down_for_20_calls_then_the_next_start_delivers_them_once(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    down = _app(tmp_path, collector, spool, 20)
    assert down.returncode == 0
    assert "Traceback" not in down.stderr
    said = [line for line in down.stderr.splitlines() if line.strip()]
    assert len(said) == 1, said  # quiet: one line, where they went
    assert "did not take a batch" in down.stderr
    assert Spool(spool, 10**9).status().kinds["traces"] == 40  # 20 traces of 2 spans

    collector.start()
    up = _app(tmp_path, collector, spool, 1, RUN="b")  # the next start: one call
    assert up.returncode == 0, up.stderr
    names = _names(collector.wait_for_spans(42))
    assert names == Counter(
        {**{f"ticket-a-{i}": 1 for i in range(20)}, "ticket-b-0": 1}
    )
    assert len(collector.spans()) == 42  # each once: no duplicates
    assert Spool(spool, 10**9).status().batches == 0


def test_the_collector_coming_back_during_the_run_drains_the_spool(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    _configure(collector, spool, monkeypatch)
    _calls(5, "down")
    assert aisys.flush(5.0) is False  # spooled, not delivered: the log says so
    assert Spool(spool, 10**9).status().kinds["traces"] == 10

    collector.start()
    time.sleep(1.1)  # past the probe backoff of the failure above
    assert aisys.flush(10.0) is True
    _calls(3, "up")
    assert aisys.flush(10.0) is True
    spans = collector.wait_for_spans(16)
    names = [s["name"] for s in spans if s["name"].startswith("ticket-")]
    assert names == [f"ticket-down-{i}" for i in range(5)] + [
        f"ticket-up-{i}" for i in range(3)
    ]  # in order: the spool first, then what came after
    assert Spool(spool, 10**9).status().batches == 0


def test_kill_9_mid_spooling_leaves_a_readable_spool_that_replays(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    script = tmp_path / "app.py"
    script.write_text(APP)
    process = subprocess.Popen(
        [sys.executable, str(script), "100000"],
        env=_env(collector, spool, FLUSH_EACH="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for _ in range(30):  # thirty traces spooled, one flush each
        process.stdout.readline()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    process.stdout.close()

    status = Spool(spool, 10**9).status()  # readable
    assert status.batches >= 29  # at most the batch in flight is lost
    with sqlite3.connect(spool / "spool.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    collector.start()
    replay = _cli("spool", "replay", "--dir", str(spool), env=_env(collector, spool))
    assert replay.returncode == 0, replay.stderr
    names = _names(collector.wait_for_spans(status.items))
    assert len(names) >= 29
    assert set(names.values()) == {1}  # each once
    assert Spool(spool, 10**9).status().batches == 0


def test_a_full_spool_drops_the_oldest_and_says_so(
    tmp_path: Path,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = tmp_path / "spool"
    _configure(collector, spool, monkeypatch, spool_max_mb=0.004)  # about 4 kB
    with caplog.at_level(logging.WARNING, logger="aisys"):
        for i in range(12):
            _calls(1, f"full-{i}")
            aisys.flush(5.0)
    full = [r for r in caplog.records if "is full" in r.getMessage()]
    assert len(full) == 1  # said once
    status = Spool(spool, 10**9).status()
    assert status.dropped_items > 0
    assert (
        status.bytes <= 4 * 1024 + 2000
    )  # the newest batch may exceed a tiny bound alone

    collector.start()
    time.sleep(1.1)
    assert aisys.flush(10.0) is True
    names = _names(collector.wait_for_spans(2))
    assert "ticket-full-11-0" in names  # the newest kept
    assert "ticket-full-0-0" not in names  # the oldest dropped
    dropped = collector.wait_for(
        lambda: [m for m in collector.metrics() if m["name"] == "aisys.spool.dropped"]
    )
    assert dropped  # counted in a metric too, which reached the collector


def test_a_corrupt_spool_file_is_set_aside_and_reported(
    tmp_path: Path,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "spool.sqlite3").write_bytes(b"not a database at all" * 100)
    collector.start()
    with caplog.at_level(logging.WARNING, logger="aisys"):
        _configure(collector, spool, monkeypatch)
        _calls(2, "after")
        assert aisys.flush(10.0) is True
    assert any("could not be read" in r.getMessage() for r in caplog.records)
    assert list(spool.glob("spool.sqlite3.corrupt-*"))  # kept for a look, not deleted
    assert Spool(spool, 10**9).status().corrupt == 1
    assert _names(collector.wait_for_spans(4)) == Counter(
        {"ticket-after-0": 1, "ticket-after-1": 1}
    )


def test_a_batch_the_collector_refuses_is_skipped_and_the_rest_delivered(
    tmp_path: Path, collector: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    _configure(collector, spool, monkeypatch)
    _calls(1, "before")
    aisys.flush(5.0)
    Spool(spool, 10**9).push("traces", b"\xff\x00garbage, not protobuf", 1)
    _calls(1, "after")
    aisys.flush(5.0)
    collector.start()
    time.sleep(1.1)
    aisys.flush(10.0)
    names = _names(collector.wait_for_spans(4))
    assert names == Counter({"ticket-before-0": 1, "ticket-after-0": 1})
    status = Spool(spool, 10**9).status()
    assert (status.batches, status.corrupt) == (0, 1)
    assert "400" in str(status.last_error)


def test_two_processes_on_one_spool_deliver_each_batch_once(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    for run in "abc":  # three runs while the collector is down: many batches
        assert (
            _app(tmp_path, collector, spool, 15, RUN=run, FLUSH_EACH="1").returncode
            == 0
        )
    waiting = Spool(spool, 10**9).status()
    assert waiting.batches >= 45

    collector.start()
    env = _env(collector, spool)
    replays = [
        subprocess.Popen(
            [sys.executable, "-m", "aisys.cli", "spool", "replay", "--format", "json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in replays]
    assert all(p.returncode == 0 for p in replays), outputs
    sent = [json.loads(out)["sent_batches"] for out, _ in outputs]
    assert sum(sent) == waiting.batches
    names = _names(collector.wait_for_spans(waiting.items))
    assert len(names) == 45
    assert set(names.values()) == {1}


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aisys.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_spool_commands_show_replay_and_drop(
    tmp_path: Path, collector: Collector
) -> None:
    spool = tmp_path / "spool"
    env = _env(collector, spool)
    empty = _cli("spool", "status", env=env)
    assert (empty.returncode, empty.stdout.strip()) == (0, "empty")

    _app(tmp_path, collector, spool, 3)
    status = _cli("spool", "status", "--format", "json", env=env)
    record = json.loads(status.stdout)
    assert (record["spans"], record["batches"] >= 1) == (6, True)
    assert "Connection refused" in record["last_error"]
    table = _cli("spool", "status", env=env)
    assert {"batches", "oldest", "last error"} <= set(table.stdout.split("  ")) or all(
        word in table.stdout for word in ("batches", "oldest", "last error")
    )

    down = _cli("spool", "replay", "--timeout", "3", env=env)
    assert down.returncode == 1  # the collector is still down
    assert "left" in down.stdout
    assert "Traceback" not in down.stderr

    dropped = _cli("spool", "drop", "--format", "json", env=env)
    assert (
        json.loads(dropped.stdout)["dropped_items"]
        == record["spans"] + record["metrics"]
    )
    assert (
        json.loads(_cli("spool", "status", "--format", "json", env=env).stdout)[
            "batches"
        ]
        == 0
    )
