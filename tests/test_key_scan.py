"""API keys never appear in anything aisys writes: spans, logs, files, errors, reprs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import aisys
from aisys.metering.prices import clear_overrides
from aisys.testing import capture
from tests.wire_server import Reply, WireServer

KEY = "sk-aisys-test-key-" + "SCANME0123456789abcdefghijklmnop"
OTHER = "sk-ant-aisys-test-key-" + "SCANME9876543210zyxwvutsrqponmlk"


def test_keys_appear_nowhere(
    server: WireServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every byte exported by a busy session (full capture!) is scanned for the keys."""
    clear_overrides()
    aisys.register_price("openai:gpt-test", input=1, output=1)
    traces = tmp_path / "traces.jsonl"
    aisys.configure(
        exporters=["console", "jsonl"],
        jsonl_path=traces,
        capture_content="full",
        cache_dir=tmp_path / "cache",
    )
    errors: list[str] = []
    backup = aisys.LLM(
        "anthropic:claude-3-5-haiku-latest", base_url=server.root_url, api_key=OTHER
    )
    llm = aisys.LLM(
        "openai:gpt-test",
        base_url=server.base_url,
        api_key=KEY,
        fallbacks=[backup],
        retry=aisys.Retry(max_attempts=2, initial=0, jitter=False),
        cache=aisys.Cache(),
        budget=aisys.Budget(1, per="day"),
    )
    errors.append(repr(llm))
    with (
        caplog.at_level(logging.DEBUG, logger="aisys"),
        capture(
            exporters=["console", "jsonl"], jsonl_path=traces, capture_content="full"
        ) as seen,
    ):
        llm.chat("hello", max_tokens=10)
        llm.chat("hello", max_tokens=10)  # a cache hit
        server.script(Reply(status=503), Reply(status=401))
        try:
            llm.chat("fail over", max_tokens=10)
        except aisys.AisysError as exc:
            errors.append(f"{exc!r} {exc}")
        server.script(Reply(status=401))
        try:
            llm.chat("denied", max_tokens=10, cache=False)
        except aisys.AisysError as exc:
            errors.append(f"{exc!r} {exc} {getattr(exc, 'errors', '')}")
        list(llm.stream("stream me", max_tokens=10))
        llm.close()
    aisys.flush()
    exported = [
        traces.read_text() if traces.exists() else "",
        json.dumps([dict(s.attributes or {}) for s in seen.spans], default=str),
        json.dumps([[str(e.attributes) for e in s.events] for s in seen.spans]),
        json.dumps(seen.logs, default=str),
        capsys.readouterr().err,
        caplog.text,
        *errors,
    ]
    exported.extend(
        path.read_bytes().decode("latin-1")
        for path in (tmp_path / "cache").rglob("*")
        if path.is_file()
    )
    blob = "\n".join(exported)
    assert len(blob) > 1000  # something was exported
    for key in (KEY, OTHER):
        assert key not in blob
        assert key[8:20] not in blob  # nor a fragment of it
    clear_overrides()
