"""Shared fixtures: a loopback OpenAI-protocol server, official clients, captured telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

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
        api_key="sk-test-not-a-key", base_url=server.base_url, max_retries=0
    )
    yield client
    client.close()


@pytest.fixture(name="aclient")
async def fixture_aclient(server: WireServer) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official async OpenAI client pointed at the loopback server, no retries."""
    client = openai.AsyncOpenAI(
        api_key="sk-test-not-a-key", base_url=server.base_url, max_retries=0
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
