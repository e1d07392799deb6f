"""Shared fixtures: a loopback OpenAI-protocol server, official clients, captured telemetry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest

import aisys
from aisys.testing import Captured, capture
from aisys.testing import reset as reset_aisys_state
from tests.wire_server import WireServer


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
