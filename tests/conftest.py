"""Shared fixtures: a loopback OpenAI-protocol server, official clients, captured telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai
import pytest

import aisys
from aisys.testing import Captured, capture
from aisys.testing import reset as reset_aisys_state
from tests.wire_server import WireServer


def _import_every_aisys_module() -> None:
    """Import all of aisys up front.

    pytester (tests/test_docs.py, tests/test_pytest_plugin.py) drops the modules first
    imported during its tests when they end; a module imported again later is a new
    module with new classes, and `isinstance` between the two copies fails. Importing
    everything first keeps one copy of each for the whole session.
    """
    import importlib
    import pkgutil

    for module in pkgutil.walk_packages(aisys.__path__, "aisys."):
        importlib.import_module(module.name)


_import_every_aisys_module()


# -- the key scan: every byte the suite exports, searched for its API keys ---------------

KEY_MARKER = "aisys-test-key"
"""Part of every API key the suite passes (``api_key=``, environment variables)."""
_LEAKS: dict[str, None] = {}  # in order, once each
_CURRENT = ["(collection)"]


def _scan(what: str, data: object) -> None:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    if KEY_MARKER in text:
        at = text.index(KEY_MARKER)
        _LEAKS[f"{_CURRENT[0]}: {what}: …{text[max(0, at - 60) : at + 40]!r}…"] = None


def _install_key_scan() -> None:
    """Wrap where aisys's output leaves: ended spans, log events, error messages."""
    from opentelemetry.sdk.trace import (
        ConcurrentMultiSpanProcessor,
        SynchronousMultiSpanProcessor,
    )

    from aisys.errors import AisysError
    from aisys.telemetry.logs import EventLog

    for cls in (SynchronousMultiSpanProcessor, ConcurrentMultiSpanProcessor):
        on_end = cls.on_end

        def scanned_on_end(self: object, span: object, _on_end=on_end) -> None:
            _scan("span", span.to_json())  # type: ignore[attr-defined]
            _on_end(self, span)

        cls.on_end = scanned_on_end  # type: ignore[method-assign]

    emit = EventLog.emit

    def scanned_emit(self: EventLog, event: str, fields: dict, **options: Any) -> None:
        _scan(f"log event {event}", repr(fields))
        emit(self, event, fields, **options)

    EventLog.emit = scanned_emit  # type: ignore[method-assign]
    init = AisysError.__init__

    def scanned_init(self: AisysError, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        _scan(f"{type(self).__name__} message", str(self))
        _scan(f"{type(self).__name__} repr", repr(self))

    AisysError.__init__ = scanned_init  # type: ignore[method-assign]


_install_key_scan()


def pytest_runtest_logstart(nodeid: str) -> None:
    _CURRENT[0] = nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """What the test printed and logged (structlog, console exporter, warnings)."""
    for name, content in report.sections:
        _scan(name, content)


def pytest_warning_recorded(warning_message: object) -> None:
    _scan("warning", getattr(warning_message, "message", warning_message))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Files the suite wrote (JSONL traces, caches, reports, audit logs), then the verdict."""
    roots = [Path(".aisys-cache"), Path("aisys-traces.jsonl")]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        roots.append(factory.getbasetemp())
    for root in roots:
        files = [root] if root.is_file() else root.rglob("*") if root.exists() else []
        for path in files:
            if path.is_file():
                _scan(f"file {path}", path.read_bytes())
    if _LEAKS:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.section("API keys found in what the suite exported", red=True)
            for leak in list(_LEAKS)[:20]:
                reporter.line(leak)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Integration tests run only when selected with `-m integration` (make test-integration)."""
    if "integration" in (
        config.getoption("-m") or ""
    ) and "not integration" not in config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="real-model tier: run `make test-integration`")
    for item in items:
        if "integration" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _wire() -> Iterator[WireServer]:
    with WireServer() as server:
        yield server


@pytest.fixture(name="server")
def fixture_server(_wire: WireServer) -> Iterator[WireServer]:
    """The loopback server, with no scripted replies and an empty request log."""
    _wire.reset()
    yield _wire
    _wire.reset()


@pytest.fixture(name="client")
def fixture_client(server: WireServer) -> Iterator[openai.OpenAI]:
    """The official OpenAI client pointed at the loopback server, no retries."""
    client = openai.OpenAI(
        api_key="sk-aisys-test-key-client", base_url=server.base_url, max_retries=0
    )
    yield client
    client.close()


@pytest.fixture(name="aclient")
async def fixture_aclient(server: WireServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official async OpenAI client pointed at the loopback server, no retries."""
    client = openai.AsyncOpenAI(
        api_key="sk-aisys-test-key-client", base_url=server.base_url, max_retries=0
    )
    yield client
    await client.close()


@pytest.fixture(autouse=True)
def _fresh_runtime(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with default settings read anew and ends with exporters closed."""
    for name in (
        "OTEL_SEMCONV_STABILITY_OPT_IN",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ):
        monkeypatch.delenv(name, raising=False)
    aisys._DEFAULT.shutdown(2.0)
    aisys._DEFAULT._settings = None
    reset_aisys_state()
    yield
    aisys._DEFAULT.shutdown(2.0)
    aisys._DEFAULT._settings = None


@pytest.fixture(name="seen")
def fixture_seen() -> Iterator[Captured]:
    """Spans, log events and metrics recorded during the test."""
    with capture() as captured:
        yield captured
        data = captured._reader.get_metrics_data()
        _scan("metrics", data.to_json() if data is not None else "")


def need_redis_server() -> str:
    """The redis-server binary; skip without it, except under CI, where it fails."""
    import os
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on loopback for the session; its URL.

    `make test` installs redis-server when missing. Without it the Redis tests skip,
    except under CI (``CI`` set), where a missing Redis is a failure.
    """
    with own_redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


@contextmanager
def own_redis_server(workdir: Path) -> Iterator[str]:
    """A redis-server of the test's own (to stop mid-run); its URL. Stopped on exit."""
    import subprocess
    import time

    import redis

    binary = need_redis_server()
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        else:
            pytest.fail("redis-server did not start")
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A real PostgreSQL on loopback for the session; its URL (see tests/postgres.py)."""
    from tests.postgres import Cluster

    cluster = Cluster()
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.remove()
